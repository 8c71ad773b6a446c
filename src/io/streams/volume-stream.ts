/**
 * Volumes in and out of streams, with the Qubes semantics around the data path: an export
 * reads the volume's committed state (export() gives a stable path: the committed image,
 * or a clone of the committed snapshot; the pre-start data of a running VM), and an import
 * writes into import_data's target and commits with import_data_end only when the whole
 * stream arrived and validated. The `zfs` format is the driver's own (zfs send / recv).
 */
import type { Volume } from '../../model/volume.js';
import { StreamError, UsageError } from '../../model/errors.js';
import { formatBytes } from '../../util/size.js';
import { copyVolume, type CopyResult } from '../copy.js';
import { openSource } from '../copy-target.js';
import type { CopyProgress } from '../progress.js';
import { exportStream, type StreamExportResult } from './export.js';
import { summarize, type StreamFormat, type StreamSummary } from './format.js';
import { importStream, readStreamHeader, sparseImageSize, type StreamImportResult } from './import.js';

/** A volume that moves in its storage's own stream format (ZFS: zfs send / zfs recv). */
export interface NativeStreamVolume {
  sendStream(outFd: number, options: { since?: string | undefined; revision?: string | undefined }): Promise<StreamSummary>;
  receiveStream(inFd: number, options: { size?: number | undefined; incremental?: boolean }): Promise<StreamSummary>;
}

function nativeStreams(volume: Volume): NativeStreamVolume {
  const v = volume as Partial<NativeStreamVolume>;
  if (typeof v.sendStream !== 'function' || typeof v.receiveStream !== 'function') {
    throw new UsageError(`Volume ${volume.vid} is in a ${volume.pool.driver} pool: the zfs format needs a ZFS volume at both ends; use raw or sparse.`);
  }
  return v as NativeStreamVolume;
}

export interface VolumeExportOptions {
  format: StreamFormat;
  /** sparse: end with a CRC32 chunk (default true). */
  crc?: boolean;
  /** zfs: an incremental stream from this revision (or snapshot name). */
  since?: string;
  /** zfs: send this revision instead of the committed state. */
  revision?: string;
  outPath?: string;
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress) => void;
}

export async function exportVolumeStream(volume: Volume, outFd: number, options: VolumeExportOptions): Promise<StreamExportResult | StreamSummary> {
  if (options.format === 'zfs') return nativeStreams(volume).sendStream(outFd, { since: options.since, revision: options.revision });
  if (options.since !== undefined || options.revision !== undefined) throw new UsageError('--since and --revision need --format zfs: raw and sparse streams carry the committed state, whole.');
  const path = await volume.export();
  try {
    return await exportStream(path, outFd, {
      format: options.format,
      ...(options.crc === undefined ? {} : { crc: options.crc }),
      ...(options.outPath === undefined ? {} : { outPath: options.outPath }),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } finally {
    await volume.exportEnd(path);
  }
}

export interface VolumeImportOptions {
  format: StreamFormat;
  /** The size the caller declares (Qubes' ImportWithSize): the stream must match it. */
  size?: number;
  /** raw from a regular file: its size, the default when no size is declared. */
  inputSize?: number;
  /** zfs: apply an incremental stream to the volume in place. */
  incremental?: boolean;
  inPath?: string;
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress) => void;
}

function sizeMismatch(inPath: string, given: number, held: number): StreamError {
  return new StreamError('STREAM_SIZE_MISMATCH',
    `Import from '${inPath}' refused: the stream holds ${held} bytes (${formatBytes(held)}) but the size given is ${given} (${formatBytes(given)}); the volume is unchanged.`, 0);
}

/** import_data, `fill`, then import_data_end: committed only if `fill` resolved. */
async function intoImportTarget<T>(volume: Volume, size: number, fill: (target: string) => Promise<T>): Promise<T> {
  const target = await volume.importData(size);
  let ok = false;
  try {
    const result = await fill(target);
    ok = true;
    return result;
  } finally {
    await volume.importDataEnd(ok);
  }
}

/** The size the import gives the volume; the size given must match what the input holds. */
function importSize(volume: Volume, inPath: string, given: number | undefined, held: number | undefined, fallback?: number): number {
  if (given !== undefined && held !== undefined && given !== held) throw sizeMismatch(inPath, given, held);
  return given ?? held ?? fallback ?? volume.size;
}

export async function importVolumeStream(volume: Volume, inFd: number, options: VolumeImportOptions): Promise<StreamImportResult | StreamSummary> {
  const inPath = options.inPath ?? `fd ${inFd}`;
  const format = options.format;
  if (format === 'zfs') return nativeStreams(volume).receiveStream(inFd, { size: options.size, incremental: options.incremental === true });
  if (options.incremental) throw new UsageError('--incremental needs --format zfs.');
  const header = format === 'sparse' ? await readStreamHeader(inFd, inPath) : undefined;
  // What the stream says it holds: exact for raw files and qvol's sparse images.
  const held = header ? (header.exactSize || undefined) : options.inputSize;
  const size = importSize(volume, inPath, options.size, held, header ? sparseImageSize(header) : undefined);
  return intoImportTarget(volume, size, (target) => importStream(inFd, target, {
    format,
    size,
    ...(header ? { header } : {}),
    targetIsZero: volume.importTargetReadsZero,
    inPath,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  }));
}

/** A sparse or zfs stream from a file. */
export async function importVolumeStreamFile(volume: Volume, path: string, options: VolumeImportOptions): Promise<StreamImportResult | StreamSummary> {
  const input = await openSource(path);
  try {
    return await importVolumeStream(volume, input.handle.fd, { ...options, inPath: input.path });
  } finally {
    await input.handle.close();
  }
}

/**
 * What a copy-engine transfer of a volume did, as a stream summary; `bytes` is what the
 * summary counts as having crossed: the whole file written (export) or the data read (import).
 */
function copySummary(r: CopyResult, started: bigint, crossed: 'whole' | 'data'): StreamSummary {
  const holeBytes = r.bytesSkipped + r.bytesZeroed;
  const bytes = crossed === 'whole' ? r.size : r.size - holeBytes;
  return summarize('raw', { bytes, size: r.size, dataBytes: r.size - holeBytes, holeBytes, method: r.method }, started);
}

/**
 * The committed data as a raw file: the copy engine (a reflink where the filesystem shares
 * extents, else only the data extents copied, holes kept).
 */
export async function exportVolumeFile(volume: Volume, path: string, options: Pick<VolumeExportOptions, 'signal' | 'onProgress'> = {}): Promise<StreamSummary> {
  const started = process.hrtime.bigint();
  const from = await volume.export();
  try {
    return copySummary(await copyVolume(from, path, {
      size: volume.size,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    }), started, 'whole');
  } finally {
    await volume.exportEnd(from);
  }
}

/**
 * Raw data from a file or block device: the copy engine reads only its data extents and
 * clones or copies in-kernel where it can. The size given must be the input's.
 */
export async function importVolumeFile(volume: Volume, path: string, options: Omit<VolumeImportOptions, 'format'>): Promise<StreamSummary> {
  const started = process.hrtime.bigint();
  const input = await openSource(path);
  await input.handle.close();
  const size = importSize(volume, input.path, options.size, input.size);
  return copySummary(await intoImportTarget(volume, size, (target) => copyVolume(input.path, target, {
    size,
    targetIsZero: volume.importTargetReadsZero,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  })), started, 'data');
}
