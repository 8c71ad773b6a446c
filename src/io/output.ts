/**
 * Where an output path leads, and the rule for each kind, shared by every command that
 * writes one (`volume export -o`, `qvol copy DST`): nothing there or a regular file gets a
 * new file published whole; a character device, FIFO or socket (also through a link such
 * as /dev/stdout) is written in place, never replaced by a file; a block device is written
 * only when the caller says so, since that destroys what it holds.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { UsageError } from '../errors/index.js';
import { statOrUndefined } from './stat.js';

export type OutputKind = 'file' | 'block' | 'stream';

/** A name for one of this process's open descriptors: whatever it leads to is written in place. */
const DESCRIPTOR_NAME = /^\/(?:dev\/(?:stdout|stderr|fd\/\d+)|proc\/self\/fd\/\d+)$/;

export async function outputKind(path: string): Promise<OutputKind> {
  const st = await statOrUndefined(path);
  if (st?.isBlockDevice()) return 'block';
  // `> file` makes /dev/stdout lead to a regular file: it is the shell's, opened and
  // truncated by it, so it is written in place like a pipe; a temporary file renamed over
  // /dev/stdout would replace the link in /dev instead.
  if (st !== undefined && DESCRIPTOR_NAME.test(path)) return 'stream';
  if (st === undefined || st.isFile()) return 'file';
  if (st.isDirectory()) throw new UsageError(`Output '${path}' is a directory: give a file name.`, { path });
  return 'stream';
}

/** Refuses a block device unless `overwriteDevice`; `what` names the data ("the volume"). */
export function checkDeviceOutput(path: string, kind: OutputKind, overwriteDevice: boolean | undefined, what: string): void {
  if (kind === 'block' && !overwriteDevice) {
    throw new UsageError(`Output '${path}' is a block device: writing ${what} onto it destroys what it holds; say so with --force (overwriteDevice).`, { path });
  }
}

/** Runs `write` on the output opened in place: a device is claimed exclusively (EBUSY while mounted or held). */
export async function writeInPlace<T>(path: string, kind: 'block' | 'stream', write: (fd: number) => Promise<T>): Promise<T> {
  const fh = await open(path, constants.O_WRONLY | (kind === 'block' ? constants.O_EXCL : 0));
  try {
    return await write(fh.fd);
  } finally {
    await fh.close();
  }
}
