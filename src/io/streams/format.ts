/**
 * The stream formats a volume travels in:
 *   raw     the plain bytes, for any tool (`qvol volume export | dd of=...`);
 *   sparse  the Android sparse image (4 KiB blocks; RAW, FILL, DONT_CARE and a final CRC32
 *           chunk), so holes and zero runs never cross the pipe; simg2img/img2simg speak it;
 *   zfs     the `zfs send` stream of the volume's committed snapshot, ZFS to ZFS only.
 */
import { UsageError } from '../../model/errors.js';

export const STREAM_FORMATS = ['raw', 'sparse', 'zfs'] as const;
export type StreamFormat = (typeof STREAM_FORMATS)[number];

export function parseStreamFormat(text: string): StreamFormat {
  if ((STREAM_FORMATS as readonly string[]).includes(text)) return text as StreamFormat;
  throw new UsageError(`Unknown stream format '${text}': use raw, sparse or zfs.`);
}

/** What an export or import did, for --json and the closing line. */
export interface StreamSummary {
  format: StreamFormat;
  /** Bytes that crossed the stream. */
  bytes: number;
  /** Bytes of the volume (its size). */
  size: number;
  /** Bytes of the volume that travelled as data. */
  dataBytes: number;
  /** Bytes of the volume that travelled as holes (zero runs; raw: holes sent as zero pages). */
  holeBytes: number;
  seconds: number;
  /** Bytes of the volume per second. */
  rate: number;
  /** How the data moved: splice, sendfile, write (export); read (import); zfs send/recv. */
  method: string;
}

export function summarize(format: StreamFormat, fields: Omit<StreamSummary, 'format' | 'rate' | 'seconds'>, started: bigint): StreamSummary {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { format, ...fields, seconds, rate: seconds > 0 ? Math.round(fields.size / seconds) : 0 };
}
