/**
 * The copy engine on the host's own temporary directory (whatever filesystem that is): the
 * error cases, sizes, sparse modes, cancellation and a source written while copied. No root.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyVolume } from '../../src/io/copy.js';
import { CancelledError, CopyError } from '../../src/errors/index.js';
import { allocated, makeSparseFile, readsZero, sameBytes, spreadChunks, patternBuffer } from '../helpers/files.js';
import { scratchDir } from '../helpers/scratch.js';

const MiB = 2 ** 20;
const dir = scratchDir('copy');
afterAll(() => { /* left for inspection on failure; tmpdir is cleaned by the OS */ });

function sparseSource(name: string, size = 64 * MiB, count = 8): string {
  const path = join(dir, name);
  makeSparseFile(path, size, spreadChunks(size, count, MiB));
  return path;
}

function noTempFiles(): void {
  expect(readdirSync(dir).filter((n) => n.includes('~'))).toEqual([]);
}

describe('copyVolume on the host filesystem', () => {
  it('copies a sparse file exactly, with the same allocation', async () => {
    const src = sparseSource('a.img');
    const dst = join(dir, 'a.copy');
    const r = await copyVolume(src, dst);
    expect(sameBytes(src, dst)).toBe(true);
    // The data, plus at most a few blocks of extent-tree metadata.
    expect(allocated(dst) - 8 * MiB).toBeGreaterThanOrEqual(0);
    expect(allocated(dst) - 8 * MiB).toBeLessThanOrEqual(64 * 1024);
    expect(r).toMatchObject({ size: 64 * MiB, targetKind: 'file', target: dst });
    expect(r.bytesWritten + r.bytesCloned).toBe(8 * MiB);
    noTempFiles();
  });

  it('copies an empty file', async () => {
    const src = join(dir, 'empty.img');
    writeFileSync(src, '');
    const r = await copyVolume(src, join(dir, 'empty.copy'));
    expect(statSync(join(dir, 'empty.copy')).size).toBe(0);
    expect(r.size).toBe(0);
  });

  it('copies a size that is not a multiple of 4 KiB, with data in the last partial block', async () => {
    const src = join(dir, 'odd.img');
    makeSparseFile(src, 10 * MiB + 1234, [{ offset: 10 * MiB, length: 1234 }, { offset: 4096 * 3 + 17, length: 100 }]);
    for (const sparse of ['auto', 'always', 'never'] as const) {
      const dst = join(dir, `odd-${sparse}.copy`);
      await copyVolume(src, dst, { sparse, reflink: 'never' });
      expect(sameBytes(src, dst), sparse).toBe(true);
    }
  });

  it('extends with zeros and truncates with --size', async () => {
    const src = sparseSource('sized.img', 16 * MiB, 4);
    const big = join(dir, 'big.copy');
    await copyVolume(src, big, { size: 32 * MiB });
    expect(statSync(big).size).toBe(32 * MiB);
    expect(sameBytes(src, big, 16 * MiB)).toBe(true);
    expect(readsZero(big, 16 * MiB, 16 * MiB)).toBe(true);
    const small = join(dir, 'small.copy');
    await copyVolume(src, small, { size: 5 * MiB + 512, reflink: 'never' });
    expect(statSync(small).size).toBe(5 * MiB + 512);
    expect(sameBytes(src, small, 5 * MiB + 512)).toBe(true);
  });

  it('turns zero blocks of a thick file into holes with sparse=always, and allocates all with never', async () => {
    const src = join(dir, 'thick.img');
    const data = Buffer.alloc(16 * MiB);
    patternBuffer(MiB, 3).copy(data, 4 * MiB);
    writeFileSync(src, data);
    const thin = join(dir, 'thick.always');
    const r = await copyVolume(src, thin, { sparse: 'always' });
    expect(sameBytes(src, thin)).toBe(true);
    expect(allocated(thin)).toBe(MiB);
    expect(r).toMatchObject({ method: 'readwrite', bytesWritten: MiB, bytesSkipped: 15 * MiB, holes: 2 });
    const full = join(dir, 'sparse.never');
    const sparse = sparseSource('for-never.img', 8 * MiB, 1);
    await copyVolume(sparse, full, { sparse: 'never' });
    expect(sameBytes(sparse, full)).toBe(true);
    expect(allocated(full)).toBe(8 * MiB);
  });

  it('copies into a directory under the source\'s name', async () => {
    const src = sparseSource('named.img', 4 * MiB, 1);
    mkdirSync(join(dir, 'into'));
    const r = await copyVolume(src, join(dir, 'into'));
    expect(r.target).toBe(join(dir, 'into', 'named.img'));
    expect(sameBytes(src, r.target)).toBe(true);
  });

  it('replaces an existing target atomically (a new inode, never a half-written file)', async () => {
    const src = sparseSource('replace.img', 4 * MiB, 2);
    const dst = join(dir, 'replace.copy');
    writeFileSync(dst, 'old contents');
    const before = statSync(dst).ino;
    await copyVolume(src, dst);
    expect(statSync(dst).ino).not.toBe(before);
    expect(sameBytes(src, dst)).toBe(true);
  });

  it('replaces a file by a resized copy of itself when asked, keeping its mtime to the nanosecond', async () => {
    const src = sparseSource('self.img', 4 * MiB, 2);
    const before = statSync(src, { bigint: true });
    await copyVolume(src, src, { replaceSource: true, size: 8 * MiB, preserveMtime: true });
    const after = statSync(src, { bigint: true });
    expect(after.ino).not.toBe(before.ino);
    expect(after.size).toBe(BigInt(8 * MiB));
    expect(after.mtimeNs).toBe(before.mtimeNs);
    expect(after.atimeNs).toBe(before.mtimeNs);
  });

  describe('refuses, changing nothing', () => {
    it('a missing source', async () => {
      const err = await copyVolume(join(dir, 'nope.img'), join(dir, 'nope.copy')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CopyError);
      expect(err).toMatchObject({ code: 'SOURCE_NOT_FOUND', path: join(dir, 'nope.img') });
      expect(existsSync(join(dir, 'nope.copy'))).toBe(false);
    });

    it('a directory as source', async () => {
      await expect(copyVolume(dir, join(dir, 'x.copy'))).rejects.toMatchObject({ code: 'SOURCE_NOT_SUPPORTED' });
    });

    it('a missing target directory', async () => {
      const src = sparseSource('t1.img', MiB, 1);
      await expect(copyVolume(src, join(dir, 'no', 'such', 'x.img'))).rejects.toMatchObject({
        code: 'TARGET_DIR_NOT_FOUND', message: expect.stringContaining(join(dir, 'no', 'such')),
      });
    });

    it('the same file as source and target', async () => {
      const src = sparseSource('same.img', MiB, 1);
      const before = statSync(src);
      await expect(copyVolume(src, src)).rejects.toMatchObject({ code: 'SAME_FILE' });
      await expect(copyVolume(src, dir)).rejects.toMatchObject({ code: 'SAME_FILE' });
      expect(statSync(src).mtimeMs).toBe(before.mtimeMs);
      noTempFiles();
    });

    it('a character device or fifo as target', async () => {
      const src = sparseSource('t2.img', MiB, 1);
      await expect(copyVolume(src, '/dev/null')).rejects.toMatchObject({ code: 'TARGET_NOT_SUPPORTED' });
    });

    it('an invalid mode or size from a library caller', async () => {
      const src = sparseSource('t3.img', MiB, 1);
      await expect(copyVolume(src, join(dir, 't3.copy'), { sparse: 'sometimes' as 'auto' })).rejects.toMatchObject({ code: 'USAGE' });
      await expect(copyVolume(src, join(dir, 't3.copy'), { size: -1 })).rejects.toMatchObject({ code: 'USAGE' });
      expect(existsSync(join(dir, 't3.copy'))).toBe(false);
    });
  });

  it('stops on cancel, leaving no target and no temporary file', async () => {
    const src = join(dir, 'cancel.img');
    makeSparseFile(src, 2048 * MiB, []);
    const ac = new AbortController();
    let progressed = 0;
    const p = copyVolume(src, join(dir, 'cancel.copy'), {
      // Zeros written one megabyte at a time: slow enough to be cancelled half-way.
      sparse: 'never',
      disable: ['zeroRange'],
      signal: ac.signal,
      onProgress: (pr) => { progressed = pr.done; ac.abort(); },
    });
    await expect(p).rejects.toBeInstanceOf(CancelledError);
    expect(progressed).toBeGreaterThan(0);
    expect(progressed).toBeLessThan(2048 * MiB);
    expect(existsSync(join(dir, 'cancel.copy'))).toBe(false);
    noTempFiles();
  });

  it('refuses an already aborted signal before touching anything', async () => {
    const src = sparseSource('pre.img', MiB, 1);
    await expect(copyVolume(src, join(dir, 'pre.copy'), { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(CancelledError);
    expect(existsSync(join(dir, 'pre.copy'))).toBe(false);
  });

  it('reports progress with rate and a final event at the total', async () => {
    const src = sparseSource('progress.img', 256 * MiB, 32);
    const seen: number[] = [];
    await copyVolume(src, join(dir, 'progress.copy'), { onProgress: (p) => seen.push(p.done) });
    expect(seen.at(-1)).toBe(256 * MiB);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
  });

  it('finishes a source that is being written while it is copied', async () => {
    const size = 256 * MiB;
    const src = join(dir, 'busy.img');
    makeSparseFile(src, size, spreadChunks(size, 64, MiB));
    // A writer rewrites the second half's first megabyte over and over while we copy.
    const writer = spawn(process.execPath, ['-e', `
      const fs = require('fs'); const fd = fs.openSync(${JSON.stringify(src)}, 'r+');
      const buf = Buffer.alloc(1 << 20, 0xab); const end = Date.now() + 3000;
      while (Date.now() < end) fs.writeSync(fd, buf, 0, buf.length, ${size / 2});
    `]);
    try {
      await new Promise((r) => setTimeout(r, 100));
      const dst = join(dir, 'busy.copy');
      for (const sparse of ['auto', 'always'] as const) {
        await copyVolume(src, dst, { sparse, reflink: 'never' });
        expect(statSync(dst).size).toBe(size);
        expect(sameBytes(src, dst, size / 2)).toBe(true); // the half nobody writes
      }
    } finally {
      writer.kill();
    }
  });
});
