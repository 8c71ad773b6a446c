/**
 * The reflink driver's file primitives (as qubes-core-admin's qubes/storage/reflink.py has
 * them), each durable: data is fsynced before the rename that publishes it, and every
 * create, rename and remove is followed by an fsync of the directory it changed.
 */
import { link, mkdir, open, rmdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { copyVolume, type CopyMethod } from '../../io/copy.js';
import { atomicReplace, fsyncDir, removeDurably, renameDurably } from '../../io/atomic.js';
import { hasCode } from '../../native/errors.js';
import { durableStep } from '../../util/crash.js';

/** mkdir (one level, never recursive, mode 0700), fsyncing the parent; true when it was created. */
export async function createDir(path: string): Promise<boolean> {
  try {
    await mkdir(path, 0o700);
  } catch (err) {
    if (hasCode(err, 'EEXIST') && (await stat(path)).isDirectory()) return false;
    throw err;
  }
  await fsyncDir(dirname(path));
  durableStep();
  return true;
}

/** rmdir if empty; true when it was removed. */
export async function removeEmptyDir(path: string): Promise<boolean> {
  try {
    await rmdir(path);
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'ENOTEMPTY', 'EEXIST')) return false;
    throw err;
  }
  await fsyncDir(dirname(path));
  durableStep();
  return true;
}

export async function renameFile(from: string, to: string): Promise<void> {
  await renameDurably(from, to);
  durableStep();
}

/** Removes a file; false when there was none (idempotent). */
export async function removeFile(path: string): Promise<boolean> {
  const removed = await removeDurably(path);
  if (removed) durableStep();
  return removed;
}

/** A new sparse file of `size` bytes at `path` (a new inode, mode 0600), published atomically. */
export async function createSparseFile(path: string, size: number): Promise<void> {
  await createDir(dirname(path));
  await atomicReplace(path, (fh) => fh.truncate(size));
  durableStep();
}

/** Truncates or extends `path` in place (same inode) and fsyncs it; ENOENT if absent. */
export async function resizeFile(path: string, size: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.truncate(size);
    await fh.sync();
  } finally {
    await fh.close();
  }
  durableStep();
}

/** A second name for `from` at `to`, in a directory created if needed. */
export async function hardlinkFile(from: string, to: string): Promise<void> {
  await createDir(dirname(to));
  await link(from, to);
  await fsyncDir(dirname(to));
  durableStep();
}

/**
 * A new inode at `to` with the contents of `from`, by the copy engine (clone first, sparse
 * copy otherwise), published atomically. `size` sets the result's size; `copyMtime` gives
 * it `from`'s mtime (ns), as the precache needs.
 */
/** Copies a volume image; resolves to how the data moved ('clone' is a reflink). */
export async function copyFile(from: string, to: string, options: { size?: number; copyMtime?: boolean } = {}): Promise<CopyMethod> {
  await createDir(dirname(to));
  const { method } = await copyVolume(from, to, {
    ...(options.size === undefined ? {} : { size: options.size }),
    preserveMtime: options.copyMtime === true,
    mode: 0o600,
    replaceSource: true,
  });
  durableStep();
  return method;
}
