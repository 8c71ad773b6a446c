/**
 * A raw or sparse stream read from an fd into a volume's import target (a file or block
 * device), validated as it arrives: the exact size, the chunk framing, the CRC when the
 * stream carries one. The native job returns only when all of it arrived and checked, so
 * the caller commits on success and discards otherwise; a short, long or corrupt stream
 * never reaches the volume.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { native, type DisableBits, type SparseHeader } from '../../native/binding.js';
import { hasCode, withCallerStack } from '../../native/errors.js';
import { CancelledError, CopyError } from '../../errors/index.js';
import { formatBytes } from '../../util/size.js';
import { blockDeviceInfo } from '../blockdev.js';
import { disableMask } from '../capabilities.js';
import { cancelFlag, progressReporter, type CopyProgress } from '../progress.js';
import { summarize, type StreamSummary } from './format.js';
import { streamError } from './problems.js';

export type { SparseHeader };

export interface StreamImportOptions {
  format: 'raw' | 'sparse';
  /** Bytes the volume gets: the stream must define exactly these. */
  size: number;
  /** sparse: the header readStreamHeader() took off the stream. */
  header?: SparseHeader;
  /** A block-device target that reads zero everywhere (a new zvol): holes cost nothing. */
  targetIsZero?: boolean;
  /** A name for the input in errors (default: the fd). */
  inPath?: string;
  sync?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress) => void;
  disable?: Array<keyof DisableBits>;
}

export interface StreamImportResult extends StreamSummary {
  /** Bytes written to the target (the rest were holes). */
  bytesWritten: number;
  chunks?: number;
  /** sparse: the stream carried a CRC32 chunk and it matched. */
  crcChecked?: boolean;
}

/** Reads the sparse image header off the stream (the stream then stands at the first chunk). */
export async function readStreamHeader(fd: number, inPath = `fd ${fd}`): Promise<SparseHeader> {
  try {
    return await withCallerStack(() => native.readSparseHeader(fd, inPath));
  } catch (err) {
    throw streamError(err, `Sparse stream '${inPath}'`);
  }
}

/** The size a sparse stream defines: qvol's exact size, else its whole blocks. */
export function sparseImageSize(header: SparseHeader): number {
  return header.exactSize || header.totalBlocks * header.blockSize;
}

async function openImportTarget(path: string, size: number): Promise<{ handle: FileHandle; block: boolean; discardZeroes: number }> {
  const handle = await open(path, constants.O_RDWR);
  try {
    const st = await handle.stat();
    if (!st.isBlockDevice()) return { handle, block: false, discardZeroes: 0 };
    const dev = await blockDeviceInfo(handle.fd, st);
    if (dev.size < size) {
      throw new CopyError('TARGET_TOO_SMALL', `Import target '${path}' holds ${formatBytes(dev.size)} but the stream needs ${formatBytes(size)}.`, { path });
    }
    return { handle, block: true, discardZeroes: dev.discardZeroes };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

export async function importStream(inFd: number, targetPath: string, options: StreamImportOptions): Promise<StreamImportResult> {
  const started = process.hrtime.bigint();
  const inPath = options.inPath ?? `fd ${inFd}`;
  const target = await openImportTarget(targetPath, options.size);
  const cancel = cancelFlag(options.signal);
  try {
    const stats = await withCallerStack(() => native.streamImport(inFd, target.handle.fd, {
      format: options.format,
      size: options.size,
      ...(options.header ? { header: options.header } : {}),
      targetKnownZero: target.block && options.targetIsZero === true,
      discardZeroes: target.discardZeroes,
      disable: disableMask(options.disable),
      sync: options.sync ?? true,
      cancel: cancel.flag,
      inPath,
      dstPath: targetPath,
    }, progressReporter(options.onProgress)));
    const holeBytes = stats.bytesSkipped + stats.bytesZeroed;
    return {
      ...summarize(options.format, { bytes: stats.bytesIn + (options.header?.headerBytes ?? 0), size: options.size, dataBytes: options.size - holeBytes, holeBytes, method: 'read' }, started),
      bytesWritten: stats.bytesWritten,
      ...(options.format === 'sparse' ? { chunks: stats.chunks, crcChecked: stats.crcChecked } : {}),
    };
  } catch (err) {
    if (hasCode(err, 'ECANCELED')) throw new CancelledError(`Import from '${inPath}' was cancelled; the volume is unchanged.`, { path: inPath, cause: err });
    throw streamError(err, `Import from '${inPath}'`);
  } finally {
    cancel.release();
    await target.handle.close();
  }
}
