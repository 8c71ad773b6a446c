/**
 * Start-up as a CLI user pays it: whole processes (`node -e 0`, `qvol --version`, `qvol vm
 * ls`, and a script that imports the library and makes the call `vm ls` makes) beside the
 * call timed in this process after warm-up. The CLI's overhead is what `qvol vm ls` costs
 * over the library script: parsing the command line and printing.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QvolApp } from '../../src/app/app.js';
import { scratchDir } from '../fixtures.js';

export interface StartupResult {
  /** Minimum milliseconds of each, over the rounds. */
  ms: Record<string, number>;
  verbOverheadMs: number;
}

/** dist/cli/main.js: the command as npm installs it (built by tsconfig.build.json). */
const DIST = join(fileURLToPath(import.meta.url), '..', '..', '..', '..', 'dist');
const MAIN = join(DIST, 'cli', 'main.js');

function msOf(fn: () => unknown): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function msOfAsync(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export async function startup(rounds: number): Promise<StartupResult> {
  const scratch = scratchDir('startup');
  try {
    const env = { ...process.env, QVOL_HOME: scratch.dir };
    const run = (args: string[]) => execFileSync(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    run([MAIN, 'vm', 'create', '--class', 'standalone', 'bench']);
    const listVms = () => QvolApp.with({ home: scratch.dir }, async (app) => app.listVms());
    await listVms();
    // A library user's script for the same work: import qvol, open, list, print.
    const script = join(scratch.dir, 'list.mjs');
    writeFileSync(script, `const { QvolApp } = await import(${JSON.stringify(pathToFileURL(join(DIST, 'index.js')).href)});\n` +
      `console.log(JSON.stringify(await QvolApp.with({ home: ${JSON.stringify(scratch.dir)} }, async (app) => app.listVms())));\n`);
    const samples: Record<string, number[]> = {
      'node -e 0': [], 'qvol --version': [], 'qvol vm ls': [], 'library script: listVms': [], 'library: listVms (in-process)': [],
    };
    for (let i = 0; i < rounds; i++) {
      samples['node -e 0']!.push(msOf(() => run(['-e', '0'])));
      samples['qvol --version']!.push(msOf(() => run([MAIN, '--version'])));
      samples['qvol vm ls']!.push(msOf(() => run([MAIN, 'vm', 'ls'])));
      samples['library script: listVms']!.push(msOf(() => run([script])));
      samples['library: listVms (in-process)']!.push(await msOfAsync(listVms));
    }
    const ms = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, Math.min(...v)]));
    return { ms, verbOverheadMs: ms['qvol vm ls']! - ms['library script: listVms']! };
  } finally {
    scratch.remove();
  }
}
