/**
 * VM start and stop latency on reflink pools (btrfs, XFS): a template whose root holds real
 * data, and an app VM on it. Timed in-process through the library, as qvol's CLI runs it
 * after start-up; the goal is tens of milliseconds whatever the volume's size, where
 * Qubes' reflink driver needed a precache because start cost seconds.
 */
import { mkdtempSync, openSync, closeSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { QvolApp } from '../../src/app/app.js';
import { mountLoopFs, type FsKind } from '../../test/helpers/loopfs.js';
import { GiB, MiB } from '../fixtures.js';

export interface LifecycleResult {
  fs: FsKind;
  rootSize: number;
  rootData: number;
  /** Median milliseconds per step. */
  ms: Record<string, number>;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Writes `bytes` of random data in 1 MiB pieces spread over the image. */
function fill(path: string, size: number, bytes: number): void {
  const fd = openSync(path, 'r+');
  try {
    const pieces = bytes / MiB;
    const stride = Math.floor(size / MiB / pieces) * MiB;
    for (let i = 0; i < pieces; i++) writeSync(fd, randomBytes(MiB), 0, MiB, i * stride);
  } finally {
    closeSync(fd);
  }
}

export async function vmLifecycle(kind: FsKind, quick: boolean, rounds: number): Promise<LifecycleResult> {
  const rootSize = quick ? GiB : 10 * GiB;
  const rootData = quick ? 128 * MiB : GiB;
  const fs = mountLoopFs(kind, Math.max(2048, (rootData * 6) / MiB));
  const home = mkdtempSync(join(fs.dir, 'home-'));
  try {
    return await QvolApp.with({ home }, async (app) => {
      await app.addPool({ name: 'bench', driver: 'file-reflink', dir_path: join(fs.dir, 'pool') });
      await app.createVm('tmpl', 'template', { pool: 'bench' });
      await app.getVolume('tmpl', 'root').resize(rootSize);
      const [root] = await app.startVm('tmpl');
      fill(root!.path, rootSize, rootData);
      await app.stopVm('tmpl');
      await app.createVm('work', 'app', { template: 'tmpl', pool: 'bench' });
      const steps: Record<string, number[]> = { 'template start': [], 'template stop (commit)': [], 'app VM start': [], 'app VM stop': [] };
      for (let i = 0; i < rounds; i++) {
        steps['template start']!.push(await time(() => app.startVm('tmpl')));
        steps['template stop (commit)']!.push(await time(() => app.stopVm('tmpl')));
        steps['app VM start']!.push(await time(() => app.startVm('work')));
        steps['app VM stop']!.push(await time(() => app.stopVm('work')));
      }
      return { fs: kind, rootSize, rootData, ms: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, median(v)])) };
    });
  } finally {
    fs.unmount();
  }
}
