/**
 * A volume image (file or block device) written to a stream fd, raw or sparse, in one
 * native job: splice from the page cache into a pipe, zero pages vmspliced for holes,
 * sendfile to anything that is not a pipe. JavaScript never carries the data.
 */
import { native, type DisableBits } from '../../native/binding.js';
import { hasCode, withCallerStack } from '../../native/errors.js';
import { CancelledError } from '../../errors/index.js';
import { disableMask } from '../capabilities.js';
import { openSource } from '../copy-target.js';
import { cancelFlag, progressReporter, type CopyProgress } from '../progress.js';
import { summarize, type StreamSummary } from './format.js';

export interface StreamExportOptions {
  format: 'raw' | 'sparse';
  /** sparse: end with a CRC32 chunk over the whole image (default true). */
  crc?: boolean;
  /** A name for the output in errors (default: the fd). */
  outPath?: string;
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress) => void;
  disable?: Array<keyof DisableBits>;
}

export interface StreamExportResult extends StreamSummary {
  /** sparse: chunks in the image, and its CRC-32 as 8 hex digits. */
  chunks?: number;
  crc?: string;
  /** The pipe's size after we grew it (F_SETPIPE_SZ); 0 when the output is not a pipe. */
  pipeSize: number;
}

export async function exportStream(sourcePath: string, outFd: number, options: StreamExportOptions): Promise<StreamExportResult> {
  const started = process.hrtime.bigint();
  const source = await openSource(sourcePath);
  const cancel = cancelFlag(options.signal);
  try {
    const stats = await withCallerStack(() => native.streamExport(source.handle.fd, outFd, {
      format: options.format,
      length: source.size,
      crc: options.crc ?? true,
      disable: disableMask(options.disable),
      cancel: cancel.flag,
      srcPath: source.path,
      outPath: options.outPath ?? `fd ${outFd}`,
    }, progressReporter(options.onProgress)));
    return {
      ...summarize(options.format, { bytes: stats.bytesOut, size: source.size, dataBytes: stats.dataBytes, holeBytes: stats.zeroBytes, method: stats.method }, started),
      ...(options.format === 'sparse' ? { chunks: stats.chunks, crc: stats.crc.toString(16).padStart(8, '0') } : {}),
      pipeSize: stats.pipeSize,
    };
  } catch (err) {
    if (hasCode(err, 'ECANCELED')) throw new CancelledError(`Export of '${sourcePath}' was cancelled.`, { path: sourcePath, cause: err });
    throw err;
  } finally {
    cancel.release();
    await source.handle.close();
  }
}
