/**
 * Inside the lab VM (`npm run bench:lab`): lvm_thin's VM start and stop against the wall time
 * during which the `lvm` commands they run are running (QVOL_TRACE_COMMANDS gives each one's
 * start and wall time, spawn included), and a cross-pool clone into a thin LV against `lvcreate` + `dd conv=sparse` and
 * `lvcreate` + `qemu-img convert -n`. The VM runs under software emulation, so compare the
 * ratios, not the times. `--quick`: fewer rounds, smaller data. Correctness only in CI.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const quick = process.argv.includes('--quick');
const rounds = quick ? 3 : 8;
const MiB = 2 ** 20;
const dataMiB = quick ? 16 : 64;
const VG = 'qvolbench';
const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const dir = mkdtempSync(join(tmpdir(), 'qvol-lvmbench-'));
const traceFile = join(dir, 'trace.tsv');
// Read when the modules below load: set first.
process.env.QVOL_TRACE_COMMANDS = traceFile;
const { QvolApp } = await import('../src/app/app.js');

/**
 * Milliseconds during which at least one traced tool (lvm, blkdiscard) ran since the file
 * was last read: the union of their intervals, since a VM's volumes start side by side and
 * a sum would count the same wall time twice.
 */
function toolMs(): number {
  const spans: Array<[number, number]> = [];
  try {
    for (const line of readFileSync(traceFile, 'utf8').split('\n')) {
      const [ms, started] = line.split('\t').map(Number);
      if (ms !== undefined && started !== undefined && Number.isFinite(started)) spans.push([started, started + ms]);
    }
  } catch { /* nothing ran */ }
  writeFileSync(traceFile, '');
  spans.sort((a, b) => a[0] - b[0]);
  let total = 0;
  let end = -Infinity;
  for (const [s, e] of spans) {
    if (e > end) total += e - Math.max(s, end);
    end = Math.max(end, e);
  }
  return total;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  toolMs();
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const file = join(dir, 'pv.img');
writeFileSync(file, '');
truncateSync(file, 2048 * MiB);
const loop = sh('losetup', '--find', '--show', file).trim();
try {
  await QvolApp.with({ home: join(dir, 'home') }, async (app) => {
    await app.addPool({ name: 'thin', driver: 'lvm_thin', volume_group: VG, thin_pool: 'tp', block_devices: loop });
    await app.addPool({ name: 'files', driver: 'file-reflink', dir_path: join(dir, 'files'), setup_check: false });
    await app.createVm('t', 'template', { pool: 'thin' });
    await app.createVm('w', 'app', { template: 't', pool: 'thin' });
    const steps: Record<string, { qvol: number[]; lvm: number[] }> = { 'app VM start': { qvol: [], lvm: [] }, 'app VM stop': { qvol: [], lvm: [] } };
    for (let i = 0; i <= rounds; i++) {
      const start = await time(() => app.startVm('w'));
      const startTools = toolMs();
      const stop = await time(() => app.stopVm('w'));
      const stopTools = toolMs();
      if (i === 0) continue; // warms the caches and the tools
      steps['app VM start']!.qvol.push(start);
      steps['app VM start']!.lvm.push(startTools);
      steps['app VM stop']!.qvol.push(stop);
      steps['app VM stop']!.lvm.push(stopTools);
    }
    console.log(`## lvm_thin: VM start and stop against the wall time of the lvm commands they run (lab VM under emulation, ${rounds} rounds, median ms)`);
    console.log('   goal: qvol adds < 10 % to the time during which its lvm commands run (one lvs report per operation): <= 1.10x');
    for (const [step, t] of Object.entries(steps)) {
      const q = median(t.qvol);
      const l = median(t.lvm);
      console.log(`   ${step.padEnd(14)} qvol ${q.toFixed(0).padStart(6)} ms, its lvm commands ${l.toFixed(0).padStart(6)} ms: ${(q / l).toFixed(2)}x (qvol's own ${(q - l).toFixed(0)} ms)`);
    }

    // A clone from the file pool into the thin pool (the data path of `vm clone -P thin`),
    // against what a user would type.
    const files = app.getPool('files');
    const thin = app.getPool('thin');
    const ref = { name: 'src', dirPathPrefix: 'vm-templates' as const };
    const src = files.initVolume(ref, { name: 'root', saveOnStop: true, rw: true, size: 4 * dataMiB * MiB });
    await src.create();
    await src.start();
    const fd = openSync(src.path!, 'r+');
    for (let i = 0; i < dataMiB; i++) writeSync(fd, randomBytes(MiB), 0, MiB, i * 4 * MiB);
    closeSync(fd);
    await src.stop();
    const from = await src.export();
    // Whole: what the user waits for. Data: the copy alone (qvol's time less its lvm
    // commands; the peers' time less their lvcreate).
    const peerNames = ['qvol import_volume (vm clone)', 'lvcreate + dd conv=sparse', 'lvcreate + qemu-img convert -n', "Qubes' lvm_thin (lvcreate, dd, 2 lvrename)"];
    const whole: Record<string, number[]> = Object.fromEntries(peerNames.map((n) => [n, []]));
    const data: Record<string, number[]> = Object.fromEntries(peerNames.map((n) => [n, []]));
    const lvTarget = `${VG}/peer`;
    for (let i = 0; i < rounds; i++) {
      const dst = thin.initVolume({ name: 'copy', dirPathPrefix: 'appvms' }, { name: 'root', saveOnStop: true, rw: true, size: src.size });
      await dst.create();
      const q = await time(() => dst.importVolume(src));
      whole['qvol import_volume (vm clone)']!.push(q);
      data['qvol import_volume (vm clone)']!.push(q - toolMs());
      await dst.remove();
      for (const [name, argv] of [
        ['lvcreate + dd conv=sparse', ['dd', `if=${from}`, `of=/dev/${lvTarget}`, 'bs=1M', 'conv=sparse,fsync', 'status=none']],
        ['lvcreate + qemu-img convert -n', ['qemu-img', 'convert', '-n', '-f', 'raw', '-O', 'raw', from, `/dev/${lvTarget}`]],
      ] as const) {
        const t0 = performance.now();
        sh('lvcreate', '-q', '--thin', '-V', `${src.size}b`, '-n', 'peer', `${VG}/tp`);
        const t1 = performance.now();
        sh(argv[0], ...argv.slice(1));
        sh('sync');
        const t2 = performance.now();
        whole[name]!.push(t2 - t0);
        data[name]!.push(t2 - t1);
        sh('lvremove', '-q', '-f', lvTarget);
      }
      // Qubes' own lvm_thin import_volume from another pool: the same LVs as qvol's (a new
      // -import LV, dd into it, the committed LV renamed to a revision, -import renamed in).
      const name = "Qubes' lvm_thin (lvcreate, dd, 2 lvrename)";
      sh('lvcreate', '-q', '--thin', '-V', `${src.size}b`, '-n', 'qubes', `${VG}/tp`);
      const t0 = performance.now();
      sh('lvcreate', '-q', '--thin', '-V', `${src.size}b`, '-n', 'qubes-import', `${VG}/tp`);
      const t1 = performance.now();
      sh('dd', `if=${from}`, `of=/dev/${VG}/qubes-import`, 'bs=128K', 'conv=sparse,nocreat,fsync', 'status=none');
      const t2 = performance.now();
      sh('lvrename', '-q', VG, 'qubes', `qubes-${i}-back`);
      sh('lvrename', '-q', VG, 'qubes-import', 'qubes');
      const t3 = performance.now();
      whole[name]!.push(t3 - t0);
      data[name]!.push(t2 - t1);
      sh('lvremove', '-q', '-f', `${VG}/qubes`, `${VG}/qubes-${i}-back`);
    }
    await src.exportEnd(from);
    console.log(`## lvm_thin: clone of a ${src.size / MiB} MiB volume holding ${dataMiB} MiB from a file pool into a thin LV (min of ${rounds}, ms)`);
    console.log('   whole: the command as run; data: the copy alone (less the lvm commands qvol runs, less the peers\' lvcreate)');
    const qw = Math.min(...whole['qvol import_volume (vm clone)']!);
    const qd = Math.min(...data['qvol import_volume (vm clone)']!);
    for (const name of Object.keys(whole)) {
      const w = Math.min(...whole[name]!);
      const d = Math.min(...data[name]!);
      const ratios = name.startsWith('qvol') ? '' : `   qvol ${(qw / w).toFixed(2)}x whole, ${(qd / d).toFixed(2)}x data`;
      console.log(`   ${name.padEnd(42)} whole ${w.toFixed(0).padStart(7)} ms, data ${d.toFixed(0).padStart(7)} ms${ratios}`);
    }
  });
} finally {
  try { sh('vgremove', '-q', '-f', VG); sh('pvremove', '-q', loop); } catch { /* best effort */ }
  sh('losetup', '-d', loop);
  rmSync(dir, { recursive: true, force: true });
}
