import { openSync, closeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { native } from '../../../src/native/binding.js';
import { SystemError, withCallerStack } from '../../../src/native/errors.js';
import { fiemap } from '../../../src/io/extents.js';
import { scratchDir } from '../../helpers/scratch.js';

const dir = scratchDir('unit');

describe('native errors are Node-style SystemErrors', () => {
  it('a bad fd gives EBADF with errno and syscall', async () => {
    const err = await native.fiemap(987654).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SystemError);
    expect(err).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'ioctl(FS_IOC_FIEMAP)' });
    expect((err as Error).message).toBe('EBADF: bad file descriptor, ioctl(FS_IOC_FIEMAP)');
  });

  it('BLKDISCARD on a regular file gives ENOTTY', async () => {
    const file = join(dir, 'plain');
    writeFileSync(file, 'x');
    const fd = openSync(file, 'r+');
    try {
      const err = await native.blkDiscard(fd, 0, 4096).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ENOTTY', errno: -25, syscall: 'ioctl(BLKDISCARD)' });
    } finally {
      closeSync(fd);
    }
  });

  it('carries the path when the library knows it', async () => {
    const err = await native.copyFile(987654, 987655, { length: 1, targetSize: 1, targetKnownZero: true, reflink: 'auto', sparse: 'auto', srcPath: '/some/src', dstPath: '/some/dst' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EBADF', syscall: 'fstat', path: '/some/src' });
  });

  it('keeps the caller\'s stack across the worker thread', async () => {
    const err = await withCallerStack(() => native.fiemap(987654)).then(() => new Error('resolved'), (e: unknown) => e as Error);
    expect(err.stack).toContain('errors.test.ts');
  });

  it('library functions report the caller too, for a failure in native code', async () => {
    // FIEMAP on a character device: the ioctl itself fails, on the worker thread.
    const err = await fiemap('/dev/null').then(() => new Error('resolved'), (e: unknown) => e as Error);
    expect(err).toMatchObject({ syscall: 'ioctl(FS_IOC_FIEMAP)' });
    expect(['EOPNOTSUPP', 'ENOTTY']).toContain((err as SystemError).code);
    expect(err.stack).toContain('errors.test.ts');
  });
});
