/**
 * The sparse format's codec (native/sys/sparse_format.cc), from bytes: no fd, no job. Each
 * refusal is a code, a problem and numbers; src/io/streams/problems.ts words it.
 */
import { describe, expect, it } from 'vitest';
import { native, type NativeFormatIssue, type SparseHeader } from '../../../src/native/binding.js';
import { describeProblem } from '../../../src/io/streams/problems.js';

function header(fields: Partial<{ magic: number; major: number; fileHdr: number; chunkHdr: number; blk: number; blocks: number; chunks: number }> = {}, ext?: { magic?: number; size: number }): Buffer {
  const b = Buffer.alloc(28 + (ext ? 12 : 0));
  b.writeUInt32LE(fields.magic ?? 0xed26ff3a, 0);
  b.writeUInt16LE(fields.major ?? 1, 4);
  b.writeUInt16LE(0, 6);
  b.writeUInt16LE(fields.fileHdr ?? (ext ? 40 : 28), 8);
  b.writeUInt16LE(fields.chunkHdr ?? 12, 10);
  b.writeUInt32LE(fields.blk ?? 4096, 12);
  b.writeUInt32LE(fields.blocks ?? 4, 16);
  b.writeUInt32LE(fields.chunks ?? 2, 20);
  if (ext) {
    b.writeUInt32LE(ext.magic ?? 0x6c6f7671, 28);
    b.writeBigUInt64LE(BigInt(ext.size), 32);
  }
  return b;
}

function chunk(type: number, blocks: number, totalSz: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16LE(type, 0);
  b.writeUInt32LE(blocks, 4);
  b.writeUInt32LE(totalSz, 8);
  return b;
}

const refused = (r: unknown) => r as NativeFormatIssue;

describe('sparse file header', () => {
  it('parses a header with qvol\'s exact size, and one without', () => {
    expect(native.parseSparseHeaderSync(header({}, { size: 4 * 4096 - 100 }))).toEqual({
      blockSize: 4096, totalBlocks: 4, totalChunks: 2, chunkHeaderSize: 12, exactSize: 4 * 4096 - 100, headerBytes: 40,
    });
    expect((native.parseSparseHeaderSync(header()) as SparseHeader).exactSize).toBe(0);
    expect((native.parseSparseHeaderSync(header({}, { magic: 1, size: 5 })) as SparseHeader).exactSize).toBe(0);
  });

  it.each([
    ['empty', Buffer.alloc(0), 'STREAM_TRUNCATED', 'empty', 0],
    ['short', header().subarray(0, 20), 'STREAM_CORRUPT', 'not-sparse', 0],
    ['bad magic', header({ magic: 0x12345678 }), 'STREAM_CORRUPT', 'not-sparse', 0],
    ['version 2', header({ major: 2 }), 'STREAM_CORRUPT', 'version', 2],
    ['a chunk header of 8', header({ chunkHdr: 8 }), 'STREAM_CORRUPT', 'header-sizes', 0],
    ['a file header of 20', header({ fileHdr: 20 }), 'STREAM_CORRUPT', 'header-sizes', 0],
    ['block size 0', header({ blk: 0 }), 'STREAM_CORRUPT', 'block-size', 0],
    ['block size 4097', header({ blk: 4097 }), 'STREAM_CORRUPT', 'block-size', 4097],
    ['an exact size past the image', header({}, { size: 5 * 4096 }), 'STREAM_CORRUPT', 'exact-size-misfit', 0],
    ['an exact size a block short', header({}, { size: 3 * 4096 }), 'STREAM_CORRUPT', 'exact-size-misfit', 0],
  ] as const)('refuses %s', (_name, bytes, code, problem, a) => {
    expect(native.parseSparseHeaderSync(bytes)).toMatchObject({ code, problem, a });
  });
});

describe('sparse chunk headers', () => {
  const h = native.parseSparseHeaderSync(header()) as SparseHeader;
  it('accepts each type with the payload it needs', () => {
    expect(native.checkSparseChunkSync(h, chunk(0xcac1, 2, 12 + 8192), 0)).toEqual({ len: 8192, payload: 8192 });
    expect(native.checkSparseChunkSync(h, chunk(0xcac2, 4, 16), 0)).toEqual({ len: 16384, payload: 4 });
    expect(native.checkSparseChunkSync(h, chunk(0xcac3, 1, 12), 3 * 4096)).toEqual({ len: 4096, payload: 0 });
    expect(native.checkSparseChunkSync(h, chunk(0xcac4, 99, 16), 16384)).toEqual({ len: 0, payload: 4 });
  });

  it.each([
    ['past the image', chunk(0xcac1, 2, 12 + 8192), 3 * 4096, 'chunk-past-image', 8192, 16384],
    ['a RAW chunk whose size lies', chunk(0xcac1, 2, 12 + 4096), 0, 'raw-size', 0, 0],
    ['a FILL without its word', chunk(0xcac2, 1, 12), 0, 'no-word', 0xcac2, 0],
    ['a CRC32 without its value', chunk(0xcac4, 0, 20), 0, 'no-word', 0xcac4, 0],
    ['a DONT_CARE with a payload', chunk(0xcac3, 1, 16), 0, 'dont-care-payload', 0, 0],
    ['an unknown type', chunk(0xbeef, 1, 12), 4096, 'unknown-chunk', 0xbeef, 0],
    ['a total size below the header', chunk(0xcac3, 1, 4), 0, 'dont-care-payload', 0, 0],
  ] as const)('refuses %s', (_name, bytes, pos, problem, a, b) => {
    expect(refused(native.checkSparseChunkSync(h, bytes, pos))).toMatchObject({ code: 'STREAM_CORRUPT', problem, at: pos, a, b });
  });

  it('words every problem without naming a CLI flag', () => {
    expect(describeProblem('unknown-chunk', 0, 0xbeef, 0)).toBe('unknown chunk type 0xbeef');
    expect(describeProblem('no-word', 0, 0xcac4, 0)).toBe('a CRC32 chunk without its 4-byte value');
    expect(describeProblem('crc-mismatch', 4096, 0xabc, 0xdef)).toBe('the data before byte 4096 has CRC32 00000abc, the stream says 00000def');
    expect(describeProblem('not-sparse', 0, 0, 0)).not.toMatch(/--/);
  });
});
