/**
 * Opening files inside a pool without following any link qvol did not make. Names are
 * resolved below the pool's directory by the addon (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS, or a component walk with O_NOFOLLOW where the kernel lacks it), so
 * a link planted at an image's name or at a directory on the way fails the open itself:
 * there is no window between a check and the use, as there is after an lstat.
 */
import { close, fchmod, fstat, fsync, ftruncate, type Stats } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { promisify } from 'node:util';
import { UnsafePathError } from '../errors/index.js';
import { native, type OpenedBeneath } from '../native/binding.js';
import { hasCode } from '../native/errors.js';
import { writeAll } from './write-all.js';

const fstatAsync = promisify(fstat);

/** What the data path does with an open file: a subset of FileHandle, by the same names. */
export interface OpenFile {
  readonly fd: number;
  stat(): Promise<Stats>;
  chmod(mode: number): Promise<void>;
  truncate(length: number): Promise<void>;
  sync(): Promise<void>;
  writeFile(data: string | Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** A descriptor the addon opened, owned by this object until close(). */
class FdFile implements OpenFile {
  constructor(readonly fd: number) {}
  stat(): Promise<Stats> { return fstatAsync(this.fd); }
  chmod(mode: number): Promise<void> { return promisify(fchmod)(this.fd, mode); }
  truncate(length: number): Promise<void> { return promisify(ftruncate)(this.fd, length); }
  sync(): Promise<void> { return promisify(fsync)(this.fd); }
  close(): Promise<void> { return promisify(close)(this.fd); }
  writeFile(data: string | Uint8Array): Promise<void> {
    return writeAll(this.fd, typeof data === 'string' ? Buffer.from(data) : data);
  }
}

export interface BeneathOptions {
  /** The node the name must be: anything else is refused (and closed) before use. */
  expect?: 'file' | 'directory';
  /** false forces the component walk instead of openat2 (tests of the fallback rung). */
  openat2?: boolean;
}

/** Whether `path` is `root` or below it, lexically. */
export function isBeneath(root: string, path: string): boolean {
  const rel = relative(root, path);
  return !rel.startsWith('..') && !isAbsolute(rel);
}

/** The refusal of a pool name that is not what qvol makes there; `what` says what it is. */
export function unsafePath(path: string, what: string): UnsafePathError {
  return new UnsafePathError(`Refusing to use '${path}': ${what}, which qvol does not make; remove it (qvol follows no link in a pool) and try again.`, { path });
}

/**
 * Opens `path`, which must lie below `root`, with `flags` (and `mode` for O_CREAT); no
 * symbolic link below `root` is followed. A link on the way, or a node other than
 * `expect`, is an UnsafePathError naming the path; other failures keep their errno.
 */
export async function openBeneath(root: string, path: string, flags: number, mode = 0o600, options: BeneathOptions = {}): Promise<OpenFile & { rung: OpenedBeneath['rung'] }> {
  const rel = relative(root, path);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw unsafePath(path, `it is not inside the pool directory '${root}'`);
  let opened: OpenedBeneath;
  try {
    opened = await native.openBeneath(root, rel, flags, mode, { openat2: options.openat2 ?? true });
  } catch (err) {
    if (hasCode(err, 'ELOOP')) throw unsafePath(path, 'a symbolic link is on its way');
    if (hasCode(err, 'EXDEV')) throw unsafePath(path, 'it leads out of the pool directory');
    throw err;
  }
  const file = Object.assign(new FdFile(opened.fd), { rung: opened.rung });
  if (options.expect !== undefined && opened.type !== options.expect) {
    await file.close();
    throw unsafePath(path, `it is not a ${options.expect === 'file' ? 'regular file' : 'directory'}`);
  }
  return file;
}
