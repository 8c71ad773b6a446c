/**
 * A system error (ENOENT, EACCES, ...) that reached the user without a qvol error around
 * it, said as one sentence with the fix: the CLI never prints "EACCES: permission denied,
 * open '/x'". The code stays the errno's name, for scripts; both paths are named when the
 * call had two (a rename, a copy).
 */
import type { SystemErrorProps } from '../native/errors.js';

function quoted(err: SystemErrorProps): string {
  if (err.path === undefined) return 'it';
  return err.dest === undefined ? `'${err.path}'` : `'${err.path}' -> '${err.dest}'`;
}

const WORDS: Record<string, (what: string, err: SystemErrorProps) => string> = {
  ENOENT: (w) => `${w} does not exist: check the path.`,
  ENOTDIR: (w) => `A part of ${w} is not a directory: check the path.`,
  EISDIR: (w) => `${w} is a directory: give a file.`,
  EEXIST: (w) => `${w} already exists: remove it or choose another name.`,
  EACCES: (w) => `Permission denied on ${w}: run qvol as root, or give yourself access to it.`,
  EPERM: (w) => `The operation is not permitted on ${w}: run qvol as root, and check that it is not immutable or in use as swap.`,
  EROFS: (w) => `${w} is on a read-only filesystem or device: remount it read-write or choose another place.`,
  ENOSPC: (w) => `No space left on the filesystem or device of ${w}: free space and try again.`,
  EDQUOT: (w) => `The disk quota is exhausted on ${w}: free space or raise the quota.`,
  EBUSY: (w) => `${w} is in use (mounted, or held by another program or device): release it and try again.`,
  ETXTBSY: (w) => `${w} is in use by a running program: stop it and try again.`,
  ELOOP: (w) => `${w} leads through a symbolic link that qvol does not follow: replace the link by the real path.`,
  EXDEV: (w) => `${w} crosses filesystems, which this operation cannot: keep both on one filesystem.`,
  EIO: (w) => `Input/output error on ${w}: the disk or device failed; check the kernel log (dmesg) before trying again.`,
  EMFILE: () => 'Too many open files in this process: raise the limit (ulimit -n) and try again.',
  ENFILE: () => 'Too many open files on this system: close some programs and try again.',
  ENOMEM: () => 'Out of memory: free memory and try again.',
  EPIPE: (w) => `The reader of ${w} went away before the end: check the program on the other side of the pipe.`,
  ENXIO: (w) => `${w} has no device or reader behind it: check that the device exists or that a reader is attached.`,
  ENODEV: (w) => `${w} is not on a device that supports this operation: choose another place.`,
  EOPNOTSUPP: (w, e) => `The filesystem or device of ${w} does not support ${e.syscall}: choose another place, or let qvol fall back (--reflink auto).`,
  ENOTTY: (w, e) => `${w} does not support ${e.syscall}: it is not the kind of file or device the operation needs.`,
  EINVAL: (w, e) => `${e.syscall} refused ${w} as invalid: it is not the kind of file, device or size the operation needs.`,
};

/** One sentence with the fix for a system error. */
export function describeSystemError(err: SystemErrorProps): string {
  const what = quoted(err);
  const words = Object.hasOwn(WORDS, err.code) ? WORDS[err.code]! : undefined;
  if (words) {
    const sentence = words(what, err);
    return sentence.charAt(0).toUpperCase() + sentence.slice(1);
  }
  return `${err.syscall} of ${what} failed with ${err.code}: check the path and try again.`;
}
