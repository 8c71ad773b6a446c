/**
 * The stream formats on their own (src/io/streams): raw and Android sparse through real
 * pipes (a FIFO) and files, checked by the standard tools (simg2img reads what we write,
 * we read what img2simg writes), every rung of the data path forced in turn, and every way
 * a stream can be wrong refused with its code.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportStream, type StreamExportOptions } from '../../src/io/streams/export.js';
import { importStream, readStreamHeader, sparseImageSize, type StreamImportOptions } from '../../src/io/streams/import.js';
import { StreamError } from '../../src/errors/index.js';
import { throughFifo } from '../helpers/fifo.js';
import { allocated, makeSparseFile, sameBytes } from '../helpers/files.js';
import { fsTierBlocker, hasCommand, skipReason } from '../helpers/gates.js';
import { scratchDir } from '../helpers/scratch.js';

const MiB = 2 ** 20;
const blocker = fsTierBlocker(['simg2img', 'img2simg']) ?? (hasCommand('mkfifo') ? undefined : 'needs mkfifo');

let dir: string;
let n = 0;
const path = (name: string) => join(dir, `${n++}-${name}`);

/** An image with holes, data, a zero block inside data, a FILL block and an odd size. */
function mixedImage(size = 8 * MiB + 512): string {
  const p = path('mixed.img');
  makeSparseFile(p, size, [{ offset: 0, length: 64 * 1024 }, { offset: 3 * MiB, length: MiB }, { offset: size - 1000, length: 1000 }]);
  const fd = openSync(p, 'r+');
  writeSync(fd, Buffer.alloc(4096), 0, 4096, 3 * MiB + 8192); // zeros written inside data
  writeSync(fd, Buffer.alloc(8192, 0xab), 0, 8192, 5 * MiB); // two FILL blocks
  closeSync(fd);
  return p;
}

/** Export `src` into a FIFO while importing from it into `dst`: a real pipe, both ends native. */
async function throughPipe(src: string, dst: string, format: 'raw' | 'sparse', exportOptions: Partial<StreamExportOptions> = {}, importOptions: Partial<StreamImportOptions> = {}) {
  const size = statSync(src).size;
  closeSync(openSync(dst, 'w'));
  const [exported, imported] = await throughFifo(dir, (fd) => exportStream(src, fd, { format, ...exportOptions }), async (fd) => {
    const header = format === 'sparse' ? await readStreamHeader(fd) : undefined;
    return importStream(fd, dst, { format, size, ...(header ? { header } : {}), ...importOptions });
  });
  return { exported, imported };
}

async function exportToFile(src: string, format: 'raw' | 'sparse', options: Partial<StreamExportOptions> = {}): Promise<string> {
  const out = path(`out.${format}`);
  const fh = await open(out, 'w');
  try {
    await exportStream(src, fh.fd, { format, ...options });
  } finally {
    await fh.close();
  }
  return out;
}

async function importFile(stream: string, format: 'raw' | 'sparse', size?: number) {
  const dst = path('imported.img');
  closeSync(openSync(dst, 'w'));
  const fh = await open(stream, 'r');
  try {
    const header = format === 'sparse' ? await readStreamHeader(fh.fd) : undefined;
    const result = await importStream(fh.fd, dst, { format, size: size ?? (header ? sparseImageSize(header) : statSync(stream).size), ...(header ? { header } : {}) });
    return { dst, result };
  } finally {
    await fh.close();
  }
}

async function refusal(promise: Promise<unknown>): Promise<StreamError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(StreamError);
  return err as StreamError;
}

describe.skipIf(blocker !== undefined)(skipReason(blocker, 'stream formats'), () => {
  beforeAll(() => { dir = scratchDir('streams'); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([['empty', 0], ['odd-sized', 8 * MiB + 512], ['4 KiB multiple', 8 * MiB]])('sparse: simg2img reads what we write (%s)', async (_name, size) => {
    const src = size === 0 ? path('empty.img') : mixedImage(size);
    if (size === 0) writeFileSync(src, '');
    else truncateSync(src, size);
    const stream = await exportToFile(src, 'sparse');
    const expanded = path('expanded.img');
    execFileSync('simg2img', [stream, expanded]);
    // simg2img writes whole blocks: the volume, then zeros to the block's end
    expect(statSync(expanded).size).toBe(Math.ceil(size / 4096) * 4096);
    expect(sameBytes(src, expanded, size)).toBe(true);
  });

  it('sparse: the image is holes and chunks, its CRC32 the zlib CRC of the whole image', async () => {
    const src = mixedImage(8 * MiB); // whole blocks: no padding written after the last one
    const fh = await open(path('out.simg'), 'w+');
    const r = await exportStream(src, fh.fd, { format: 'sparse' });
    await fh.close();
    expect(r.crc).toBe(crc32(readFileSync(src)).toString(16).padStart(8, '0'));
    // data: 64 KiB + 1 MiB less the zero block + the tail's block; FILL and holes cost 16 and 12 bytes
    expect(r.dataBytes).toBe(64 * 1024 + MiB - 4096 + 4096);
    expect(r.bytes).toBeLessThan(r.dataBytes * 1.01);
    expect(r.method).toBe('sendfile');
  });

  it('sparse: we read what img2simg writes, FILL chunks and all', async () => {
    const src = mixedImage(8 * MiB);
    const simg = path('img2simg.simg');
    execFileSync('img2simg', [src, simg]);
    const { dst, result } = await importFile(simg, 'sparse');
    expect(sameBytes(src, dst)).toBe(true);
    expect(statSync(dst).size).toBe(8 * MiB);
    expect(allocated(dst)).toBeLessThanOrEqual(64 * 1024 + MiB + 4096 + 64 * 1024);
    expect(result.crcChecked).toBe(false); // img2simg writes no CRC32 chunk
  });

  it.each(['sparse', 'raw'] as const)('%s through a pipe: splice out, holes kept in', async (format) => {
    const src = mixedImage();
    const dst = path('dst.img');
    const { exported, imported } = await throughPipe(src, dst, format);
    expect(sameBytes(src, dst)).toBe(true);
    expect(statSync(dst).size).toBe(statSync(src).size);
    expect(allocated(dst)).toBeLessThanOrEqual(allocated(src) + 64 * 1024);
    expect(exported.method).toBe('splice');
    expect(exported.pipeSize).toBeGreaterThanOrEqual(MiB);
    expect(imported.bytes).toBe(exported.bytes); // both count every byte of the stream
    if (format === 'sparse') {
      expect(imported.crcChecked).toBe(true);
      expect(exported.bytes).toBeLessThan(exported.dataBytes * 1.01);
    } else {
      expect(exported.bytes).toBe(statSync(src).size);
    }
  });

  it.each([
    [['splice'], 'sparse', 'sendfile'],
    [['splice', 'sendfile'], 'sparse', 'write'],
    [['vmsplice'], 'raw', 'write'],
    [['pipeResize'], 'raw', 'splice'],
  ] as const)('every rung: %j off, %s still arrives whole (by %s)', async (disable, format, method) => {
    const src = mixedImage();
    const dst = path('dst.img');
    const { exported, imported } = await throughPipe(src, dst, format, { disable: [...disable] }, { disable: [...disable] });
    expect(sameBytes(src, dst)).toBe(true);
    expect(exported.method).toBe(method);
    if ((disable as readonly string[]).includes('pipeResize')) expect(exported.pipeSize).toBeLessThan(MiB);
    expect(imported.size).toBe(statSync(src).size);
  });

  it('to a regular file without sendfile: plain writes', async () => {
    const src = mixedImage();
    const stream = await exportToFile(src, 'raw', { disable: ['sendfile'] });
    expect(sameBytes(src, stream)).toBe(true);
  });

  describe('refuses a stream that is not what it says', () => {
    let good: string;
    beforeAll(async () => { good = await exportToFile(mixedImage(), 'sparse'); });

    const variant = (name: string, edit: (b: Buffer) => Buffer) => {
      const p = path(name);
      writeFileSync(p, edit(readFileSync(good)));
      return p;
    };
    // header 40 bytes; the first chunk (RAW, 16 blocks) starts at 40, its data at 52
    it.each([
      ['one flipped byte in the data', (b: Buffer) => { b.writeUInt8(b.readUInt8(52 + 5000) ^ 1, 52 + 5000); return b; }, 'STREAM_CRC_MISMATCH'],
      ['cut short', (b: Buffer) => b.subarray(0, 52 + 30000), 'STREAM_TRUNCATED'],
      ['cut at a chunk header', (b: Buffer) => b.subarray(0, b.length - 16), 'STREAM_TRUNCATED'],
      ['trailing bytes', (b: Buffer) => Buffer.concat([b, Buffer.from('x')]), 'STREAM_TOO_LONG'],
      ['a bad magic', (b: Buffer) => { b[0] = 0; return b; }, 'STREAM_CORRUPT'],
      ['an unknown chunk type', (b: Buffer) => { b.writeUInt16LE(0xcaff, 40); return b; }, 'STREAM_CORRUPT'],
      ['a RAW chunk whose size lies', (b: Buffer) => { b.writeUInt32LE(b.readUInt32LE(48) + 4096, 48); return b; }, 'STREAM_CORRUPT'],
      ['empty', () => Buffer.alloc(0), 'STREAM_TRUNCATED'],
    ])('%s', async (name, edit, code) => {
      const err = await refusal(importFile(variant(name.replace(/ /g, '-'), edit), 'sparse', 8 * MiB + 512));
      expect(err.code).toBe(code);
      expect(err.message).toMatch(/refused at byte \d+/);
    });

    it('without a CRC chunk a flipped byte passes (the format has no other check)', async () => {
      const noCrc = await exportToFile(mixedImage(), 'sparse', { crc: false });
      const b = readFileSync(noCrc);
      b.writeUInt8(b.readUInt8(52 + 5000) ^ 1, 52 + 5000);
      writeFileSync(noCrc, b);
      const { result } = await importFile(noCrc, 'sparse');
      expect(result.crcChecked).toBe(false);
    });

    it.each([[-4096, 'STREAM_TOO_LONG'], [4096, 'STREAM_TRUNCATED']] as const)('raw with a size %i bytes off', async (delta, code) => {
      const src = mixedImage();
      const err = await refusal(importFile(src, 'raw', statSync(src).size + delta));
      expect(err.code).toBe(code);
    });

    it('a sparse image whose blocks do not match the size', async () => {
      const err = await refusal(importFile(good, 'sparse', 4 * MiB));
      expect(err.code).toBe('STREAM_SIZE_MISMATCH');
    });

    it('data in the last block past the size', async () => {
      const src = path('tail.img');
      makeSparseFile(src, 8192, [{ offset: 0, length: 8192 }]);
      const stream = await exportToFile(src, 'sparse');
      const err = await refusal(importFile(stream, 'sparse', 8192 - 512));
      expect(err.code).toBe('STREAM_TOO_LONG');
    });
  });

  it('a block of one repeated word travels as 16 bytes', async () => {
    const src = path('fill.img');
    writeFileSync(src, Buffer.alloc(4 * MiB, Buffer.from([1, 2, 3, 4])));
    const stream = await exportToFile(src, 'sparse');
    expect(statSync(stream).size).toBe(40 + 16 + 16); // header, one FILL, the CRC
    const { dst } = await importFile(stream, 'sparse');
    expect(sameBytes(src, dst)).toBe(true);
  });
});
