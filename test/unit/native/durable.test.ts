/**
 * The durable name operations: each does its one call and fsyncs the directory it changed
 * (both for a rename across directories), and fails with the call's errno, path and dest.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { native } from '../../../src/native/binding.js';
import { scratchDir } from '../../helpers/scratch.js';

describe('durable name operations', () => {
  it('rename, link, unlink, mkdir and rmdir do what their call does', async () => {
    const dir = scratchDir('durable');
    writeFileSync(join(dir, 'a'), 'A');
    mkdirSync(join(dir, 'sub'));
    await native.durable('rename', join(dir, 'a'), join(dir, 'sub', 'b')); // across directories
    expect(readFileSync(join(dir, 'sub', 'b'), 'utf8')).toBe('A');
    await native.durable('link', join(dir, 'sub', 'b'), join(dir, 'c'));
    expect(statSync(join(dir, 'c')).nlink).toBe(2);
    await native.durable('unlink', join(dir, 'c'));
    expect(existsSync(join(dir, 'c'))).toBe(false);
    await native.durable('mkdir', join(dir, 'new'), undefined, 0o700);
    expect(statSync(join(dir, 'new')).mode & 0o777).toBe(0o700 & ~process.umask());
    await native.durable('rmdir', join(dir, 'new'));
    expect(existsSync(join(dir, 'new'))).toBe(false);
  });

  it('fails with the call, the path and the dest', async () => {
    const dir = scratchDir('durable');
    await expect(native.durable('rename', join(dir, 'none'), join(dir, 'x'))).rejects.toMatchObject({
      code: 'ENOENT', syscall: 'rename', path: join(dir, 'none'), dest: join(dir, 'x'),
    });
    await expect(native.durable('unlink', join(dir, 'none'))).rejects.toMatchObject({ code: 'ENOENT', syscall: 'unlink' });
    mkdirSync(join(dir, 'full'));
    writeFileSync(join(dir, 'full', 'f'), '');
    await expect(native.durable('rmdir', join(dir, 'full'))).rejects.toMatchObject({ code: 'ENOTEMPTY', syscall: 'rmdir' });
    await expect(native.durable('mkdir', join(dir, 'full'), undefined, 0o700)).rejects.toMatchObject({ code: 'EEXIST', syscall: 'mkdir' });
  });
});
