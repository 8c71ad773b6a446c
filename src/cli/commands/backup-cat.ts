/**
 * Where `qvol backup cat` writes, by the output rules of io/output.ts: a new or regular
 * file is written sparse under a temporary name and published whole; a pipe, terminal or
 * device (standard output by default) receives every byte in order, zeros included.
 */
import { constants, write } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import type { QvolApp } from '../../app/app.js';
import { backupCat, type ArchiveAccess } from '../../app/backup.js';
import { publish, tempPathFor } from '../../io/atomic.js';
import { checkDeviceOutput, outputKind, writeInPlace } from '../../io/output.js';

const ZEROS = Buffer.alloc(1 << 20);

export async function catToOutput(app: QvolApp, access: ArchiveAccess, vm: string, volume: string, session: string | undefined, output: string | undefined): Promise<void> {
  const kind = output === undefined ? 'stream' : await outputKind(output);
  if (output !== undefined) checkDeviceOutput(output, kind, false, `the volume`);
  if (kind === 'file' && output !== undefined) {
    const temp = tempPathFor(output);
    const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      const { size } = await backupCat(app, access, vm, volume, session, async (offset, data) => { await fh.write(data, 0, data.length, offset); }, { inOrder: false });
      await fh.truncate(size);
      await fh.sync();
      await fh.close();
      await publish(temp, output);
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    return;
  }
  const toStream = async (fd: number): Promise<void> => {
    const put = (buf: Buffer) => new Promise<void>((resolve, reject) => {
      const loop = (at: number) => {
        if (at >= buf.length) return resolve();
        write(fd, buf, at, buf.length - at, null, (err, n) => (err ? reject(err) : loop(at + n)));
      };
      loop(0);
    });
    let next = 0;
    const zerosUpTo = async (end: number) => {
      while (next < end) {
        const n = Math.min(ZEROS.length, end - next);
        await put(ZEROS.subarray(0, n));
        next += n;
      }
    };
    const { size } = await backupCat(app, access, vm, volume, session, async (offset, data) => {
      await zerosUpTo(offset);
      await put(data);
      next += data.length;
    }, { inOrder: true });
    await zerosUpTo(size);
  };
  await (output === undefined ? toStream(1) : writeInPlace(output, 'stream', toStream));
}
