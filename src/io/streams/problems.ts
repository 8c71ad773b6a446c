/**
 * The sentences for what native code found wrong with a stream: it reports a problem's name
 * and up to two numbers (native/sys/sparse_format.h, FormatProblem), and this is the one
 * place that words them.
 */
import { StreamError, type StreamErrorCode } from '../../errors/index.js';
import { formatBytes } from '../../util/size.js';

const STREAM_CODES: readonly string[] = ['STREAM_TRUNCATED', 'STREAM_TOO_LONG', 'STREAM_CORRUPT', 'STREAM_CRC_MISMATCH', 'STREAM_SIZE_MISMATCH'];

const CHUNK_NAMES: Record<number, string> = { 0xcac1: 'RAW', 0xcac2: 'FILL', 0xcac3: 'DONT_CARE', 0xcac4: 'CRC32' };
const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

/** `problem` with its numbers in words. */
export function describeProblem(problem: string, at: number, a: number, b: number): string {
  switch (problem) {
    case 'empty': return 'the stream is empty';
    case 'ended-early': return 'the stream ended early';
    case 'ended-in-header': return 'the stream ended in its header';
    case 'not-sparse': return 'this is not an Android sparse image (bad magic); plain bytes are the raw format';
    case 'version': return `sparse format version ${a} is not supported (only 1)`;
    case 'header-sizes': return 'the sparse header\'s sizes are invalid';
    case 'block-size': return `block size ${a} is invalid (a multiple of 4 up to 64 MiB)`;
    case 'exact-size-misfit': return 'qvol\'s size in the header does not fit the image';
    case 'chunk-past-image': return `a chunk of ${a} bytes runs past the image's ${b}`;
    case 'raw-size': return 'a RAW chunk\'s size does not match its blocks';
    case 'no-word': return `a ${CHUNK_NAMES[a] ?? 'FILL'} chunk without its 4-byte value`;
    case 'dont-care-payload': return 'a DONT_CARE chunk with a payload';
    case 'unknown-chunk': return `unknown chunk type 0x${hex(a, 4)}`;
    case 'crc-mismatch': return `the data before byte ${at} has CRC32 ${hex(a, 8)}, the stream says ${hex(b, 8)}`;
    case 'image-size': return `the stream holds an image of ${a} bytes (${formatBytes(a)}), the volume is to be ${b} (${formatBytes(b)})`;
    case 'chunks-short': return `the chunks cover ${a} of the image's ${b} bytes`;
    case 'past-end': return 'the stream goes on past its end';
    case 'data-past-size': return 'the stream has data past the volume\'s size';
    default: return 'the stream is invalid';
  }
}

/** A native stream failure as a StreamError that says where and what; anything else as it is. */
export function streamError(err: unknown, what: string): unknown {
  const e = err as { code?: string; problem?: string; at?: number; a?: number; b?: number };
  if (!STREAM_CODES.includes(e.code ?? '')) return err;
  const at = e.at ?? 0;
  return new StreamError(e.code as StreamErrorCode, `${what} refused at byte ${at}: ${describeProblem(e.problem ?? '', at, e.a ?? 0, e.b ?? 0)}.`, at, { cause: err });
}
