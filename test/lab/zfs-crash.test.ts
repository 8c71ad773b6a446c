/**
 * Crash injection on zfs_zvol, through the CLI as a user runs it: start, stop and import are
 * each killed (SIGKILL) after their 1st, 2nd, ... zfs command until they run to the end.
 * After every kill a stop (in this process) repairs the VM: the committed data is the old or the new,
 * never a mix, no helper dataset is left, and a crashed stop's data is committed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QvolApp } from '../../src/app/app.js';
import { skipReason } from '../helpers/gates.js';
import { exported, writeAt } from '../helpers/volume-contract.js';
import { datasetsUnder, inLab, makeZpool, notInLab, type LabZpool } from './zpool.js';

const MAIN = join(import.meta.dirname, '../../dist/cli/main.js');
const MAX_STEPS = 20;
const VID = 'qvolcrash/z/vm/t/root';

describe.skipIf(!inLab)(skipReason(notInLab, 'crash injection on zfs_zvol'), () => {
  let zp: LabZpool;
  const home = mkdtempSync(join(tmpdir(), 'qvol-zcrash-'));
  // Only the killed verb runs as a process; the set-ups and repairs run in this one (the
  // same library calls the CLI makes), since each Node start costs seconds under emulation.
  const withApp = <T>(fn: (app: QvolApp) => Promise<T>) => QvolApp.with({ home }, fn);
  const killed = (args: string[], n: number) => spawnSync(process.execPath, [MAIN, ...args], {
    env: { ...process.env, QVOL_HOME: home, QVOL_CRASH_AFTER_STEP: String(n) }, encoding: 'utf8',
  });
  const committed = () => withApp((app) => exported(app.getVolume('t', 'root')));
  const repair = () => withApp((app) => app.stopVm('t'));
  const helpers = () => datasetsUnder('qvolcrash/z').filter((ds) => /\/\.(tmp|trash|importing)\//.test(ds));
  const commitText = async (text: string) => {
    await withApp((app) => app.startVm('t'));
    writeAt(`/dev/zvol/${VID}`, text);
    await repair();
    expect(await committed()).toBe(text);
  };

  beforeAll(async () => {
    zp = makeZpool('qvolcrash');
    await withApp(async (app) => {
      await app.addPool({ name: 'z', driver: 'zfs_zvol', container: 'qvolcrash/z' });
      await app.createVm('t', 'template', { pool: 'z' });
    });
  });
  afterAll(() => zp?.destroy());

  it('start: killed after each step, the next stop repairs and nothing committed is lost', async () => {
    await commitText('c1');
    let n = 1;
    for (; n <= MAX_STEPS; n++) {
      const r = killed(['vm', 'start', 't'], n);
      if (r.status === 0) break;
      expect(r.signal, r.stderr).toBe('SIGKILL');
      await repair();
      expect(await committed()).toBe('c1');
      expect(helpers()).toEqual([]);
    }
    expect(n).toBeGreaterThan(2);
    await repair();
  });

  it('stop: killed after each step, the data written while it ran is committed by the next stop', async () => {
    let n = 1;
    for (; n <= MAX_STEPS; n++) {
      await withApp((app) => app.startVm('t'));
      writeAt(`/dev/zvol/${VID}`, `s${n}`);
      const r = killed(['vm', 'stop', 't'], n);
      if (r.status === 0) break;
      expect(r.signal, r.stderr).toBe('SIGKILL');
      await repair();
      expect(await committed()).toBe(`s${n}`);
    }
    expect(n).toBeGreaterThan(2);
    expect(await committed()).toBe(`s${n}`);
  });

  it('import: killed after each step, the volume holds the old data or the new, never a mix', async () => {
    const input = join(home, 'input.img');
    writeFileSync(input, 'imported');
    truncateSync(input, 2 ** 20);
    let n = 1;
    for (; n <= MAX_STEPS; n++) {
      await commitText(`b${n}`);
      const r = killed(['volume', 'import', 't:root', '-i', input, '--size', '1M'], n);
      if (r.status === 0) break;
      expect(r.signal, r.stderr).toBe('SIGKILL');
      await repair();
      expect([`b${n}`, 'imported']).toContain(await committed());
      expect(helpers()).toEqual([]);
    }
    expect(n).toBeGreaterThan(3);
    expect(await committed()).toBe('imported');
  });
});
