/**
 * The benchmarks as a guard of the hot paths: each workload states its goal as a ratio
 * against a peer measured in the same run (so the machine's speed cancels out). A ratio
 * worse than twice the goal is measured once more; worse than twice the goal in both runs
 * in a row is a regression, not noise, and fails the run, naming the workload and by how
 * much. Ratios are of the minimums, the figure a stalling disk disturbs least.
 */
import type { Result } from './harness.js';

export interface Limit {
  /** qvol's minimum over the peer's: the goal. */
  ratio: number;
  /** The peer's contender name; without it, the fastest peer. */
  peer?: string;
}

export interface Ratio {
  ratio: number;
  peer: string;
}

export function ratioAgainst(results: Result[], limit: Limit): Ratio {
  const ours = results.find((r) => r.ours);
  const peers = results.filter((r) => !r.ours && (limit.peer === undefined || r.contender === limit.peer));
  if (!ours || peers.length === 0) throw new Error(`no result for qvol or for ${limit.peer ?? 'a peer'}`);
  const peer = peers.reduce((a, b) => (b.min < a.min ? b : a));
  return { ratio: ours.min / peer.min, peer: peer.contender };
}

export interface Regression {
  workload: string;
  goal: number;
  ratios: number[];
  peer: string;
}

export class RegressionGuard {
  readonly regressions: Regression[] = [];

  /**
   * Checks `first`; when it is over twice the goal, measures again with `again` and
   * records a regression if that is over too. Returns the line to print.
   */
  async check(workload: string, goal: number, first: Ratio, again: () => Promise<Ratio>): Promise<string> {
    const line = (r: Ratio) => `${r.ratio.toFixed(2)}x ${r.peer} (goal <= ${goal}x, guard at ${2 * goal}x)`;
    if (first.ratio <= 2 * goal) return `   guard: ${line(first)}: ok`;
    const second = await again();
    if (second.ratio <= 2 * goal) return `   guard: ${line(first)}, then ${line(second)} measured again: noise, ok`;
    this.regressions.push({ workload, goal, ratios: [first.ratio, second.ratio], peer: second.peer });
    return `   guard: REGRESSION ${line(first)}, then ${second.ratio.toFixed(2)}x measured again`;
  }

  /** The closing lines: every regression with its figures, or none. */
  summary(): string {
    if (this.regressions.length === 0) return 'guard: no workload over twice its goal';
    return this.regressions.map((r) =>
      `REGRESSION: ${r.workload}: qvol took ${r.ratios.map((x) => `${x.toFixed(2)}x`).join(' then ')} the time of ${r.peer} in two runs in a row; the goal is <= ${r.goal}x, so ${(r.ratios[1]! / r.goal).toFixed(1)}x the goal`).join('\n');
  }
}
