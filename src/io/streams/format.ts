/**
 * The stream formats the data path itself speaks (drivers add their own, such as zfs):
 *   raw     the plain bytes, for any tool (`qvol volume export | dd of=...`);
 *   sparse  the Android sparse image (4 KiB blocks; RAW, FILL, DONT_CARE and a final CRC32
 *           chunk), so holes and zero runs never cross the pipe; simg2img/img2simg speak it.
 */

export type StreamFormat = 'raw' | 'sparse';

/** What an export or import did, for --json and the closing line. */
export interface StreamSummary {
  /** raw, sparse, or a driver's own format (zfs). */
  format: string;
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

export function summarize(format: string, fields: Omit<StreamSummary, 'format' | 'rate' | 'seconds'>, started: bigint): StreamSummary {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { format, ...fields, seconds, rate: seconds > 0 ? Math.round(fields.size / seconds) : 0 };
}
