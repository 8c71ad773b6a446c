/**
 * Block devices at either end of a copy, on real loop devices: a target full of old data
 * must read back equal to the source after the copy, whichever zeroing rung it takes.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyVolume } from '../../src/io/copy.js';
import type { DisableBits } from '../../src/native/binding.js';
import { allocated, makeSparseFile, patternBuffer, readsZero, sameBytes, spreadChunks } from '../helpers/files.js';
import { fsTierBlocker, skipReason } from '../helpers/gates.js';
import { attachLoopDevice, mountLoopFs, run, type LoopDevice } from '../helpers/loopfs.js';
import { scratchDir } from '../helpers/scratch.js';

const MiB = 2 ** 20;
const SIZE = 64 * MiB;
const blocker = fsTierBlocker(['losetup', 'mkfs.ext4']);
const dir = scratchDir('blk');

function digest(path: string, length: number): string {
  return createHash('sha256').update(readFileSync(path).subarray(0, length)).digest('hex');
}

describe.skipIf(blocker !== undefined)(skipReason(blocker, 'copy to and from block devices'), () => {
  let src: string;
  const devices: LoopDevice[] = [];
  // A device that held other data before: every byte of it must be overwritten or zeroed.
  const dirtyDevice = (bytes = SIZE + 8 * MiB) => {
    const dev = attachLoopDevice(bytes, patternBuffer(bytes, 99));
    devices.push(dev);
    return dev;
  };
  beforeAll(() => {
    src = join(dir, 'src.img');
    makeSparseFile(src, SIZE, spreadChunks(SIZE, 10, MiB, 5));
  });
  afterAll(() => devices.forEach((d) => d.detach()));

  const ladders: Array<[string, Array<keyof DisableBits>, string]> = [
    ['punch (unmap with zeroes)', [], 'punch'],
    ['BLKZEROOUT', ['punch'], 'zeroout'],
    ['written zeros', ['punch', 'zeroout'], 'write'],
  ];
  const RUNG_BITS: Record<string, number> = { punch: 1, zeroout: 2, write: 8 };

  it.each(ladders)('file -> dirty device: holes made zero by %s', async (_name, disable, rung) => {
    const dev = dirtyDevice();
    const r = await copyVolume(src, dev.path, { disable });
    expect(r).toMatchObject({ targetKind: 'block', size: SIZE, method: 'readwrite' });
    expect(r.zeroRungs).toBe(RUNG_BITS[rung]);
    expect(r.bytesZeroed).toBe(SIZE - 10 * MiB);
    expect(sameBytes(src, dev.path, SIZE)).toBe(true);
  });

  it('keeps every block allocated with sparse=never (BLKZEROOUT does not unmap)', async () => {
    const dev = dirtyDevice();
    const r = await copyVolume(src, dev.path, { sparse: 'never' });
    expect(r.zeroRungs).toBe(RUNG_BITS.zeroout);
    expect(r.holes).toBe(0);
    expect(sameBytes(src, dev.path, SIZE)).toBe(true);
    expect(allocated(dev.backing)).toBeGreaterThanOrEqual(SIZE);
  });

  it('skips zeroing on a device known to be zero', async () => {
    const dev = attachLoopDevice(SIZE);
    devices.push(dev);
    const r = await copyVolume(src, dev.path, { targetIsZero: true });
    expect(r.bytesZeroed).toBe(0);
    expect(r.bytesWritten).toBe(10 * MiB);
    expect(sameBytes(src, dev.path, SIZE)).toBe(true);
    // Nothing written into the holes: the loop's backing file stays sparse.
    expect(allocated(dev.backing)).toBeLessThanOrEqual(10 * MiB + 64 * 1024);
  });

  it('zeroes the device beyond the source up to --size', async () => {
    const dev = dirtyDevice();
    await copyVolume(src, dev.path, { size: SIZE + 4 * MiB });
    expect(sameBytes(src, dev.path, SIZE)).toBe(true);
    expect(readsZero(dev.path, SIZE, 4 * MiB)).toBe(true);
    // and leaves the rest of the device alone
    expect(readsZero(dev.path, SIZE + 4 * MiB, 4 * MiB)).toBe(false);
  });

  it('device -> file: finds the holes by zero check', async () => {
    const dev = attachLoopDevice(SIZE, readFileSync(src));
    devices.push(dev);
    const dst = join(dir, 'from-device.img');
    const r = await copyVolume(dev.path, dst);
    expect(r).toMatchObject({ method: 'readwrite', bytesRead: SIZE, bytesWritten: 10 * MiB });
    expect(sameBytes(src, dst)).toBe(true);
    expect(allocated(dst)).toBeLessThanOrEqual(10 * MiB + 64 * 1024);
  });

  it('device -> device', async () => {
    const from = attachLoopDevice(SIZE, readFileSync(src));
    devices.push(from);
    const to = dirtyDevice();
    await copyVolume(from.path, to.path);
    expect(sameBytes(src, to.path, SIZE)).toBe(true);
  });

  it('refuses a device smaller than the copy, changing nothing', async () => {
    const dev = dirtyDevice(SIZE / 2);
    const before = digest(dev.path, SIZE / 2);
    await expect(copyVolume(src, dev.path)).rejects.toMatchObject({
      code: 'TARGET_TOO_SMALL', path: dev.path, message: expect.stringContaining('holds 32.0 MiB but the copy needs 64.0 MiB'),
    });
    expect(digest(dev.path, SIZE / 2)).toBe(before);
  });

  it('refuses a mounted device, changing nothing', async () => {
    const fs = mountLoopFs('ext4', 96);
    try {
      const device = run('findmnt', ['-n', '-o', 'SOURCE', fs.dir]).trim();
      const small = join(dir, 'small.img');
      makeSparseFile(small, MiB, [{ offset: 0, length: MiB }]);
      await expect(copyVolume(small, device)).rejects.toMatchObject({ code: 'TARGET_BUSY', path: device });
      expect(readdirSync(fs.dir)).toContain('lost+found'); // still a healthy mount
    } finally {
      fs.unmount();
    }
  });

  it('refuses reflink=always to a device', async () => {
    const dev = dirtyDevice();
    await expect(copyVolume(src, dev.path, { reflink: 'always' })).rejects.toMatchObject({ code: 'REFLINK_UNSUPPORTED' });
  });
});

describe.skipIf(blocker !== undefined)(skipReason(blocker, 'copy onto a full filesystem'), () => {
  it('fails with NO_SPACE and removes the partial copy', async () => {
    const fs = mountLoopFs('ext4', 24);
    try {
      const src = join(dir, 'dense.img');
      writeFileSync(src, patternBuffer(48 * MiB, 1));
      const err = await copyVolume(src, join(fs.dir, 'dense.img')).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'NO_SPACE', path: join(fs.dir, 'dense.img'), cause: { code: 'ENOSPC' } });
      expect(readdirSync(fs.dir)).toEqual(['lost+found']);
    } finally {
      fs.unmount();
    }
  });
});
