/**
 * The reflink driver's file primitives (as qubes-core-admin's qubes/storage/reflink.py has
 * them), each durable: data is fsynced before the rename that publishes it, and every
 * create, rename and remove is followed by an fsync of the directory it changed, in one
 * native call on one thread (io/atomic.ts says why).
 */
import { constants } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CopyMethod } from '../../io/copy.js';
import { atomicReplace, removeDurably, renameDurably } from '../../io/atomic.js';
import { native } from '../../native/binding.js';
import { hasCode } from '../../native/errors.js';
import { isBeneath, openBeneath, type OpenFile } from '../../io/open-beneath.js';
import { durableStep } from '../../util/crash.js';

/** mkdir (one level, never recursive, mode 0700), fsyncing the parent; true when it was created. */
export async function createDir(path: string): Promise<boolean> {
  try {
    await native.durable('mkdir', path, undefined, 0o700);
  } catch (err) {
    if (hasCode(err, 'EEXIST') && (await stat(path)).isDirectory()) return false;
    throw err;
  }
  durableStep();
  return true;
}

/** rmdir if empty; true when it was removed. */
export async function removeEmptyDir(path: string): Promise<boolean> {
  try {
    await native.durable('rmdir', path);
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'ENOTEMPTY', 'EEXIST') && (err as { syscall?: string }).syscall === 'rmdir') return false;
    throw err;
  }
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

/** A second name for `from` at `to`, in a directory created if needed. */
export async function hardlinkFile(from: string, to: string): Promise<void> {
  await createDir(dirname(to));
  await native.durable('link', from, to);
  durableStep();
}

/**
 * The primitives that open images, bound to the pool's directory: every open resolves
 * below it with no link followed (io/open-beneath.ts), and only regular files are used.
 * Names alone (rename, unlink, link) never follow a link in their last component, and the
 * directories on their way are checked by the volume before it acts.
 */
export class PoolFiles {
  constructor(readonly root: string) {}

  /** A new sparse file of `size` bytes at `path` (a new inode, mode 0600), published atomically. */
  async createSparseFile(path: string, size: number): Promise<void> {
    await createDir(dirname(path));
    await atomicReplace(path, (fh) => fh.truncate(size), 0o600, this.root);
    durableStep();
  }

  /** `path` open read-write (a regular file below the pool, no link followed). */
  openImage(path: string): Promise<OpenFile> {
    return openBeneath(this.root, path, constants.O_RDWR, 0, { expect: 'file' });
  }

  /** Truncates or extends `path` in place (same inode) and fsyncs it; ENOENT if absent. */
  async resizeFile(path: string, size: number): Promise<void> {
    const fh = await openBeneath(this.root, path, constants.O_RDWR, 0, { expect: 'file' });
    try {
      await fh.truncate(size);
      await fh.sync();
    } finally {
      await fh.close();
    }
    durableStep();
  }

  /** fsync of an image, so its data is on disk before a rename publishes it. */
  async syncFile(path: string): Promise<void> {
    const fh = await openBeneath(this.root, path, constants.O_RDONLY, 0, { expect: 'file' });
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /**
   * A new inode at `to` with the contents of `from`, by the copy engine (clone first,
   * sparse copy otherwise), published atomically; resolves to how the data moved. `from`
   * may be another pool's image (an import). `size` sets the result's size; `copyMtime`
   * gives it `from`'s mtime (ns), as the precache needs.
   */
  async copyFile(from: string, to: string, options: { size?: number; copyMtime?: boolean; signal?: AbortSignal | undefined } = {}): Promise<CopyMethod> {
    await createDir(dirname(to));
    const { copyVolume } = await import('../../io/copy.js'); // the engine, loaded by the operations that copy
    const { method } = await copyVolume(from, to, {
      ...(options.size === undefined ? {} : { size: options.size }),
      preserveMtime: options.copyMtime === true,
      mode: 0o600,
      replaceSource: true,
      ...(options.signal ? { signal: options.signal } : {}),
      beneath: { source: isBeneath(this.root, from) ? this.root : undefined, target: this.root },
    });
    durableStep();
    return method;
  }
}
