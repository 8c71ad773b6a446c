/**
 * Inside the lab VM (`npm run bench:lab-ephemeral`, or the lab tier of `npm test`): the start
 * and stop of a VM whose volatile volume is ephemeral, with the mapping made through the
 * device-mapper ioctls against `cryptsetup open/close` (Qubes' way), and against the same VM
 * without encryption. One run, the three interleaved round by round; the VM runs under
 * software emulation, so compare the ratios, not the times. `--quick`: fewer rounds.
 * Exits 1 on a gross regression: the ratio worse than twice the goal, twice.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QvolApp } from '../src/app/app.js';
import { RegressionGuard } from './guard.js';

const quick = process.argv.includes('--quick');
const rounds = quick ? 5 : 15;
const GOAL = 0.2;
const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

type Way = 'ioctl' | 'cryptsetup' | 'no encryption';

async function measure(): Promise<Record<Way, number>> {
  const root = mkdtempSync(join(tmpdir(), 'qvol-ephbench-'));
  const fast = join(root, 'fast');
  mkdirSync(fast);
  sh('mount', '-t', 'tmpfs', '-o', 'size=128m,mode=0700', 'qvol-ephbench', fast);
  try {
    return await QvolApp.with({ home: join(root, 'home') }, async (app) => {
      await app.addPool({ name: 'fast', driver: 'file-reflink', dir_path: join(fast, 'pool'), setup_check: false });
      await app.createVm('t', 'template', { pool: 'fast' });
      await app.createVm('w', 'app', { template: 't', pool: 'fast' });
      const times: Record<Way, number[]> = { ioctl: [], cryptsetup: [], 'no encryption': [] };
      for (let i = 0; i <= rounds; i++) {
        for (const way of Object.keys(times) as Way[]) {
          await app.setVolumeConfig('w', 'volatile', 'ephemeral', String(way !== 'no encryption'));
          if (way === 'cryptsetup') process.env.QVOL_EPHEMERAL_RUNG = 'cryptsetup';
          const t0 = performance.now();
          const devices = await app.startVm('w');
          await app.stopVm('w');
          if (devices.find((d) => d.volume === 'volatile')!.ephemeral !== (way !== 'no encryption')) throw new Error(`the ${way} round did not map as asked`);
          const ms = performance.now() - t0;
          delete process.env.QVOL_EPHEMERAL_RUNG;
          if (i > 0) times[way].push(ms); // round 0 warms the caches and the tools
        }
      }
      return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)])) as Record<Way, number>;
    });
  } finally {
    sh('umount', fast);
    rmSync(root, { recursive: true, force: true });
  }
}

const ms = await measure();
console.log(`## ephemeral volatile volume: VM start + stop (lab VM under emulation, ${rounds} rounds, median ms)`);
console.log(`   goal: through the ioctls <= ${GOAL}x through cryptsetup open/close`);
for (const [way, t] of Object.entries(ms)) console.log(`   ${way.padEnd(16)} ${t.toFixed(1).padStart(9)} ms`);
const ratio = (m: Record<Way, number>) => ({ ratio: m.ioctl / m.cryptsetup, peer: 'cryptsetup' });
const overhead = (m: Record<Way, number>) => (m.ioctl - m['no encryption']) / (m.cryptsetup - m['no encryption']);
console.log(`   ioctl / cryptsetup ${ratio(ms).ratio.toFixed(3)}x; encryption's own cost (minus the plain start and stop) ${overhead(ms).toFixed(3)}x; ioctl / no encryption ${(ms.ioctl / ms['no encryption']).toFixed(2)}x`);
const guard = new RegressionGuard();
console.log(await guard.check('ephemeral start+stop', GOAL, ratio(ms), async () => ratio(await measure())));
console.log(guard.summary());
if (guard.regressions.length > 0) process.exitCode = 1;
