/**
 * Copies a volume (a file or a block device) to a file or a block device at device speed,
 * sparse end to end. The whole copy runs in one native job on a worker thread; this module
 * opens the ends, checks them, maps errors, and publishes a file target atomically.
 *
 * The ladder (each rung probed by trying it; "auto" falls back, "always" fails):
 *   1. FICLONE of the whole file (btrfs, XFS): O(extents), the copy shares every block.
 *   2. Per data extent, copy_file_range (same filesystem): in-kernel, may reflink.
 *   3. Per data extent, read / zero-check / write with a 1 MiB buffer.
 * Holes in the source, and 4 KiB zero blocks found on rung 3, become holes in a file
 * target; on a block device they are punched or zeroed unless the device is known zero.
 */
import { native, type CopyMethod, type Mode, type NativeCopyStats, type DisableBits } from '../native/binding.js';
import { hasCode, withCallerStack } from '../native/errors.js';
import { CancelledError, CopyError, UsageError } from '../errors/index.js';
import { formatBytes } from '../util/size.js';
import { publish } from './atomic.js';
import { disableMask } from './capabilities.js';
import { cancelFlag, progressReporter, type CopyProgress } from './progress.js';
import { discardTarget, openSource, openTarget, type CopySource, type CopyTarget } from './copy-target.js';

export type { CopyMethod, CopyProgress, Mode };

export interface CopyOptions {
  /** Clone: 'auto' tries it, 'always' fails with REFLINK_UNSUPPORTED if it cannot, 'never' skips it. */
  reflink?: Mode;
  /** Holes: 'auto' keeps them, 'always' also turns every zero block into one, 'never' allocates all. */
  sparse?: Mode;
  /** Size of the target: smaller than the source truncates, larger extends with zeros. */
  size?: number;
  /** A block-device target that already reads zero everywhere (a new LV or zvol): skip zeroing. */
  targetIsZero?: boolean;
  /** fsync the target before returning (default true). */
  sync?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: CopyProgress) => void;
  /** Give a file target the source's mtime, to the nanosecond (and atime = mtime). */
  preserveMtime?: boolean;
  /** Permission bits of a new file target; default: the source's, or 0600 from a device. */
  mode?: number;
  /** Allow a file to be copied onto its own path: the result replaces it as a new inode. */
  replaceSource?: boolean;
  /**
   * Pool directories that hold the source or the target: below them no link is followed
   * (io/open-beneath.ts), and only regular files are read or made.
   */
  beneath?: { source?: string | undefined; target?: string | undefined };
  /** Rungs to force off, for tests and benchmarks. */
  disable?: Array<keyof DisableBits>;
}

export interface CopyResult extends NativeCopyStats {
  source: string;
  target: string;
  targetKind: 'file' | 'block';
  /** Bytes the copy defines in the target (its size, or the device range written). */
  size: number;
  seconds: number;
}

const MODES: readonly Mode[] = ['auto', 'always', 'never'];

function checkMode(value: Mode | undefined, name: string): Mode {
  if (value === undefined) return 'auto';
  if (!MODES.includes(value)) {
    throw new UsageError(`Invalid ${name} mode '${String(value)}': use auto, always or never.`);
  }
  return value;
}

/** Turns what the kernel said into the sentence a user needs; other errors pass as they are. */
function explain(err: unknown, source: CopySource, target: CopyTarget, reflink: Mode): unknown {
  if (hasCode(err, 'ENOSPC', 'EDQUOT')) {
    return new CopyError('NO_SPACE',
      `No space left on the target of '${target.path}' (the copy needs up to ${formatBytes(target.size)}): free space or choose another target; the partial copy was removed.`,
      { path: target.path, cause: err });
  }
  if (hasCode(err, 'ECANCELED')) {
    return new CancelledError(`Copy of '${source.path}' to '${target.path}' was cancelled; nothing was left behind.`,
      { path: source.path, dest: target.path, cause: err });
  }
  if (reflink === 'always' && (err as { syscall?: string }).syscall === 'ioctl(FICLONE)') {
    return new CopyError('REFLINK_UNSUPPORTED',
      `Cannot reflink '${source.path}' to '${target.path}': both must be files on one filesystem that shares extents (btrfs, XFS); use --reflink auto to copy instead.`,
      { path: source.path, dest: target.path, cause: err });
  }
  return err;
}

/**
 * Copies `sourcePath` to `targetPath`. A file target is written under a temporary name,
 * fsynced and renamed into place, so a failed or cancelled copy leaves nothing behind; a
 * block-device target is claimed exclusively and must be at least as large as the copy.
 */
export async function copyVolume(sourcePath: string, targetPath: string, options: CopyOptions = {}): Promise<CopyResult> {
  const reflink = checkMode(options.reflink, 'reflink');
  const sparse = checkMode(options.sparse, 'sparse');
  if (options.size !== undefined && !(Number.isSafeInteger(options.size) && options.size >= 0)) {
    throw new UsageError(`Invalid size ${options.size}: it must be a whole number of bytes.`);
  }
  if (options.signal?.aborted) {
    throw new CancelledError(`Copy of '${sourcePath}' was cancelled before it started.`, { path: sourcePath });
  }
  const started = process.hrtime.bigint();
  const source = await openSource(sourcePath, options.beneath?.source);
  let target: CopyTarget | undefined;
  const cancel = cancelFlag(options.signal);
  try {
    const size = options.size ?? source.size;
    target = await openTarget(targetPath, source, size, { mode: options.mode, replaceSource: options.replaceSource === true, beneath: options.beneath?.target });
    if (reflink === 'always' && (source.kind !== 'file' || target.kind !== 'file')) {
      throw new CopyError('REFLINK_UNSUPPORTED',
        `Cannot reflink '${source.path}' to '${target.path}': only regular files share extents; use --reflink auto.`,
        { path: source.path, dest: target.path });
    }
    const stats = await withCallerStack(() => native.copyFile(source.handle.fd, target!.handle.fd, {
      length: Math.min(size, source.size),
      targetSize: size,
      targetKnownZero: target!.kind === 'file' || options.targetIsZero === true,
      discardZeroes: target!.device?.discardZeroes ?? 0,
      reflink,
      sparse,
      disable: disableMask(options.disable),
      sync: options.sync ?? true,
      copyMtime: options.preserveMtime === true,
      cancel: cancel.flag,
      srcPath: source.path,
      dstPath: target!.writePath,
    }, progressReporter(options.onProgress)));
    await target.handle.close();
    if (target.kind === 'file') await publish(target.writePath, target.path);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { ...stats, source: source.path, target: target.path, targetKind: target.kind, size, seconds };
  } catch (err) {
    if (target) await discardTarget(target);
    throw target ? explain(err, source, target, reflink) : err;
  } finally {
    cancel.release();
    await source.handle.close();
  }
}

export { copyMethodName } from './copy-method.js';
