/** Source images for the workloads: random data where data is, so nothing compresses. */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

export const MiB = 2 ** 20;
export const GiB = 2 ** 30;

/** A scratch directory on the host filesystem (not tmpfs), removed by the returned function. */
export function scratchDir(name: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join('/var/tmp', `qvol-bench-${name}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `size` bytes with `fraction` of them random data in 1 MiB chunks at random offsets. */
export function makeSparseImage(path: string, size: number, fraction: number): number {
  const slots = size / MiB;
  const want = Math.round(slots * fraction);
  const picked = new Set<number>();
  while (picked.size < want) picked.add(Math.floor(Math.random() * slots));
  const fd = openSync(path, 'w', 0o644);
  try {
    for (const slot of picked) writeSync(fd, randomBytes(MiB), 0, MiB, slot * MiB);
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
  execFileSync('sync', [path]);
  return want * MiB;
}

/** A fully written (thick) image: `fraction` random 1 MiB chunks, zeros written elsewhere. */
export function makeThickImage(path: string, size: number, fraction: number): number {
  const zeros = Buffer.alloc(MiB);
  const fd = openSync(path, 'w', 0o644);
  let data = 0;
  try {
    for (let off = 0; off < size; off += MiB) {
      const isData = Math.random() < fraction;
      if (isData) data += MiB;
      writeSync(fd, isData ? randomBytes(MiB) : zeros, 0, MiB, off);
    }
  } finally {
    closeSync(fd);
  }
  execFileSync('sync', [path]);
  return data;
}
