/**
 * `npm run bench [-- --quick] [--only NAME] [--json FILE]`: every workload, qvol against the
 * tools a user would otherwise use, in one run. Prints a table of medians, ratios
 * (qvol / peer: below 1 is faster), allocation and whether the target reads back equal,
 * then writes the whole result as JSON.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { native } from '../src/native/binding.js';
import { formatBytes } from '../src/util/size.js';
import { RegressionGuard, ratioAgainst } from './guard.js';
import { measure, writeJson, type Result, type Workload } from './harness.js';
import { startup } from './workloads/startup.js';
import { backupBench } from './workloads/backup.js';
import { bridgeLatency } from './workloads/bridge-latency.js';
import { crossFsCopy } from './workloads/cross-fs-copy.js';
import { deviceCopy } from './workloads/device-copy.js';
import { reflinkCopy } from './workloads/reflink-copy.js';
import { sparseCopy } from './workloads/sparse-copy.js';
import { streamPipe } from './workloads/stream-pipe.js';
import { thickCopy } from './workloads/thick-copy.js';
import { vmLifecycle } from './workloads/vm-lifecycle.js';
import { crossFsClone } from './workloads/vm-clone.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const jsonPath = args.includes('--json') ? args[args.indexOf('--json') + 1]! : join(root, 'bench', 'results', `bench-${quick ? 'quick' : 'full'}.json`);
const isRoot = process.getuid?.() === 0;

const workloads: Array<{ w: Workload; needsRoot: boolean }> = [
  { w: sparseCopy, needsRoot: false },
  { w: thickCopy, needsRoot: false },
  { w: reflinkCopy('btrfs'), needsRoot: true },
  { w: reflinkCopy('xfs'), needsRoot: true },
  { w: crossFsCopy, needsRoot: true },
  { w: deviceCopy, needsRoot: true },
  { w: streamPipe('sparse'), needsRoot: true },
  { w: streamPipe('raw'), needsRoot: true },
];

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
}

function table(results: Result[]): string {
  const ours = results.find((r) => r.ours)!;
  const widths = [28, 7, 8, 7, 10, 10, 11, 6];
  const lines = [row(['contender', 'min s', 'median s', 'max s', 'ratio min', 'ratio med', 'allocated', 'equal'], widths)];
  for (const r of results) {
    const ratio = (a: number, b: number) => (r.ours ? '' : `${(a / b).toFixed(2)}x`);
    lines.push(row([r.contender, r.min.toFixed(3), r.median.toFixed(3), r.max.toFixed(3), ratio(ours.min, r.min),
      ratio(ours.median, r.median), formatBytes(r.allocatedBytes), r.equal ? 'yes' : 'NO'], widths));
  }
  const said = ours.detail && (ours.detail.includes(' ') ? `qvol: ${ours.detail}` : `qvol took the ${ours.detail} rung`);
  const notes = [said, ours.check].filter(Boolean);
  if (notes.length > 0) lines.push(`  ${notes.join('; ')}`);
  return lines.join('\n');
}

function zeroScan(): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  const impls = native.capabilitiesSync().avx2 ? ['memeqzero', 'avx2'] as const : ['memeqzero'] as const;
  for (const impl of impls) {
    out[impl] = {
      'cache-resident (256 KiB)': native.zeroScanRateSync(256 * 1024, quick ? 2000 : 20000, impl),
      'from memory (256 MiB)': native.zeroScanRateSync(256 * 2 ** 20, quick ? 2 : 10, impl),
    };
  }
  return out;
}

const report: Record<string, unknown> = { quick, date: new Date().toISOString(), kernel: native.capabilitiesSync().kernel, workloads: [] };
const rounds = quick ? 3 : 7;
const guard = new RegressionGuard();
console.log(`qvol bench (${quick ? 'quick: smaller images' : 'full'}, ${rounds} rounds; every run ends with the target synced)`);
console.log('ratio = qvol / this contender, below 1 is faster. This VM\'s disk stalls now and then for a second,');
console.log('whoever is writing; stalls only add time, so the ratio of the minimums is the steadier figure.\n');
for (const { w, needsRoot } of workloads) {
  if (only && !w.name.includes(only)) continue;
  console.log(`## ${w.name}\n   goal: ${w.goal}`);
  if (needsRoot && !isRoot) {
    console.log('   skipped: needs root for loop devices\n');
    continue;
  }
  const prepared = await w.setup(quick);
  try {
    const results = await measure(prepared, rounds);
    console.log(table(results));
    console.log(`${await guard.check(w.name, w.limit.ratio, ratioAgainst(results, w.limit), async () => ratioAgainst(await measure(prepared, rounds), w.limit))}\n`);
    (report.workloads as unknown[]).push({ name: w.name, goal: w.goal, results });
  } finally {
    prepared.cleanup();
  }
}
if (isRoot && (!only || 'vm'.includes(only) || only.startsWith('vm'))) {
  const lifecycle = [];
  for (const kind of ['btrfs', 'xfs'] as const) {
    const r = await vmLifecycle(kind, quick, rounds);
    lifecycle.push(r);
    console.log(`## VM start/stop on ${kind}: template root ${formatBytes(r.rootSize)} with ${formatBytes(r.rootData)} of data\n   goal: each under 50 ms, whatever the size`);
    for (const [step, ms] of Object.entries(r.ms)) console.log(`   ${step.padEnd(24)} ${ms.toFixed(1).padStart(7)} ms (median)`);
    console.log('');
  }
  report.vmLifecycle = lifecycle;
  const clone = await crossFsClone(quick, rounds);
  const m = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`## vm clone, ext4 pool -> XFS pool (${formatBytes(clone.data)} of data)\n   goal: qvol <= 0.9x cp --sparse=always`);
  console.log(`   qvol vm clone -P xfs      min ${Math.min(...clone.qvolSeconds).toFixed(3)} s  median ${m(clone.qvolSeconds).toFixed(3)} s`);
  console.log(`   cp --sparse=always + sync min ${Math.min(...clone.cpSeconds).toFixed(3)} s  median ${m(clone.cpSeconds).toFixed(3)} s`);
  console.log(`   ratio (min) ${(Math.min(...clone.qvolSeconds) / Math.min(...clone.cpSeconds)).toFixed(2)}x, (median) ${(m(clone.qvolSeconds) / m(clone.cpSeconds)).toFixed(2)}x`);
  const cloneRatio = (c: typeof clone) => ({ ratio: Math.min(...c.qvolSeconds) / Math.min(...c.cpSeconds), peer: 'cp --sparse=always' });
  console.log(`${await guard.check('vm clone ext4 -> XFS', 0.9, cloneRatio(clone), async () => cloneRatio(await crossFsClone(quick, rounds)))}\n`);
  report.vmClone = clone;
}
if (!only || 'backup'.includes(only)) {
  const b = await backupBench(quick, quick ? 2 : 3);
  const s = b.seconds;
  console.log(`## backup: a ${formatBytes(b.size)} volume with ${formatBytes(b.data)} of data (half random, half ~3x compressible), 1 MiB chunks, zstd:3, encrypted`);
  console.log('   goal: full send <= 1.3x zstd -3 -T0; restore <= 1.3x zstd -d -T0; unchanged send < 0.3 s; 1 % changed <= 0.5x the full send;');
  console.log('         objects <= stored / 16 MiB + 20; archive <= 1.02x zstd\'s output');
  for (const [what, sec] of Object.entries(s)) console.log(`   ${what.padEnd(34)} ${sec.toFixed(3).padStart(8)} s (min)`);
  console.log(`   archive ${formatBytes(b.archiveBytes)} in ${b.objects} objects; zstd -3 output ${formatBytes(b.zstdBytes)} (${(b.archiveBytes / b.zstdBytes).toFixed(3)}x); peak RSS send ${formatBytes(b.rss.send ?? 0)}, restore ${formatBytes(b.rss.restore ?? 0)}, prune ${formatBytes(b.rss.prune ?? 0)}`);
  const sp = b.sparse;
  console.log(`   a ${formatBytes(sp.size)} sparse volume holding ${formatBytes(sp.data)}: send ${sp.seconds.send.toFixed(2)} s, peak RSS ${formatBytes(sp.rss.send)}; restore ${sp.seconds.restore.toFixed(2)} s, peak RSS ${formatBytes(sp.rss.restore)} (goal < 300 MiB)`);
  const bi = b.bigIndex;
  console.log(`   an archive indexing ${(bi.refs / 1e6).toFixed(0)} M blobs (${formatBytes(bi.refs * 64)} of index), a 64 MiB volume: first send on this host ${bi.seconds.firstSend.toFixed(2)} s at ${formatBytes(bi.rss.firstSend)} peak RSS (builds the local index), next send ${bi.seconds.send.toFixed(2)} s at ${formatBytes(bi.rss.send)}, prune ${bi.seconds.prune.toFixed(2)} s at ${formatBytes(bi.rss.prune)} (goal < 300 MiB)`);
  const sendRatio = (r: typeof b) => ({ ratio: r.seconds['qvol send (full)']! / r.seconds['zstd -3 -T0 > /dev/null']!, peer: 'zstd -3 -T0' });
  const restoreRatio = (r: typeof b) => ({ ratio: r.seconds['qvol restore']! / r.seconds['zstd -d -T0 into a sparse file']!, peer: 'zstd -d -T0' });
  let again: Promise<typeof b> | undefined;
  const rerun = () => (again ??= backupBench(quick, quick ? 2 : 3));
  console.log(await guard.check('backup send', 1.3, sendRatio(b), async () => sendRatio(await rerun())));
  console.log(`${await guard.check('backup restore', 1.3, restoreRatio(b), async () => restoreRatio(await rerun()))}\n`);
  report.backup = b;
}
if (!only || 'startup'.includes(only)) {
  const s = await startup(quick ? 5 : 15);
  console.log('## start-up: whole processes as a user runs them, beside the library call in-process');
  console.log('   goal: qvol --version <= 1.5x node -e 0; a verb <= the library script making its call + 50 ms');
  for (const [what, ms] of Object.entries(s.ms)) console.log(`   ${what.padEnd(34)} ${ms.toFixed(1).padStart(7)} ms (min)`);
  console.log(`   qvol vm ls: ${s.verbOverheadMs.toFixed(1)} ms over the library script (the CLI's own cost: parsing, printing)`);
  const versionRatio = (r: typeof s) => ({ ratio: r.ms['qvol --version']! / r.ms['node -e 0']!, peer: 'node -e 0' });
  console.log(`${await guard.check('qvol --version', 1.5, versionRatio(s), async () => versionRatio(await startup(quick ? 5 : 15)))}\n`);
  report.startup = s;
}
if (isRoot && (!only || 'bridge'.includes(only))) {
  const b = await bridgeLatency(quick ? 20 : 100);
  console.log('## qubesd bridge: a volume\'s start + stop (file-reflink), in-process and through qvol daemon');
  console.log('   goal: the Python bridge adds < 2 ms to a start or a stop over the driver in-process');
  for (const [how, ms] of Object.entries(b.ms)) console.log(`   ${how.padEnd(30)} ${ms === undefined ? `skipped: ${b.skipped}` : `${ms.toFixed(2).padStart(7)} ms (median)`}`);
  if (b.bridgeOverheadMs !== undefined) {
    console.log(`   the bridge adds ${b.bridgeOverheadMs.toFixed(2)} ms per start or stop`);
    const budget = (r: typeof b) => ({ ratio: (r.bridgeOverheadMs ?? 0) / 2, peer: 'the 2 ms budget' });
    console.log(`${await guard.check('qubesd bridge', 1, budget(b), async () => budget(await bridgeLatency(quick ? 20 : 100)))}\n`);
  }
  report.bridge = b;
}
const scan = zeroScan();
console.log('## zero detection, 4 KiB blocks (GB/s)');
for (const [impl, rates] of Object.entries(scan)) {
  console.log(`   ${impl.padEnd(10)} ${Object.entries(rates).map(([k, v]) => `${k}: ${(v / 1e9).toFixed(1)}`).join('   ')}`);
}
report.zeroScan = scan;
mkdirSync(dirname(jsonPath), { recursive: true });
report.regressions = guard.regressions;
writeJson(jsonPath, report);
console.log(`\n${guard.summary()}`);
console.log(`written: ${jsonPath}`);
if (guard.regressions.length > 0) process.exitCode = 1;
