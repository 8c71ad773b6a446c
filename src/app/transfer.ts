/**
 * A volume's data out and in: one export and one import operation, whatever the format
 * (raw, sparse, or the driver's own, such as zfs) and whatever the end (a path or an fd).
 * They own the format routing, the Qubes semantics around the data path, and the durable
 * publication of an output file:
 * - an export reads the volume's committed state: export() gives a stable path (the
 *   committed image, or a clone of the committed snapshot), the pre-start data of a running
 *   VM; a revision or an incremental change is only in the driver's own format;
 * - an import writes into import_data's target and commits with import_data_end only when
 *   the whole stream arrived and validated; the volume is otherwise unchanged.
 */
import { constants } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { StreamError, UnsupportedFormatError, UsageError } from '../errors/index.js';
import { publish, tempPathFor } from '../io/atomic.js';
import { copyVolume, type CopyResult } from '../io/copy.js';
import { openSource } from '../io/copy-target.js';
import { checkDeviceOutput, outputKind, writeInPlace } from '../io/output.js';
import type { CopyProgress } from '../io/progress.js';
import { exportStream } from '../io/streams/export.js';
import { summarize, type StreamSummary } from '../io/streams/format.js';
import { importStream, readStreamHeader, sparseImageSize } from '../io/streams/import.js';
import { GENERIC_FORMATS, formatsOf } from '../model/features.js';
import type { Volume } from '../model/volume.js';
import { formatBytes } from '../util/size.js';

/** One end of a transfer: a file or block device by path, or an open fd (a pipe, stdio). */
export type TransferEnd = { path: string } | { fd: number; name?: string };

interface Common {
  /** raw, sparse, or a format of the volume's driver (see `transferFormatsOf`). */
  format: string;
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress) => void;
}

export interface ExportOptions extends Common {
  to: TransferEnd;
  /**
   * The output path may be a block device: the volume is written onto it, which destroys
   * what it holds. Without this, a block device is refused.
   */
  overwriteDevice?: boolean;
  /** sparse: end with a CRC32 chunk (default true). */
  crc?: boolean;
  /** A revision to send instead of the committed state (driver formats only). */
  revision?: string;
  /** An incremental stream from this revision (driver formats only). */
  since?: string;
}

export interface ImportOptions extends Common {
  from: TransferEnd;
  /** The size the caller declares (Qubes' ImportWithSize): the input must hold exactly that. */
  size?: number;
  /** Apply an incremental stream in place (driver formats only). */
  incremental?: boolean;
}

/** What a transfer did; sparse exports also say their chunks, CRC and pipe size. */
export type TransferSummary = StreamSummary & { chunks?: number; crc?: string; pipeSize?: number };

/** The formats a volume exports and imports: raw, sparse, then its driver's own. */
export function transferFormatsOf(volume: Volume): string[] {
  return formatsOf(volume.capabilities);
}

function isGeneric(format: string): format is 'raw' | 'sparse' {
  return (GENERIC_FORMATS as readonly string[]).includes(format);
}

function checkFormat(volume: Volume, format: string): void {
  if (isGeneric(format) || volume.nativeFormat(format)) return;
  throw new UnsupportedFormatError(`Volume ${volume.vid} (a ${volume.pool.driver} pool) does not move the ${format} format: it takes ${transferFormatsOf(volume).join(', ')}.`, { path: volume.vid });
}

function endName(end: TransferEnd): string {
  return 'path' in end ? end.path : end.name ?? `fd ${end.fd}`;
}

// -- export ------------------------------------------------------------------------------------

export async function exportVolume(volume: Volume, options: ExportOptions): Promise<TransferSummary> {
  checkFormat(volume, options.format);
  if (isGeneric(options.format) && (options.revision !== undefined || options.since !== undefined)) {
    throw new UsageError(`A revision or an incremental stream of ${volume.vid} needs its driver's own format (${[...volume.capabilities.nativeFormats.keys()].join(', ') || `none in a ${volume.pool.driver} pool`}): raw and sparse carry the committed state, whole.`);
  }
  const to = options.to;
  if ('fd' in to) return exportToFd(volume, to.fd, endName(to), options);
  const kind = await outputKind(to.path);
  checkDeviceOutput(to.path, kind, options.overwriteDevice, 'the volume');
  if (kind === 'stream' || (kind === 'block' && options.format !== 'raw')) {
    return writeInPlace(to.path, kind, (fd) => exportToFd(volume, fd, to.path, options));
  }
  if (options.format === 'raw') return exportRawFile(volume, to.path, options);
  // A stream file appears whole or not at all. An existing regular file is replaced, as
  // cp, dd and qemu-img convert replace theirs: the output path is the caller's to choose.
  const temp = tempPathFor(to.path);
  const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    const summary = await exportToFd(volume, fh.fd, to.path, options);
    await fh.sync();
    await fh.close();
    await publish(temp, to.path);
    return summary;
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

async function exportToFd(volume: Volume, fd: number, name: string, options: ExportOptions): Promise<TransferSummary> {
  if (!isGeneric(options.format)) return volume.sendNative(options.format, fd, { revision: options.revision, since: options.since, signal: options.signal });
  const path = await volume.export();
  try {
    return await exportStream(path, fd, {
      format: options.format,
      outPath: name,
      ...(options.crc === undefined ? {} : { crc: options.crc }),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } finally {
    await volume.exportEnd(path);
  }
}

/** Raw to a file: the copy engine (a reflink where the filesystem shares extents, else only the data extents, holes kept). */
async function exportRawFile(volume: Volume, path: string, options: ExportOptions): Promise<TransferSummary> {
  const started = process.hrtime.bigint();
  const from = await volume.export();
  try {
    // No size of ours: the export's own (the committed state's), not a running VM's
    // resized one.
    return copySummary(await copyVolume(from, path, {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    }), started, 'whole');
  } finally {
    await volume.exportEnd(from);
  }
}

// -- import ------------------------------------------------------------------------------------

export async function importVolume(volume: Volume, options: ImportOptions): Promise<TransferSummary> {
  checkFormat(volume, options.format);
  if (options.incremental && isGeneric(options.format)) throw new UsageError(`An incremental import needs the driver's own format, not ${options.format}.`);
  const from = options.from;
  if (options.format === 'raw' && 'path' in from) return importRawFile(volume, from.path, options);
  if ('fd' in from) return importFromFd(volume, from.fd, endName(from), options);
  const input = await openSource(from.path);
  try {
    return await importFromFd(volume, input.handle.fd, input.path, options);
  } finally {
    await input.handle.close();
  }
}

async function importFromFd(volume: Volume, fd: number, name: string, options: ImportOptions): Promise<TransferSummary> {
  if (!isGeneric(options.format)) return volume.receiveNative(options.format, fd, { size: options.size, incremental: options.incremental, signal: options.signal });
  const header = options.format === 'sparse' ? await readStreamHeader(fd, name) : undefined;
  // What the stream says it holds: exact for qvol's sparse images; a raw pipe says nothing.
  const held = header ? (header.exactSize || undefined) : undefined;
  const size = importSize(volume, name, options.size, held, header ? sparseImageSize(header) : undefined);
  return intoImportTarget(volume, size, (target) => importStream(fd, target, {
    format: options.format as 'raw' | 'sparse',
    size,
    ...(header ? { header } : {}),
    targetIsZero: volume.importTargetReadsZero,
    inPath: name,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  }));
}

/**
 * Raw data from a file or block device: the copy engine reads only its data extents and
 * clones or copies in-kernel where it can. The size given must be the input's.
 */
async function importRawFile(volume: Volume, path: string, options: ImportOptions): Promise<TransferSummary> {
  const started = process.hrtime.bigint();
  const input = await openSource(path);
  await input.handle.close();
  const size = importSize(volume, input.path, options.size, input.size);
  return copySummary(await intoImportTarget(volume, size, (target) => copyVolume(input.path, target, {
    size,
    mode: 0o600, // a VM's disk, whatever the input's mode
    targetIsZero: volume.importTargetReadsZero,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  })), started, 'data');
}

/** import_data, `fill`, then import_data_end: committed only if `fill` resolved. */
export async function intoImportTarget<T>(volume: Volume, size: number, fill: (target: string) => Promise<T>): Promise<T> {
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
  if (given !== undefined && held !== undefined && given !== held) {
    throw new StreamError('STREAM_SIZE_MISMATCH',
      `Import from '${inPath}' refused: the stream holds ${held} bytes (${formatBytes(held)}) but the size given is ${given} (${formatBytes(given)}); the volume is unchanged.`, 0);
  }
  return given ?? held ?? fallback ?? volume.size;
}

/**
 * What a copy-engine transfer of a volume did, as a summary; `bytes` is what crossed: the
 * whole file written (export) or the data read (import).
 */
function copySummary(r: CopyResult, started: bigint, crossed: 'whole' | 'data'): StreamSummary {
  const holeBytes = r.bytesSkipped + r.bytesZeroed;
  const bytes = crossed === 'whole' ? r.size : r.size - holeBytes;
  return summarize('raw', { bytes, size: r.size, dataBytes: r.size - holeBytes, holeBytes, method: r.method }, started);
}
