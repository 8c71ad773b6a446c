/**
 * The benchmark harness: each contender runs in a fresh child process, round-robin over
 * rounds so drift hits all alike, with the page cache brought to the same state before
 * every run (target removed, everything synced, source read once). Every run ends with the
 * target on disk: ours fsyncs as part of the copy, a peer's time includes `sync TARGET`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Limit } from './guard.js';

export interface Run {
  seconds: number;
  /** What the contender says it did (ours: the rung). */
  detail?: string;
}

export interface Contender {
  name: string;
  ours?: boolean;
  /** Runs once, returns the time of the work including the final sync. */
  run(src: string, dst: string): Run;
}

export interface Workload {
  name: string;
  goal: string;
  /** The goal as a ratio against a peer of the same run: what the guard checks (guard.ts). */
  limit: Limit;
  /** Builds the source and the place for targets; returns what the runs need. */
  setup(quick: boolean): Promise<Prepared> | Prepared;
}

export interface Prepared {
  src: string;
  /** The target path for a contender (a file path, or a device). */
  target(contender: Contender): string;
  contenders: Contender[];
  /** Puts the target back to its starting state before a run. */
  reset(target: string): void;
  /** Bytes allocated by a finished target. */
  allocated(target: string): number;
  /** True when the finished target reads back equal to the source. */
  equal(target: string): boolean;
  /** Extra facts checked on our result (e.g. every extent shared), shown in the table. */
  check?(target: string): Promise<string> | string;
  cleanup(): void;
}

export interface Result {
  contender: string;
  ours: boolean;
  seconds: number[];
  median: number;
  min: number;
  max: number;
  allocatedBytes: number;
  equal: boolean;
  detail?: string;
  check?: string;
}

const here = dirname(fileURLToPath(import.meta.url));

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Time a command and then `sync TARGET`, as a user of that tool would have to. */
export function timedCommand(cmd: string, args: string[], syncTarget: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  sh('sync', [syncTarget]);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Our copy, timed inside a fresh Node process after the module has loaded. */
export function qvolContender(name: string, options: Record<string, unknown> = {}): Contender {
  return {
    name,
    ours: true,
    run(src, dst) {
      const out = execFileSync(process.execPath, [join(here, 'qvol-child.js'), src, dst, JSON.stringify(options)], { encoding: 'utf8' });
      return JSON.parse(out) as Run;
    },
  };
}

export function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}

export function dropTarget(path: string): void {
  rmSync(path, { force: true });
}

/** Waits until no block device has I/O in flight (the discards of a removed target, the
 * writeback of the last run), so one run's tail does not land in the next one's time. */
function waitForQuietDisks(timeoutMs = 10_000): void {
  const deadline = Date.now() + timeoutMs;
  const inFlight = () => readFileSync('/proc/diskstats', 'utf8').split('\n')
    .map((line) => Number(line.trim().split(/\s+/)[11] ?? 0)).reduce((a, b) => a + b, 0);
  let quiet = 0;
  while (Date.now() < deadline && quiet < 5) {
    quiet = inFlight() === 0 ? quiet + 1 : 0;
    spawnSync('sleep', ['0.05']);
  }
}

/** Same page-cache state for every run: old target gone, all synced, source in cache. */
function settle(p: Prepared, target: string): void {
  p.reset(target);
  sh('sync', []);
  waitForQuietDisks();
  spawnSync('sh', ['-c', `cat "${p.src}" > /dev/null`]);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function measure(p: Prepared, rounds: number): Promise<Result[]> {
  const runs = new Map<Contender, Run[]>(p.contenders.map((c) => [c, []]));
  const judged = new Map<Contender, Pick<Result, 'allocatedBytes' | 'equal' | 'check'>>();
  for (let round = 0; round < rounds; round++) {
    for (const c of p.contenders) {
      const target = p.target(c);
      settle(p, target);
      runs.get(c)!.push(c.run(p.src, target));
      if (round === rounds - 1) {
        // Judge each target right after its last run: contenders may share one device.
        const check = c.ours && p.check ? await p.check(target) : undefined;
        judged.set(c, { allocatedBytes: p.allocated(target), equal: p.equal(target), ...(check === undefined ? {} : { check }) });
        p.reset(target);
      }
    }
  }
  return p.contenders.map((c) => {
    const times = runs.get(c)!.map((r) => r.seconds);
    const detail = runs.get(c)!.at(-1)?.detail;
    return {
      contender: c.name,
      ours: c.ours === true,
      seconds: times,
      median: median(times),
      min: Math.min(...times),
      max: Math.max(...times),
      ...judged.get(c)!,
      ...(detail === undefined ? {} : { detail }),
    };
  });
}

export function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}
