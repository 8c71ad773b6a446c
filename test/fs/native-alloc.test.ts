/**
 * The space family on real files and devices: each call's physical effect (st_blocks,
 * bytes read back) and its error shape.
 */
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { native } from '../../src/native/binding.js';
import { zeroOut } from '../../src/io/zero.js';
import { mapExtents } from '../../src/io/extents.js';
import { allocated, patternBuffer, readsZero } from '../helpers/files.js';
import { fsTierBlocker, skipReason } from '../helpers/gates.js';
import { attachLoopDevice, mountLoopFs, type LoopFs } from '../helpers/loopfs.js';

const MiB = 2 ** 20;
const blocker = fsTierBlocker(['losetup', 'mkfs.ext4']);

describe.skipIf(blocker !== undefined)(skipReason(blocker, 'fallocate and BLK* on real storage'), () => {
  let fs: LoopFs;
  const file = (name: string) => {
    const path = join(fs.dir, name);
    writeFileSync(path, patternBuffer(8 * MiB, 4));
    return path;
  };
  const withFd = async <T>(path: string, fn: (fd: number) => Promise<T>) => {
    const fd = openSync(path, 'r+');
    try { return await fn(fd); } finally { closeSync(fd); }
  };
  afterAll(() => fs?.unmount());

  it('punchHole frees blocks and the range reads zero', async () => {
    fs = mountLoopFs('ext4', 64);
    const path = file('punch.img');
    const before = allocated(path);
    await withFd(path, (fd) => native.punchHole(fd, MiB, 2 * MiB));
    expect(before - allocated(path)).toBe(2 * MiB);
    expect(readsZero(path, MiB, 2 * MiB)).toBe(true);
    expect((await mapExtents(path)).filter((e) => !e.data)).toEqual([{ offset: MiB, length: 2 * MiB, data: false }]);
  });

  it('zeroRange keeps blocks allocated and reads zero', async () => {
    const path = file('zr.img');
    const before = allocated(path);
    await withFd(path, (fd) => native.zeroRange(fd, 0, MiB));
    expect(allocated(path)).toBe(before);
    expect(readsZero(path, 0, MiB)).toBe(true);
  });

  it('allocate reserves blocks in a hole', async () => {
    const path = join(fs.dir, 'alloc.img');
    writeFileSync(path, '');
    await withFd(path, (fd) => native.allocate(fd, 0, 4 * MiB));
    expect(allocated(path)).toBe(4 * MiB);
  });

  it('zeroOut on a file punches, or zeroes the range when punching is off', async () => {
    const path = file('zo.img');
    expect(await zeroOut(path, 0, MiB)).toBe('punch');
    expect(await zeroOut(path, MiB, MiB, { disable: ['punch'] })).toBe('zero_range');
    expect(await zeroOut(path, 2 * MiB, MiB, { disable: ['punch', 'zeroRange'] })).toBe('write');
    expect(readsZero(path, 0, 3 * MiB)).toBe(true);
    expect(readsZero(path, 3 * MiB, MiB)).toBe(false);
  });

  it('zeroOut on a block device: punch, BLKZEROOUT, writes', async () => {
    const dev = attachLoopDevice(8 * MiB, patternBuffer(8 * MiB, 2));
    try {
      expect(await zeroOut(dev.path, 0, MiB)).toBe('punch');
      expect(await zeroOut(dev.path, MiB, MiB, { disable: ['punch'] })).toBe('zeroout');
      expect(await zeroOut(dev.path, 2 * MiB, MiB, { disable: ['punch', 'zeroout'] })).toBe('write');
      expect(readsZero(dev.path, 0, 3 * MiB)).toBe(true);
      expect(readsZero(dev.path, 3 * MiB, MiB)).toBe(false);
      const fd = openSync(dev.path, 'r+');
      try {
        expect(native.blockGeometrySync(fd)).toMatchObject({ size: 8 * MiB, logicalSectorSize: 512, readOnly: false });
        await native.blkZeroout(fd, 4 * MiB, MiB);
        await native.blkDiscard(fd, 6 * MiB, MiB);
      } finally {
        closeSync(fd);
      }
      expect(readsZero(dev.path, 4 * MiB, MiB)).toBe(true);
    } finally {
      dev.detach();
    }
  });

  it('reports EINVAL for a range the device cannot align, with the syscall', async () => {
    const dev = attachLoopDevice(MiB);
    try {
      const fd = openSync(dev.path, 'r+');
      try {
        await expect(native.blkZeroout(fd, 1, 100)).rejects.toMatchObject({ code: 'EINVAL', syscall: 'ioctl(BLKZEROOUT)' });
        expect(() => native.blockGeometrySync(openSync('/dev/null', 'r'))).toThrow(expect.objectContaining({ code: 'ENOTTY' }));
      } finally {
        closeSync(fd);
      }
    } finally {
      dev.detach();
    }
  });
});
