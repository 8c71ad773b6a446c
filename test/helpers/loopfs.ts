/**
 * Real filesystems for tests: an image file on the host, formatted, attached to a loop
 * device and mounted in a temporary directory. Root only.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type FsKind = 'ext4' | 'btrfs' | 'xfs';

export interface LoopFs {
  kind: FsKind;
  dir: string;
  image: string;
  unmount(): void;
}

const MKFS: Record<FsKind, string[]> = {
  ext4: ['mkfs.ext4', '-q', '-F', '-E', 'nodiscard'],
  btrfs: ['mkfs.btrfs', '-q', '-f'],
  xfs: ['mkfs.xfs', '-q', '-f'],
};

// XFS refuses filesystems under 300 MiB; btrfs wants about 110 MiB.
const MIN_MIB: Record<FsKind, number> = { ext4: 8, btrfs: 128, xfs: 320 };

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function mountLoopFs(kind: FsKind, sizeMiB = 512): LoopFs {
  const base = mkdtempSync(join(tmpdir(), `qvol-${kind}-`));
  const image = join(base, 'fs.img');
  const dir = join(base, 'mnt');
  writeFileSync(image, '');
  truncateSync(image, Math.max(sizeMiB, MIN_MIB[kind]) * 2 ** 20);
  const [mkfs, ...args] = MKFS[kind];
  run(mkfs!, [...args, image]);
  run('mkdir', ['-p', dir]);
  run('mount', ['-o', 'loop', image, dir]);
  return {
    kind,
    dir,
    image,
    unmount() {
      try {
        run('umount', [dir]);
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    },
  };
}

export interface LoopDevice {
  path: string;
  backing: string;
  detach(): void;
}

/** Attaches a new file of `bytes` to a free loop device. */
export function attachLoopDevice(bytes: number, fill?: Buffer): LoopDevice {
  const base = mkdtempSync(join(tmpdir(), 'qvol-loopdev-'));
  const backing = join(base, 'backing.img');
  writeFileSync(backing, fill ?? '');
  truncateSync(backing, bytes);
  const path = run('losetup', ['--find', '--show', backing]).trim();
  return {
    path,
    backing,
    detach() {
      try {
        run('losetup', ['-d', path]);
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    },
  };
}
