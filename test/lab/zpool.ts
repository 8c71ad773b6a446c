/**
 * Lab helpers: a file-backed zpool made for one test file (inside the lab VM the file lives
 * in RAM), and the gate that skips lab suites, saying why, when they run anywhere else.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const inLab = process.env.QVOL_LAB === '1';
export const notInLab = inLab ? undefined : 'runs inside the lab VM (npm run test:lab)';

export const sh = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

export interface LabZpool {
  name: string;
  dir: string;
  destroy(): void;
}

/** A zpool named `name` on a sparse file of `sizeMiB`. */
export function makeZpool(name: string, sizeMiB = 1024): LabZpool {
  const dir = mkdtempSync(join(tmpdir(), `qvol-${name}-`));
  const vdev = join(dir, 'vdev.img');
  writeFileSync(vdev, '');
  truncateSync(vdev, sizeMiB * 2 ** 20);
  sh('zpool', 'create', '-m', 'none', name, vdev);
  return {
    name,
    dir,
    destroy() {
      try { sh('zpool', 'destroy', '-f', name); } catch { /* best effort */ }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every dataset and snapshot under `root` (not `root` itself). */
export function datasetsUnder(root: string): string[] {
  return sh('zfs', 'list', '-H', '-o', 'name', '-t', 'all', '-r', root).split('\n').filter((n) => n && n !== root);
}

export function zfsGet(ds: string, prop: string): string {
  return sh('zfs', 'get', '-Hp', '-o', 'value', prop, ds);
}
