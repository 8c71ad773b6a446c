/**
 * Inside the lab VM (`test/lab/run.sh -- node dist-dev/bench/lab-wait.js [rounds]`): how long
 * after `zfs create -V` returns each way of waiting sees the /dev/zvol link usable. Ours
 * (inotify), a 10 ms poll (Qubes' zfs driver), a 1 s poll (Proxmox) and `udevadm settle`.
 * The VM runs under software emulation, so absolute times are slow; compare the columns.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, truncateSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitForDevice } from '../src/io/wait.js';

const rounds = Number(process.argv[2] ?? 10);
const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

async function poll(path: string, everyMs: number): Promise<void> {
  while (!existsSync(path)) await sleep(everyMs);
}

const ways: Record<string, (path: string) => Promise<void>> = {
  'qvol waitForDevice': (p) => waitForDevice(p, { timeoutMs: 60_000 }),
  '10 ms poll': (p) => poll(p, 10),
  '1 s poll': (p) => poll(p, 1000),
  'udevadm settle': async () => { sh('udevadm', 'settle', '-t', '60'); },
};

const vdev = '/tmp/qvol-wait-bench.img';
writeFileSync(vdev, '');
truncateSync(vdev, 256 * 2 ** 20);
sh('zpool', 'create', '-m', 'none', 'qwb', vdev);
const results: Record<string, number[]> = Object.fromEntries(Object.keys(ways).map((k) => [k, []]));
try {
  for (let i = 0; i < rounds; i++) {
    for (const [name, wait] of Object.entries(ways)) {
      const ds = `qwb/v${i}-${name.replace(/\W+/g, '')}`;
      const path = `/dev/zvol/${ds}`;
      sh('zfs', 'create', '-s', '-V', '8M', '-o', 'volmode=dev', ds);
      const t0 = performance.now();
      await wait(path);
      results[name]!.push(performance.now() - t0);
    }
  }
} finally {
  sh('zpool', 'destroy', '-f', 'qwb');
}
const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
console.log(`device wait after zfs create -V returns (${rounds} rounds, ms; lab VM under emulation)`);
console.log(`${'way'.padEnd(20)} ${'min'.padStart(8)} ${'median'.padStart(8)} ${'p90'.padStart(8)} ${'max'.padStart(8)}`);
for (const [name, xs] of Object.entries(results)) {
  console.log(`${name.padEnd(20)} ${Math.min(...xs).toFixed(1).padStart(8)} ${q(xs, 0.5).toFixed(1).padStart(8)} ${q(xs, 0.9).toFixed(1).padStart(8)} ${Math.max(...xs).toFixed(1).padStart(8)}`);
}
