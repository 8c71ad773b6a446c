/**
 * Cross-filesystem `vm clone`: a template in a pool on ext4 (no reflinks) cloned into a
 * pool on XFS, against `cp --sparse=always` of the same images. Both end synced.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, writeSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { QvolApp } from '../../src/app/app.js';
import { mountLoopFs } from '../../test/helpers/loopfs.js';
import { GiB, MiB, scratchDir } from '../fixtures.js';

export interface CloneResult {
  qvolSeconds: number[];
  cpSeconds: number[];
  data: number;
}

export async function crossFsClone(quick: boolean, rounds: number): Promise<CloneResult> {
  const size = quick ? 512 * MiB : 4 * GiB;
  const scratch = scratchDir('clone');
  const xfs = mountLoopFs('xfs', Math.max(1024, (size * 3) / MiB));
  const home = mkdtempSync(join(scratch.dir, 'home-'));
  const qvolSeconds: number[] = [];
  const cpSeconds: number[] = [];
  try {
    await QvolApp.with({ home }, async (app) => {
      await app.addPool({ name: 'ext4', driver: 'file-reflink', dir_path: join(scratch.dir, 'pool'), setup_check: false });
      await app.addPool({ name: 'xfs', driver: 'file-reflink', dir_path: join(xfs.dir, 'pool') });
      await app.createVm('tmpl', 'template', { pool: 'ext4' });
      await app.getVolume('tmpl', 'root').resize(size);
      const [root] = await app.startVm('tmpl');
      const fd = openSync(root!.path, 'r+');
      for (let off = 0; off < size; off += 10 * MiB) writeSync(fd, randomBytes(MiB), 0, MiB, off);
      closeSync(fd);
      await app.stopVm('tmpl');
      const images = ['root', 'private'].map((v) => join(scratch.dir, 'pool', 'vm-templates', 'tmpl', `${v}.img`));
      for (let i = 0; i < rounds; i++) {
        execFileSync('sync');
        let t0 = process.hrtime.bigint();
        await app.cloneVm('tmpl', `copy${i}`, { pool: 'xfs' });
        qvolSeconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
        await app.removeVm(`copy${i}`);
        const dst = join(xfs.dir, `cp${i}`);
        mkdirSync(dst);
        execFileSync('sync');
        t0 = process.hrtime.bigint();
        execFileSync('cp', ['--sparse=always', ...images, dst]);
        execFileSync('sync', images.map((p) => join(dst, p.split('/').at(-1)!)));
        cpSeconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
        rmSync(dst, { recursive: true });
      }
    });
    return { qvolSeconds, cpSeconds, data: size / 10 };
  } finally {
    xfs.unmount();
    scratch.remove();
  }
}
