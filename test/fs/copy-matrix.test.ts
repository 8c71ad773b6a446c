/**
 * The copy ladder on real ext4, btrfs and XFS loop mounts: which rung each filesystem takes
 * by itself, each lower rung forced, and the physical result (bytes, allocation, sharing).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyVolume, type CopyMethod } from '../../src/io/copy.js';
import { fiemap, mapExtents, FIEMAP_EXTENT_SHARED } from '../../src/io/extents.js';
import type { DisableBits } from '../../src/native/binding.js';
import { allocated, makeSparseFile, sameBytes, spreadChunks } from '../helpers/files.js';
import { fsTierBlocker, skipReason } from '../helpers/gates.js';
import { mountLoopFs, type FsKind, type LoopFs } from '../helpers/loopfs.js';

const MiB = 2 ** 20;
const SIZE = 128 * MiB;
const CHUNKS = spreadChunks(SIZE, 12, MiB, 11);
const DATA = CHUNKS.length * MiB;

// What each filesystem does on its own: the capability table the tests expect.
const EXPECTED: Record<FsKind, { method: CopyMethod; shares: boolean }> = {
  ext4: { method: 'copy_file_range', shares: false },
  btrfs: { method: 'clone', shares: true },
  xfs: { method: 'clone', shares: true },
};

const blocker = fsTierBlocker(['mkfs.btrfs', 'mkfs.xfs', 'mkfs.ext4']);

async function dataBytes(path: string): Promise<number> {
  return (await mapExtents(path)).filter((e) => e.data).reduce((n, e) => n + e.length, 0);
}

async function sharedBytes(path: string): Promise<number> {
  return (await fiemap(path)).filter((e) => e.flags & FIEMAP_EXTENT_SHARED).reduce((n, e) => n + e.length, 0);
}

describe.skipIf(blocker !== undefined).each(['ext4', 'btrfs', 'xfs'] as const)(skipReason(blocker, 'copy ladder on %s'), (kind) => {
  let fs: LoopFs;
  let src: string;
  beforeAll(() => {
    fs = mountLoopFs(kind, 512);
    src = join(fs.dir, 'src.img');
    makeSparseFile(src, SIZE, CHUNKS);
  });
  afterAll(() => fs?.unmount());

  it(`takes the ${EXPECTED[kind].method} rung by itself`, async () => {
    const dst = join(fs.dir, 'auto.img');
    const r = await copyVolume(src, dst);
    expect(r.method).toBe(EXPECTED[kind].method);
    expect(sameBytes(src, dst)).toBe(true);
    expect(await dataBytes(dst)).toBeLessThanOrEqual(await dataBytes(src));
    if (EXPECTED[kind].shares) expect(await sharedBytes(dst)).toBe(DATA);
    else expect(allocated(dst)).toBeLessThanOrEqual(DATA + 64 * 1024);
  });

  const forced: Array<[string, Array<keyof DisableBits>, CopyMethod]> = [
    ['no clone', ['clone'], 'copy_file_range'],
    ['no clone, no copy_file_range', ['clone', 'copyFileRange'], 'readwrite'],
    ['no SEEK_HOLE', ['clone', 'seekHole'], 'readwrite'],
  ];
  it.each(forced)('falls back correctly with %s', async (_name, disable, method) => {
    const dst = join(fs.dir, `forced-${disable.join('-')}.img`);
    const r = await copyVolume(src, dst, { disable });
    expect(r.method).toBe(method);
    expect(sameBytes(src, dst)).toBe(true);
    // Holes survive every rung: found by SEEK_HOLE, or by the zero check when it is off.
    if (method === 'readwrite' || !EXPECTED[kind].shares) {
      expect(allocated(dst)).toBeLessThanOrEqual(DATA + 64 * 1024);
    }
    // copy_file_range within btrfs and XFS shares extents without being asked.
    if (method === 'copy_file_range' && EXPECTED[kind].shares) expect(await sharedBytes(dst)).toBe(DATA);
    // XFS reports its speculative preallocation beside the data as data too.
    if (method === 'readwrite') expect(r.bytesRead).toBe(disable.includes('seekHole') ? SIZE : await dataBytes(src));
  });

  it('never clones with reflink=never', async () => {
    const dst = join(fs.dir, 'never.img');
    const r = await copyVolume(src, dst, { reflink: 'never' });
    expect(r.method).toBe('readwrite');
    expect(await sharedBytes(dst)).toBe(0);
    expect(sameBytes(src, dst)).toBe(true);
  });

  it(EXPECTED[kind].shares ? 'clones with reflink=always' : 'refuses reflink=always, leaving nothing', async () => {
    const dst = join(fs.dir, 'always.img');
    const p = copyVolume(src, dst, { reflink: 'always' });
    if (EXPECTED[kind].shares) {
      expect((await p).method).toBe('clone');
    } else {
      await expect(p).rejects.toMatchObject({ code: 'REFLINK_UNSUPPORTED', cause: { code: 'EOPNOTSUPP', syscall: 'ioctl(FICLONE)' } });
      expect(sameBytes(src, dst)).toBe(false);
    }
  });

  it('clones and then resizes with --size', async () => {
    const dst = join(fs.dir, 'resized.img');
    const r = await copyVolume(src, dst, { size: SIZE * 2 });
    expect(r.method).toBe(EXPECTED[kind].method);
    expect(sameBytes(src, dst, SIZE)).toBe(true);
  });
});

describe.skipIf(blocker !== undefined)(skipReason(blocker, 'copy across filesystems'), () => {
  const mounts: Partial<Record<FsKind, LoopFs>> = {};
  let src: string;
  beforeAll(() => {
    for (const kind of ['ext4', 'xfs', 'btrfs'] as const) mounts[kind] = mountLoopFs(kind, 400);
    src = join(mounts.ext4!.dir, 'src.img');
    makeSparseFile(src, SIZE, CHUNKS);
  });
  afterAll(() => Object.values(mounts).forEach((m) => m.unmount()));

  it.each(['xfs', 'btrfs'] as const)('ext4 -> %s reads and writes, keeping holes', async (kind) => {
    const dst = join(mounts[kind]!.dir, 'copy.img');
    const r = await copyVolume(src, dst);
    expect(r).toMatchObject({ method: 'readwrite', bytesRead: DATA, bytesWritten: DATA });
    expect(sameBytes(src, dst)).toBe(true);
    expect(allocated(dst)).toBeLessThanOrEqual(DATA + 256 * 1024);
  });

  it('meets the kernel\'s EXDEV from copy_file_range and falls back', async () => {
    const dst = join(mounts.xfs!.dir, 'exdev.img');
    const r = await copyVolume(src, dst, { disable: ['sameFsCheck'] });
    expect(r.method).toBe('readwrite');
    expect(sameBytes(src, dst)).toBe(true);
  });
});
