/**
 * Durable publication of files: data is fsynced before the rename that publishes it, and
 * the directory is fsynced after every create, rename and remove (Qubes' replace_file).
 * A name operation and its directory fsync run as one native call on one thread: on btrfs,
 * a directory fsync from another thread than the rename's waits a scheduler tick (4-10 ms;
 * native/sys/durable.h).
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { native } from '../native/binding.js';
import { hasCode } from '../native/errors.js';
import { openBeneath, type OpenFile } from './open-beneath.js';

/** fsync of a file or device by its path: its data reaches the disk before what follows. */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync of a directory, so that a create, rename or remove in it survives power loss. */
export function fsyncDir(dir: string): Promise<void> {
  return fsyncPath(dir);
}

/** A temporary name beside `path`, in the same directory and so on the same filesystem. */
export function tempPathFor(path: string): string {
  return `${path}~${randomBytes(6).toString('hex')}`;
}

/** rename, then fsync the directories it changed. */
export function renameDurably(from: string, to: string): Promise<void> {
  return native.durable('rename', from, to);
}

/** Publishes a fully written and fsynced temporary file under its final name. */
export const publish = renameDurably;

/** Removes a file if it exists, and fsyncs its directory when something was removed. */
export async function removeDurably(path: string): Promise<boolean> {
  try {
    await native.durable('unlink', path);
  } catch (err) {
    // ENOENT from unlink: nothing was there (an fsync's ENOENT cannot happen: the directory held it).
    if (hasCode(err, 'ENOENT') && (err as { syscall?: string }).syscall === 'unlink') return false;
    throw err;
  }
  return true;
}

/**
 * Replaces `path` by a new file that `fill` writes: a temporary file beside it (mode
 * `mode`), fsynced, renamed into place, the directory fsynced. On failure nothing changes.
 * With `beneath` (a pool's directory) the temporary is made with no link below it followed.
 */
export async function atomicReplace(path: string, fill: (fh: OpenFile) => Promise<unknown>, mode = 0o600, beneath?: string): Promise<void> {
  const temp = tempPathFor(path);
  const flags = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL;
  const fh = await (beneath === undefined ? open(temp, flags, mode) : openBeneath(beneath, temp, flags, mode));
  try {
    await fill(fh);
    await fh.chmod(mode);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  await renameDurably(temp, path);
}

/** Writes `data` to `path` by temporary file, fsync, rename and directory fsync. */
export function atomicWriteFile(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  return atomicReplace(path, (fh) => fh.writeFile(data), mode);
}
