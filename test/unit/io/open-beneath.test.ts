/**
 * Opening below a pool's directory with no link followed, on both rungs: openat2
 * (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) and the O_NOFOLLOW component walk that stands in
 * where the kernel lacks openat2. A link planted at the name, or at a directory on the way,
 * fails the open itself, so no check-then-use window is left.
 */
import { constants, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { UnsafePathError } from '../../../src/errors/index.js';
import { isBeneath, openBeneath } from '../../../src/io/open-beneath.js';
import { PoolFiles } from '../../../src/drivers/file-reflink/files.js';
import { scratchDir } from '../../helpers/scratch.js';

let root: string;
let victim: string;

beforeEach(() => {
  root = scratchDir('beneath');
  victim = join(scratchDir('victim'), 'victim');
  writeFileSync(victim, 'VICTIM', { mode: 0o640 });
  mkdirSync(join(root, 'vm'));
  writeFileSync(join(root, 'vm', 'root.img'), 'IMAGE');
  symlinkSync(victim, join(root, 'vm', 'link.img'));
  symlinkSync(join(root, 'vm'), join(root, 'vmlink'));
});

function mkfifo(path: string): void {
  // Node has no mkfifo; the coreutils one is on every Debian.
  execFileSync('mkfifo', ['-m', '0600', path]);
}

for (const openat2 of [true, false]) {
  const rung = openat2 ? 'openat2' : 'walk';
  describe(`openBeneath (${rung})`, () => {
    it('opens a regular file below the root, and says which rung did it', async () => {
      const fh = await openBeneath(root, join(root, 'vm', 'root.img'), constants.O_RDONLY, 0, { expect: 'file', openat2 });
      try {
        expect(fh.rung).toBe(rung);
        expect((await fh.stat()).size).toBe(5);
      } finally {
        await fh.close();
      }
    });

    it('refuses a link at the name, and the file it points at is untouched', async () => {
      const err = await openBeneath(root, join(root, 'vm', 'link.img'), constants.O_RDWR | constants.O_TRUNC, 0, { openat2 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsafePathError);
      expect((err as UnsafePathError).path).toBe(join(root, 'vm', 'link.img'));
      expect((err as Error).message).toContain('symbolic link');
      expect(readFileSync(victim, 'utf8')).toBe('VICTIM');
    });

    it('refuses a link at a directory on the way', async () => {
      const err = await openBeneath(root, join(root, 'vmlink', 'root.img'), constants.O_RDONLY, 0, { openat2 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsafePathError);
    });

    it('refuses a path that leaves the root', async () => {
      for (const path of [victim, join(root, 'vm', '..', '..', 'x'), root]) {
        const err = await openBeneath(root, path, constants.O_RDONLY, 0, { openat2 }).catch((e: unknown) => e);
        expect(err, path).toBeInstanceOf(UnsafePathError);
      }
    });

    it('does not block on a FIFO planted at the name, and refuses it as not a regular file', async () => {
      const fifo = join(root, 'vm', 'fifo.img');
      mkfifo(fifo);
      const err = await openBeneath(root, fifo, constants.O_RDONLY, 0, { expect: 'file', openat2 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsafePathError);
      expect((err as Error).message).toContain('not a regular file');
    });

    it('creates with O_EXCL and the mode asked for, blocking (not O_NONBLOCK) afterwards', async () => {
      const path = join(root, 'vm', 'new.img');
      const fh = await openBeneath(root, path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600, { openat2 });
      try {
        await fh.writeFile('data');
        await fh.sync();
      } finally {
        await fh.close();
      }
      expect(readFileSync(path, 'utf8')).toBe('data');
      expect(statSync(path).mode & 0o7777).toBe(0o600 & ~process.umask());
    });

    it('keeps the errno of an ordinary failure (ENOENT)', async () => {
      const err = await openBeneath(root, join(root, 'vm', 'absent.img'), constants.O_RDONLY, 0, { openat2 }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ENOENT' });
    });
  });
}

describe('PoolFiles never follows a link the volume did not check', () => {
  // The volume checks names with lstat before it acts; these calls skip that check, as a
  // link planted between the check and the use would, and must still refuse.
  it('resize, sync, copy from and copy onto a link are refused; the victim is untouched', async () => {
    const files = new PoolFiles(root);
    const link = join(root, 'vm', 'link.img');
    const image = join(root, 'vm', 'root.img');
    await expect(files.resizeFile(link, 0)).rejects.toBeInstanceOf(UnsafePathError);
    await expect(files.syncFile(link)).rejects.toBeInstanceOf(UnsafePathError);
    await expect(files.copyFile(link, join(root, 'vm', 'copy.img'))).rejects.toBeInstanceOf(UnsafePathError);
    await expect(files.copyFile(image, link)).rejects.toBeInstanceOf(UnsafePathError);
    await expect(files.copyFile(image, join(root, 'vmlink', 'copy.img'))).rejects.toBeInstanceOf(UnsafePathError);
    await expect(files.createSparseFile(join(root, 'vmlink', 'new.img'), 4096)).rejects.toBeInstanceOf(UnsafePathError);
    expect(readFileSync(victim, 'utf8')).toBe('VICTIM');
    expect(statSync(victim).mode & 0o777).toBe(0o640);
  });

  it('still copies and resizes its own files', async () => {
    const files = new PoolFiles(root);
    await files.copyFile(join(root, 'vm', 'root.img'), join(root, 'vm', 'copy.img'));
    await files.resizeFile(join(root, 'vm', 'copy.img'), 8192);
    expect(statSync(join(root, 'vm', 'copy.img')).size).toBe(8192);
    expect(statSync(join(root, 'vm', 'copy.img')).mode & 0o777).toBe(0o600);
  });
});

describe('isBeneath', () => {
  it('is lexical: the root and names below it, nothing beside or above', () => {
    expect(isBeneath('/p', '/p/a/b')).toBe(true);
    expect(isBeneath('/p', '/p')).toBe(true);
    expect(isBeneath('/p', '/pool/a')).toBe(false);
    expect(isBeneath('/p', '/p/../q')).toBe(false);
  });
});
