/** The CLI in-process, as a user runs it: its exit status and what it printed. */
import { Writable } from 'node:stream';
import { runCli } from '../../src/cli/program.js';

export async function runQvol(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (into: string[]) => new Writable({ write(c, _e, cb) { into.push(String(c)); cb(); } });
  const code = await runCli(args, { stdout: sink(out), stderr: sink(err) });
  return { code, out: out.join(''), err: err.join('') };
}
