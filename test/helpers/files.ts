/** Test images with known contents, and the physical facts tests assert on. */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readSync, statSync, truncateSync, writeSync } from 'node:fs';

/** A deterministic pseudo-random buffer (xorshift), so failures reproduce. */
export function patternBuffer(bytes: number, seed: number): Buffer {
  const buf = Buffer.alloc(Math.ceil(bytes / 4) * 4);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < buf.length; i += 4) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    buf.writeUInt32LE((x | 1) >>> 0, i); // never a zero word, so chunks are data end to end
  }
  return buf.subarray(0, bytes);
}

export interface Chunk {
  offset: number;
  length: number;
}

/** A sparse file of `size` with pattern data at the given chunks and holes elsewhere. */
export function makeSparseFile(path: string, size: number, chunks: Chunk[], seed = 1): void {
  const fd = openSync(path, 'w', 0o644);
  try {
    for (const [i, c] of chunks.entries()) writeSync(fd, patternBuffer(c.length, seed + i), 0, c.length, c.offset);
  } finally {
    closeSync(fd);
  }
  truncateSync(path, size);
}

/** `count` chunks of `length` at distinct aligned offsets spread over `size`, seeded. */
export function spreadChunks(size: number, count: number, length: number, seed = 7): Chunk[] {
  const slots = Math.floor(size / length);
  const picked = new Set<number>();
  let x = seed;
  while (picked.size < Math.min(count, slots)) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    picked.add((x >>> 8) % slots);
  }
  return [...picked].sort((a, b) => a - b).map((s) => ({ offset: s * length, length }));
}

/** Bytes allocated on disk (st_blocks * 512). */
export function allocated(path: string): number {
  return statSync(path).blocks * 512;
}

/** True when the first `length` bytes of a and b are equal (cmp -n). */
export function sameBytes(a: string, b: string, length?: number): boolean {
  const args = length === undefined ? [a, b] : ['-n', String(length), a, b];
  try {
    execFileSync('cmp', ['-s', ...args]);
    return true;
  } catch {
    return false;
  }
}

/** True when [offset, offset+length) of path reads as zeros. */
export function readsZero(path: string, offset: number, length: number): boolean {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let pos = offset; pos < offset + length;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, offset + length - pos), pos);
      if (n === 0) return true;
      if (buf.subarray(0, n).some((b) => b !== 0)) return false;
      pos += n;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}
