/**
 * Opening the two ends of a copy: what they are (file or block device), how big, and the
 * checks that must fail before anything is written (same file, too small, busy, missing
 * directory). Each failure is a CopyError that names the path and the fix.
 */
import { constants, type Stats } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CopyError } from '../errors/index.js';
import { hasCode } from '../native/errors.js';
import { formatBytes } from '../util/size.js';
import { blockDeviceInfo, type BlockDeviceInfo } from './blockdev.js';
import { tempPathFor } from './atomic.js';
import { openBeneath, unsafePath, type OpenFile } from './open-beneath.js';
import { lstatOrUndefined, statOrUndefined } from './stat.js';

export interface CopySource {
  path: string;
  handle: OpenFile;
  stat: Stats;
  size: number;
  kind: 'file' | 'block';
}

export interface CopyTarget {
  /** The path the copy ends up at. */
  path: string;
  /** Where the data is written: a temporary file beside `path`, or the device itself. */
  writePath: string;
  handle: OpenFile;
  kind: 'file' | 'block';
  /** Size the target will have (file) or the bytes of the device the copy defines. */
  size: number;
  device?: BlockDeviceInfo;
}

/**
 * Opens the source of a copy. With `beneath` (a pool's directory), the path is resolved
 * below it with no link followed, and must be a regular file.
 */
export async function openSource(path: string, beneath?: string): Promise<CopySource> {
  const opening = beneath === undefined
    ? open(path, constants.O_RDONLY)
    : openBeneath(beneath, path, constants.O_RDONLY, 0, { expect: 'file' });
  const handle = await opening.catch((err: unknown) => {
    if (hasCode(err, 'ENOENT', 'ENOTDIR')) {
      throw new CopyError('SOURCE_NOT_FOUND', `Source '${path}' does not exist: check the path.`, { path, cause: err });
    }
    throw err;
  });
  try {
    const st = await handle.stat();
    if (st.isFile()) return { path, handle, stat: st, size: st.size, kind: 'file' };
    if (st.isBlockDevice()) {
      const dev = await blockDeviceInfo(handle.fd, st);
      return { path, handle, stat: st, size: dev.size, kind: 'block' };
    }
    throw new CopyError('SOURCE_NOT_SUPPORTED',
      `Source '${path}' is neither a regular file nor a block device: qvol copies volume images and devices.`, { path });
  } catch (err) {
    await handle.close();
    throw err;
  }
}

function sameFile(a: Stats, b: Stats): boolean {
  if (a.isBlockDevice() && b.isBlockDevice()) return a.rdev === b.rdev;
  return a.dev === b.dev && a.ino === b.ino;
}

async function openBlockTarget(path: string, st: Stats, size: number): Promise<CopyTarget> {
  // O_EXCL on a block device is an exclusive claim: it fails with EBUSY while the device is
  // mounted, or held by device-mapper, md or another exclusive opener.
  const handle = await open(path, constants.O_WRONLY | constants.O_EXCL).catch((err: unknown) => {
    if (hasCode(err, 'EBUSY')) {
      throw new CopyError('TARGET_BUSY', `Target device '${path}' is in use (mounted or held by another device or program): unmount or release it first.`, { path, cause: err });
    }
    if (hasCode(err, 'EROFS', 'EACCES', 'EPERM')) {
      throw new CopyError('TARGET_READ_ONLY', `Target device '${path}' cannot be opened for writing: check that it is writable and that you have permission.`, { path, cause: err });
    }
    throw err;
  });
  try {
    const device = await blockDeviceInfo(handle.fd, st);
    if (device.readOnly) {
      throw new CopyError('TARGET_READ_ONLY', `Target device '${path}' is read-only: make it writable (blockdev --setrw) first.`, { path });
    }
    if (size > device.size) {
      throw new CopyError('TARGET_TOO_SMALL',
        `Target device '${path}' holds ${formatBytes(device.size)} but the copy needs ${formatBytes(size)}: use a larger device or a smaller --size.`, { path });
    }
    return { path, writePath: path, handle, kind: 'block', size, device };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

async function openFileTarget(path: string, size: number, mode: number, beneath: string | undefined): Promise<CopyTarget> {
  const dir = dirname(path);
  const dirStat = await (beneath === undefined ? statOrUndefined(dir) : lstatOrUndefined(dir));
  if (dirStat && !dirStat.isDirectory() && beneath !== undefined) throw unsafePath(dir, 'it is not a directory');
  if (!dirStat?.isDirectory()) {
    throw new CopyError('TARGET_DIR_NOT_FOUND', `Target directory '${dir}' does not exist: create it first.`, { path: dir });
  }
  const writePath = tempPathFor(path);
  const flags = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL;
  const handle = await (beneath === undefined ? open(writePath, flags, mode) : openBeneath(beneath, writePath, flags, mode));
  // The mode exactly as asked, whatever the umask (open() only ever takes bits away).
  await handle.chmod(mode).catch(async (err: unknown) => {
    await handle.close();
    await unlink(writePath).catch(() => undefined);
    throw err;
  });
  return { path, writePath, handle, kind: 'file', size };
}

export interface TargetOptions {
  mode?: number | undefined;
  /** A file target may be the source itself: it is replaced by a new inode. */
  replaceSource?: boolean;
  /** A pool's directory that holds the target: no link below it is followed, only a file is made. */
  beneath?: string | undefined;
}

/**
 * Opens the target for a copy of `source`. A file target is a new temporary file beside
 * `path` (copyVolume publishes it; {@link discardTarget} removes it); an existing directory
 * receives the source's base name, as with cp.
 */
export async function openTarget(path: string, source: CopySource, size: number, options: TargetOptions = {}): Promise<CopyTarget> {
  if (options.beneath !== undefined) return openPoolTarget(path, source, size, options, options.beneath);
  let st = await statOrUndefined(path);
  if (st?.isDirectory()) {
    path = join(path, basename(source.path));
    st = await statOrUndefined(path);
  }
  if (st && sameFile(st, source.stat) && !(options.replaceSource && st.isFile())) {
    throw new CopyError('SAME_FILE', `Source and target are the same file ('${source.path}' and '${path}'): choose another target.`, { path: source.path, dest: path });
  }
  if (st?.isBlockDevice()) return openBlockTarget(path, st, size);
  if (st && !st.isFile()) {
    throw new CopyError('TARGET_NOT_SUPPORTED', `Target '${path}' is neither a regular file nor a block device: give a file path or a device.`, { path });
  }
  const fileMode = options.mode ?? (source.kind === 'file' ? source.stat.mode & 0o777 : 0o600);
  return openFileTarget(resolve(path), size, fileMode, undefined);
}

/** A target inside a pool: a regular file by that name or none; never a link, device or directory. */
async function openPoolTarget(path: string, source: CopySource, size: number, options: TargetOptions, beneath: string): Promise<CopyTarget> {
  const st = await lstatOrUndefined(path);
  if (st && !st.isFile()) {
    throw unsafePath(path, `it is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}`);
  }
  if (st && sameFile(st, source.stat) && !options.replaceSource) {
    throw new CopyError('SAME_FILE', `Source and target are the same file ('${source.path}' and '${path}'): choose another target.`, { path: source.path, dest: path });
  }
  return openFileTarget(path, size, options.mode ?? 0o600, beneath);
}

/** Closes the target; a temporary file that is not committed is removed. */
export async function discardTarget(target: CopyTarget): Promise<void> {
  await target.handle.close().catch(() => undefined);
  if (target.writePath !== target.path) await unlink(target.writePath).catch(() => undefined);
}
