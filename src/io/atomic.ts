/**
 * Durable publication of files: data is fsynced before the rename that publishes it, and
 * the directory is fsynced after every create, rename and remove (Qubes' replace_file).
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/** fsync of a directory, so that a create, rename or remove in it survives power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A temporary name beside `path`, in the same directory and so on the same filesystem. */
export function tempPathFor(path: string): string {
  return `${path}~${randomBytes(6).toString('hex')}`;
}

/** Publishes a fully written and fsynced temporary file under its final name. */
export async function publish(tempPath: string, finalPath: string): Promise<void> {
  await rename(tempPath, finalPath);
  await fsyncDir(dirname(finalPath));
}

/** Removes a file if it exists, and fsyncs its directory when something was removed. */
export async function removeDurably(path: string): Promise<boolean> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  await fsyncDir(dirname(path));
  return true;
}

/** Writes `data` to `path` by temporary file, fsync, rename and directory fsync. */
export async function atomicWriteFile(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const temp = tempPathFor(path);
  const fh = await open(temp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  await publish(temp, path);
}
