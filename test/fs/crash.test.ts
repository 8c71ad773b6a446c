/**
 * Crash injection: each of start, stop (commit), revert, clone and import is killed (SIGKILL)
 * after its 1st, 2nd, ... durable step, until it runs to the end. After each kill the next
 * `qvol vm stop` repairs the VM, no committed data is lost, and the power-loss rule holds:
 * what the VM wrote before the crash is what the next start sees and the next stop commits.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratchDir } from '../helpers/scratch.js';

const MAIN = join(import.meta.dirname, '../../dist/cli/main.js');
const MAX_STEPS = 60;

interface Home {
  home: string;
  dir: string;
  qvol(args: string[], crashAfter?: number): { status: number | null; signal: NodeJS.Signals | null; stderr: string };
  ok(...args: string[]): void;
  write(file: string, text: string): void;
  read(file: string): string;
  files(): string[];
  committed(): string[];
}

function newHome(): Home {
  const home = scratchDir('crash');
  const dir = join(home, 'pools/default/vm-templates/debian');
  const h: Home = {
    home,
    dir,
    qvol(args, crashAfter) {
      const env = { ...process.env, QVOL_HOME: home, QVOL_CRASH_AFTER_STEP: crashAfter ? String(crashAfter) : '' };
      const r = spawnSync(process.execPath, [MAIN, ...args], { env, encoding: 'utf8' });
      return { status: r.status, signal: r.signal, stderr: r.stderr };
    },
    ok(...args) {
      const r = h.qvol(args);
      expect(r.status, `qvol ${args.join(' ')}: ${r.stderr}`).toBe(0);
    },
    write(file, text) { writeFileSync(join(dir, file), text, { flag: 'r+' }); },
    read(file) {
      const fd = openSync(join(dir, file), 'r');
      const buf = Buffer.alloc(8);
      readSync(fd, buf, 0, 8, 0);
      closeSync(fd);
      return buf.toString().replace(/\0+$/, '');
    },
    files() { return existsSync(dir) ? readdirSync(dir).sort() : []; },
    /** Contents of the clean image and every revision of root. */
    committed() {
      return h.files().filter((f) => /^root\.img(\.\d+@.*Z)?$/.test(f)).map((f) => h.read(f));
    },
  };
  h.ok('vm', 'create', '--class', 'template', 'debian');
  return h;
}

function commitRoot(h: Home, text: string): void {
  h.ok('vm', 'start', 'debian');
  h.write('root-dirty.img', text);
  h.ok('vm', 'stop', 'debian');
}

/** Runs `op` killed after step 1, 2, ... on a fresh setup each time, until it completes. */
function everyStep(setup: () => Home, op: string[] | ((h: Home) => string[]), check: (h: Home, crashedAt: number | undefined) => void): number {
  for (let step = 1; step <= MAX_STEPS; step++) {
    const h = setup();
    const args = typeof op === 'function' ? op(h) : op;
    const r = h.qvol(args, step);
    if (r.signal === null) {
      expect(r.status, r.stderr).toBe(0);
      check(h, undefined);
      return step;
    }
    expect(r.signal).toBe('SIGKILL');
    check(h, step);
  }
  throw new Error(`the operation did not finish within ${MAX_STEPS} steps`);
}

/** The repairs a user runs after a crash, and the invariants every one of them keeps. */
function repairAndCheck(h: Home, expectRoot: string[]): void {
  h.ok('vm', 'stop', 'debian');
  expect(h.files().filter((f) => f.includes('~') || f.endsWith('-dirty.img'))).toEqual([]);
  expect(expectRoot).toContain(h.read('root.img'));
  h.ok('vm', 'start', 'debian');
  expect(h.read('root-dirty.img')).toBe(h.read('root.img'));
  expect(h.files().filter((f) => f.endsWith('-import.img'))).toEqual([]);
  h.ok('vm', 'stop', 'debian');
}

describe('crash injection (SIGKILL after every durable step)', () => {
  it('stop: what the VM wrote is committed by the next stop', () => {
    const steps = everyStep(() => {
      const h = newHome();
      commitRoot(h, 'OLD');
      h.ok('vm', 'start', 'debian');
      h.write('root-dirty.img', 'NEW');
      return h;
    }, ['vm', 'stop', 'debian'], (h) => {
      h.ok('vm', 'stop', 'debian');
      expect(h.committed()).toContain('OLD'); // the previous state, as the revision
      repairAndCheck(h, ['NEW']);
    });
    expect(steps).toBeGreaterThan(3);
  });

  it('start: the next start sees the committed data, and a crashed start\'s image is reused', () => {
    everyStep(() => {
      const h = newHome();
      commitRoot(h, 'OLD');
      return h;
    }, ['vm', 'start', 'debian'], (h) => repairAndCheck(h, ['OLD']));
  });

  /** A running VM wrote UNSAVED, then its host lost power: markers of another boot, images stay. */
  function powerLossWhileRunning(): Home {
    const h = newHome();
    commitRoot(h, 'OLD');
    h.ok('vm', 'start', 'debian');
    h.write('root-dirty.img', 'UNSAVED');
    for (const f of readdirSync(join(h.home, 'run'))) writeFileSync(join(h.home, 'run', f), 'another-boot\n');
    return h;
  }

  it('power loss while running: the next start picks up the uncommitted state', () => {
    const h = powerLossWhileRunning();
    h.ok('vm', 'start', 'debian');
    expect(h.read('root-dirty.img')).toBe('UNSAVED');
    h.ok('vm', 'stop', 'debian');
    expect(h.read('root.img')).toBe('UNSAVED');
    expect(h.committed()).toContain('OLD');
  });

  it('power loss while running: an import is refused with the fix, and the uncommitted state is kept', () => {
    const h = powerLossWhileRunning();
    const file = join(h.home, 'new.img');
    writeFileSync(file, Buffer.alloc(4096));
    const r = h.qvol(['volume', 'import', 'debian:root', '-i', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Cannot import data to dirty volume vm-templates/debian/root, stop the qube first');
    h.ok('vm', 'stop', 'debian');
    expect(h.read('root.img')).toBe('UNSAVED');
    h.ok('volume', 'import', 'debian:root', '-i', file);
    expect(h.read('root.img')).toBe('');
  });

  it('recover commits what a crash before a reboot left', () => {
    const h = powerLossWhileRunning();
    h.ok('recover');
    expect(h.read('root.img')).toBe('UNSAVED');
    expect(h.files().filter((f) => f.endsWith('-dirty.img'))).toEqual([]);
  });

  it('revert: the reverted-to state and the current one both survive', () => {
    everyStep(() => {
      const h = newHome();
      commitRoot(h, 'V1');
      commitRoot(h, 'V2');
      return h;
    }, ['volume', 'revert', 'debian:root'], (h) => {
      const committed = h.committed();
      expect(committed).toContain('V1');
      expect(committed).toContain('V2');
      repairAndCheck(h, ['V1', 'V2']);
    });
  });

  it('clone: a crash leaves the new VM whole or, after recover, nothing of it', () => {
    const steps = everyStep(() => {
      const h = newHome();
      commitRoot(h, 'OLD');
      return h;
    }, ['vm', 'clone', 'debian', 'copy'], (h, crashedAt) => {
      h.ok('recover');
      const state = JSON.parse(readFileSync(join(h.home, 'state.json'), 'utf8'));
      const copyDir = join(h.home, 'pools/default/vm-templates/copy');
      if (state.vms.copy) {
        expect(state.vms.copy.pending).toBeUndefined();
        h.ok('vm', 'start', 'copy');
        h.ok('vm', 'stop', 'copy');
        expect(crashedAt === undefined || readdirSync(copyDir).some((f) => f === 'root.img')).toBe(true);
      } else {
        expect(existsSync(copyDir) ? readdirSync(copyDir) : []).toEqual([]);
        h.ok('vm', 'clone', 'debian', 'copy');
      }
      expect(h.committed()).toContain('OLD');
    });
    expect(steps).toBeGreaterThan(3);
  });

  it('import: the volume holds the old data or all of the new, never a mix', () => {
    everyStep(() => {
      const h = newHome();
      commitRoot(h, 'OLD');
      const file = join(h.home, 'new.img');
      writeFileSync(file, Buffer.alloc(4096));
      writeFileSync(file, 'NEW', { flag: 'r+' });
      return h;
    }, (h) => ['volume', 'import', 'debian:root', '-i', join(h.home, 'new.img')], (h, crashedAt) => {
      if (crashedAt === undefined) expect(h.read('root.img')).toBe('NEW');
      repairAndCheck(h, ['OLD', 'NEW']);
    });
  });
});
