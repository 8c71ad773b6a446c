/**
 * Inside the lab VM (`npm run bench:lab`): lvm_thin's VM start and stop against the time of
 * the `lvm` commands they run (QVOL_TRACE_COMMANDS gives each one's wall time, spawn
 * included), and a cross-pool clone into a thin LV against `lvcreate` + `dd conv=sparse` and
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

/** Milliseconds the traced tools took since the file was last read. */
function toolMs(): number {
  let ms = 0;
  try {
    for (const line of readFileSync(traceFile, 'utf8').split('\n')) if (line.includes('\tlvm ')) ms += Number(line.split('\t')[0]);
  } catch { /* nothing ran */ }
  writeFileSync(traceFile, '');
  return ms;
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
    console.log(`## lvm_thin: VM start and stop against the lvm commands they run (lab VM under emulation, ${rounds} rounds, median ms)`);
    console.log('   goal: qvol adds < 10 % to the time of the lvm commands (one lvs report per operation)');
    for (const [step, t] of Object.entries(steps)) {
      const q = median(t.qvol);
      const l = median(t.lvm);
      console.log(`   ${step.padEnd(14)} qvol ${q.toFixed(0).padStart(6)} ms, its lvm commands ${l.toFixed(0).padStart(6)} ms: ${(q / l).toFixed(2)}x`);
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
    const peers: Record<string, number[]> = { 'qvol import_volume (vm clone)': [], 'lvcreate + dd conv=sparse': [], 'lvcreate + qemu-img convert -n': [] };
    const lvTarget = `${VG}/peer`;
    for (let i = 0; i < rounds; i++) {
      const dst = thin.initVolume({ name: 'copy', dirPathPrefix: 'appvms' }, { name: 'root', saveOnStop: true, rw: true, size: src.size });
      await dst.create();
      peers['qvol import_volume (vm clone)']!.push(await time(() => dst.importVolume(src)));
      await dst.remove();
      for (const [name, argv] of [
        ['lvcreate + dd conv=sparse', ['dd', `if=${from}`, `of=/dev/${lvTarget}`, 'bs=1M', 'conv=sparse,fsync', 'status=none']],
        ['lvcreate + qemu-img convert -n', ['qemu-img', 'convert', '-n', '-f', 'raw', '-O', 'raw', from, `/dev/${lvTarget}`]],
      ] as const) {
        const t0 = performance.now();
        sh('lvcreate', '-q', '--thin', '-V', `${src.size}b`, '-n', 'peer', `${VG}/tp`);
        sh(argv[0], ...argv.slice(1));
        sh('sync');
        peers[name]!.push(performance.now() - t0);
        sh('lvremove', '-q', '-f', lvTarget);
      }
    }
    await src.exportEnd(from);
    const q = Math.min(...peers['qvol import_volume (vm clone)']!);
    console.log(`## lvm_thin: clone of a ${src.size / MiB} MiB volume holding ${dataMiB} MiB from a file pool into a thin LV (min of ${rounds}, ms)`);
    for (const [name, xs] of Object.entries(peers)) {
      console.log(`   ${name.padEnd(32)} ${Math.min(...xs).toFixed(0).padStart(7)} ms${name.startsWith('qvol') ? '' : `   qvol ${(q / Math.min(...xs)).toFixed(2)}x`}`);
    }
  });
} finally {
  try { sh('vgremove', '-q', '-f', VG); sh('pvremove', '-q', loop); } catch { /* best effort */ }
  sh('losetup', '-d', loop);
  rmSync(dir, { recursive: true, force: true });
}
