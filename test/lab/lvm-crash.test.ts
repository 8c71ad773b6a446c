/**
 * Crash injection on lvm_thin, through the CLI as a user runs it: start, stop, import and
 * revert are each killed (SIGKILL) after their 1st, 2nd, ... lvm command until they run to
 * the end. Only the killed verb runs as a process; the repair (`vm stop`, as after a crash)
 * runs here through the library. After every kill the committed data is the old or the new,
 * never a mix, and no `-snap` or `-import` is left that would break the next start.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QvolApp } from '../../src/app/app.js';
import { runQvol } from '../helpers/cli.js';
import { skipReason } from '../helpers/gates.js';
import { exported, writeAt } from '../helpers/volume-contract.js';
import { inLab, notInLab, sh } from './zpool.js';

const MAIN = join(import.meta.dirname, '../../dist/cli/main.js');
const MAX_STEPS = 20;
const VG = 'qvolcrash';
const ROOT = `/dev/mapper/${VG}-vm--t--root--snap`;

describe.skipIf(!inLab)(skipReason(notInLab, 'crash injection on lvm_thin'), () => {
  const dir = mkdtempSync(join(tmpdir(), 'qvol-lcrash-'));
  const home = join(dir, 'home');
  let loop = '';
  const withApp = <T>(fn: (app: QvolApp) => Promise<T>) => QvolApp.with({ home }, fn);
  const killed = (args: string[], n: number) => spawnSync(process.execPath, [MAIN, ...args], {
    env: { ...process.env, QVOL_HOME: home, QVOL_CRASH_AFTER_STEP: String(n) }, encoding: 'utf8',
  });
  const committed = () => withApp((app) => exported(app.getVolume('t', 'root')));
  const repair = () => withApp((app) => app.stopVm('t'));
  /** What a crash may leave only until the repair: a running snapshot or an import. */
  const stray = () => sh('lvs', '--noheadings', '-o', 'lv_name', VG).split('\n').map((l) => l.trim()).filter((l) => /-(snap|import)$/.test(l));
  const commitText = async (text: string) => {
    await withApp((app) => app.startVm('t'));
    writeAt(ROOT, text);
    await repair();
    expect(await committed()).toBe(text);
  };
  /** A new committed state by import, in-process: a third of the lvm commands of a VM start and stop. */
  const importText = async (text: string) => {
    const input = join(dir, `${text}.img`);
    writeFileSync(input, text);
    truncateSync(input, 2 ** 20);
    const r = await runQvol(['volume', 'import', 't:root', '-i', input, '--size', '1M']);
    expect(r.code, r.err).toBe(0);
    expect(await committed()).toBe(text);
  };

  beforeAll(async () => {
    process.env.QVOL_HOME = home; // for the in-process CLI of importText
    const file = join(dir, 'pv.img');
    writeFileSync(file, '');
    truncateSync(file, 1024 * 2 ** 20);
    loop = sh('losetup', '--find', '--show', file);
    await withApp(async (app) => {
      await app.addPool({ name: 'l', driver: 'lvm_thin', volume_group: VG, thin_pool: 'tp', block_devices: loop, revisions_to_keep: 2 });
      await app.createVm('t', 'template', { pool: 'l' });
    });
  });
  afterAll(() => {
    try { sh('vgremove', '-q', '-f', VG); } catch { /* best effort */ }
    try { sh('pvremove', '-q', loop); sh('losetup', '-d', loop); } catch { /* likewise */ }
    rmSync(dir, { recursive: true, force: true });
  });

  const untilDone = async (what: string, minSteps: number, before: (n: number) => Promise<void>, args: string[], after: (n: number) => Promise<void>) => {
    let n = 1;
    for (; n <= MAX_STEPS; n++) {
      await before(n);
      const r = killed(args, n);
      if (r.status === 0) break;
      expect(r.signal, `${what} after step ${n}: ${r.stderr}`).toBe('SIGKILL');
      await repair();
      expect(stray()).toEqual([]);
      await after(n);
    }
    expect(n).toBeGreaterThan(minSteps);
    return n;
  };

  it('start: killed after each step, the next stop repairs and nothing committed is lost', async () => {
    await commitText('c1');
    await untilDone('start', 2, async () => undefined, ['vm', 'start', 't'], async () => expect(await committed()).toBe('c1'));
    await repair();
    expect(await committed()).toBe('c1');
  });

  it('stop: killed after each step, the data written while it ran is committed by the next stop', async () => {
    let written = '';
    const n = await untilDone('stop', 2, async (i) => {
      await withApp((app) => app.startVm('t'));
      written = `s${i}`;
      writeAt(ROOT, written);
    }, ['vm', 'stop', 't'], async (i) => expect(await committed()).toBe(`s${i}`));
    expect(await committed()).toBe(`s${n}`);
  });

  it('import: killed after each step, the volume holds the old data or the new, never a mix', async () => {
    const input = join(dir, 'input.img');
    writeFileSync(input, 'imported');
    truncateSync(input, 2 ** 20);
    await untilDone('import', 2, (i) => importText(`b${i}`), ['volume', 'import', 't:root', '-i', input, '--size', '1M'],
      async (i) => expect([`b${i}`, 'imported']).toContain(await committed()));
    expect(await committed()).toBe('imported');
  });

  it('revert: killed after each step, the volume holds the state before or the revision, and starts', async () => {
    const n = await untilDone('revert', 1, async (i) => {
      await importText(`r${i}`);
      await importText(`q${i}`);
    }, ['volume', 'revert', 't:root'], async (i) => {
      expect([`q${i}`, `r${i}`]).toContain(await committed());
      await withApp((app) => app.startVm('t'));
      await repair();
    });
    expect(await committed()).toBe(`r${n}`);
  });
});
