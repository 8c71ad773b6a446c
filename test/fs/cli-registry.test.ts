/**
 * The registry verbs end to end through runCli, on the host filesystem in a fresh
 * QVOL_HOME: the embedded default pool, VM lifecycles, and every refusal (exit 1, or 2 for
 * usage) leaving the state as it was.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeEach, describe, expect, it } from 'vitest';
import { runQvol } from '../helpers/cli.js';
import { scratchDir } from '../helpers/scratch.js';

const MAIN = join(import.meta.dirname, '../../dist/cli/main.js');

const qvol = (...args: string[]) => runQvol(args);

const json = async (...args: string[]) => {
  const r = await qvol(...args, '--json');
  expect(r.code, r.err + r.out).toBe(0);
  return JSON.parse(r.out);
};

let home: string;
const stateText = () => readFileSync(join(home, 'state.json'), 'utf8');

beforeEach(() => {
  home = scratchDir('home');
  process.env.QVOL_HOME = home;
});

describe('qvol registry verbs', () => {
  it('makes the default pool on first use and runs a template and an app VM', async () => {
    expect((await qvol('vm', 'create', '--class', 'template', 'debian')).code).toBe(0);
    expect((await json('pool', 'ls')).map((p: { name: string }) => p.name)).toEqual(['default']);
    await json('vm', 'create', '--class', 'app', '--template', 'debian', 'work');
    const devices = await json('vm', 'start', 'work');
    expect(devices.map((d: { frontend: string }) => d.frontend)).toEqual(['xvda', 'xvdb', 'xvdc']);
    expect((await json('vm', 'ls')).find((v: { name: string }) => v.name === 'work').running).toBe(true);
    await json('vm', 'stop', 'work');
    const info = await json('volume', 'info', 'work:root');
    expect(info).toMatchObject({ pool: 'default', vid: 'appvms/work/root', source: 'vm-templates/debian/root', snap_on_start: true, is_outdated: false });
    const text = await qvol('volume', 'info', 'work:private');
    expect(text.out.split('\n').slice(0, 12).map((l) => l.split('=')[0])).toEqual(
      ['pool', 'vid', 'size', 'usage', 'rw', 'source', 'path', 'save_on_stop', 'snap_on_start', 'revisions_to_keep', 'ephemeral', 'is_outdated']);
    expect(text.out).toContain('save_on_stop=True\n');
    expect(await json('volume', 'revisions', 'work:private')).toHaveLength(1);
  });

  it('clones a VM, resizes, configures and exports/imports volumes', async () => {
    await json('vm', 'create', '--class', 'standalone', 'solo');
    await json('volume', 'resize', 'solo:private', '64M');
    await json('vm', 'clone', 'solo', 'twin');
    expect((await json('volume', 'info', 'twin:private')).size).toBe(64 * 2 ** 20);
    await json('volume', 'config', 'twin:private', 'revisions_to_keep', '3');
    expect((await json('volume', 'info', 'twin:private')).revisions_to_keep).toBe(3);
    const file = join(home, 'export.img');
    await json('volume', 'export', 'solo:private', '-o', file);
    // --size declares what the input holds (ImportWithSize): a different size is refused
    const before = stateText();
    const wrong = await qvol('volume', 'import', 'twin:private', '-i', file, '--size', '32M');
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain('the size given is 33554432');
    expect(stateText()).toBe(before);
    await json('volume', 'resize', 'solo:private', '96M');
    await json('volume', 'export', 'solo:private', '-o', file);
    await json('volume', 'import', 'twin:private', '-i', file);
    expect((await json('volume', 'info', 'twin:private')).size).toBe(96 * 2 ** 20);
  });

  it('creates directories 0700 and images 0600 whatever the umask, also from a 0666 input', async () => {
    const old = process.umask(0);
    try {
      await json('vm', 'create', '--class', 'standalone', 'solo');
      const input = join(home, 'open.img');
      writeFileSync(input, Buffer.alloc(1 << 20, 1), { mode: 0o666 });
      chmodSync(input, 0o666);
      await json('volume', 'import', 'solo:private', '-i', input);
      const vmDir = join(home, 'pools', 'default', 'appvms', 'solo');
      const mode = (p: string) => statSync(p).mode & 0o777;
      expect(mode(vmDir)).toBe(0o700);
      expect(mode(join(home, 'pools', 'default'))).toBe(0o700);
      for (const f of readdirSync(vmDir)) expect(mode(join(vmDir, f)), f).toBe(0o600);
      expect(readdirSync(vmDir).some((f) => f.startsWith('private.img.'))).toBe(true);
    } finally {
      process.umask(old);
    }
  });

  it('exports a running VM resized online at its committed size, with its committed data', async () => {
    await json('vm', 'create', '--class', 'standalone', 'solo');
    await json('vm', 'start', 'solo');
    await json('volume', 'resize', 'solo:private', '3G');
    const file = join(home, 'committed.img');
    await json('volume', 'export', 'solo:private', '-o', file);
    expect(statSync(file).size).toBe(2 * 2 ** 30);
    await json('vm', 'stop', 'solo');
    expect((await json('volume', 'info', 'solo:private')).size).toBe(3 * 2 ** 30);
  });

  it('treats names that are JavaScript object members as names', async () => {
    for (const name of ['constructor', 'toString', 'valueOf', 'hasOwnProperty']) {
      await json('vm', 'create', '--class', 'standalone', name);
      expect((await json('volume', 'info', `${name}:private`)).vid).toBe(`appvms/${name}/private`);
      await json('vm', 'start', name);
      await json('vm', 'stop', name);
    }
    expect((await json('vm', 'ls')).map((v: { name: string }) => v.name).sort()).toEqual(['constructor', 'hasOwnProperty', 'toString', 'valueOf']);
    await json('pool', 'add', 'toString', 'file-reflink', '-o', `dir_path=${join(home, 'p2')}`, '-o', 'setup_check=False');
    const odd = await qvol('pool', 'add', 'p3', 'file-reflink', '-o', `dir_path=${join(home, 'p3')}`, '-o', 'constructor=1');
    expect(odd.code).toBe(2);
    expect(odd.err).toContain('Unexpected driver options found for file-reflink: constructor');
    expect((await qvol('vm', 'start', 'isPrototypeOf')).err).toContain('Unknown VM isPrototypeOf');
    await json('vm', 'rm', 'constructor');
    expect(Object.hasOwn(JSON.parse(stateText()).vms, 'constructor')).toBe(false);
  });

  it('refuses a pool directory that is /, overlaps another pool, or that other users can change', async () => {
    await json('vm', 'create', '--class', 'standalone', 'solo'); // makes the pool "default"
    const before = stateText();
    const defaultDir = join(home, 'pools', 'default');
    const open = join(home, 'open');
    mkdirSync(join(open, 'pool'), { recursive: true });
    chmodSync(open, 0o777);
    const cases: Array<[string, string]> = [
      ['/', "cannot live in '/'"],
      [join(defaultDir, 'inner'), `overlaps '${defaultDir}' of pool default`],
      [home, `overlaps '${defaultDir}' of pool default`],
      ...(process.getuid?.() === 0 ? [[join(open, 'pool'), 'other users can write to it'] as [string, string]] : []),
    ];
    for (const [dir, message] of cases) {
      const r = await qvol('pool', 'add', 'p2', 'file-reflink', '-o', `dir_path=${dir}`, '-o', 'setup_check=False');
      expect(r.code, dir).toBe(1);
      expect(r.err).toContain(message);
    }
    const bad = await qvol('pool', 'add', 'p2', 'file-reflink', '-o', `dir_path=${join(home, 'p2')}`, '-o', 'revisions_to_keep=lots');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("Invalid revisions_to_keep 'lots'");
    expect(stateText()).toBe(before);
  });

  describe('refuses, changing nothing', () => {
    beforeEach(async () => {
      await json('vm', 'create', '--class', 'template', 'debian');
    });

    it.each([
      [['vm', 'create', '--class', 'app', 'a/b', '--template', 'debian'], 2, "Invalid VM name 'a/b'"],
      [['vm', 'create', '--class', 'app', '..', '--template', 'debian'], 2, "Invalid VM name '..'"],
      [['vm', 'create', '--class', 'app', 'x'.repeat(65), '--template', 'debian'], 2, 'at most 64'],
      [['vm', 'create', '--class', 'app', '--template', 'debian', '--', '-lead'], 2, "Invalid VM name '-lead'"],
      [['vm', 'create', '--class', 'app', 'w'], 2, 'needs a template'],
      [['vm', 'create', '--class', 'template', 'debian'], 1, 'already exists'],
      [['vm', 'create', '--class', 'app', 'w', '--template', 'nope'], 1, 'Unknown VM nope'],
      [['vm', 'create', '--class', 'template', 't2', '-P', 'nope'], 1, 'Unknown storage pool nope'],
      [['vm', 'start', 'nope'], 1, 'Unknown VM nope'],
      [['vm', 'start', '../../../tmp/x'], 2, "Invalid VM name '../../../tmp/x'"],
      [['vm', 'clone', '../x', 'y'], 2, "Invalid VM name '../x'"],
      [['volume', 'resize', '../x:private', '1G'], 2, "Invalid VM name '../x'"],
      [['volume', 'resize', 'debian:private', '-1'], 2, "Invalid size '-1'"],
      [['volume', 'resize', 'debian:private', '1000'], 2, 'whole 512-byte sectors'],
      [['volume', 'resize', 'debian:nope', '1G'], 1, 'has no volume nope'],
      [['volume', 'info', 'debian'], 2, 'VM:VOLUME'],
      [['volume', 'config', 'debian:private', 'revisions_to_keep', '-2'], 2, 'Invalid value for revisions_to_keep'],
      [['volume', 'config', 'debian:private', 'colour', 'blue'], 2, "Unknown volume setting 'colour'"],
      [['volume', 'revert', 'debian:private', '42'], 1, "no revision '42'"],
      [['pool', 'add', 'p1', 'nodriver', '-o', 'dir_path=/tmp/x'], 1, 'No driver nodriver'],
      [['pool', 'add', 'p1', 'file-reflink'], 2, 'missing required driver options: dir_path'],
      [['pool', 'add', 'p1', 'file-reflink', '-o', 'dirpath=/tmp'], 2, 'Unexpected driver options'],
      [['pool', 'rm', 'default'], 1, 'in use by VM debian'],
      [['pool', 'info', 'nope'], 1, 'Unknown storage pool nope'],
      [['volume', 'export', 'debian:private', '-o', '/nonexistent/x.img', '--revision', '1'], 2, 'needs its driver\'s own format'],
      [['volume', 'export', 'debian:private', '-f', 'sparse', '-o', '/nonexistent/x.img', '--since', '1'], 2, 'needs its driver\'s own format'],
      [['volume', 'export', 'debian:private', '-f', 'zfs', '-o', '/nonexistent/x.img'], 2, 'does not move the zfs format: it takes raw, sparse'],
      [['volume', 'import', 'debian:private', '-f', 'zfs', '-i', '/nonexistent/x.img'], 2, 'does not move the zfs format'],
    ])('%j', async (args, code, message) => {
      const before = stateText();
      const r = await qvol(...(args as string[]));
      expect(r.code).toBe(code);
      expect(r.err).toContain(message);
      expect(stateText()).toBe(before);
    });

    it('a revert, removal or rw change of a running VM', async () => {
      await json('vm', 'start', 'debian');
      const before = stateText();
      for (const args of [['volume', 'revert', 'debian:root'], ['vm', 'rm', 'debian'], ['volume', 'config', 'debian:root', 'rw', 'false'],
        ['volume', 'config', 'debian:root', 'revisions_to_keep', '-1'], ['vm', 'start', 'debian']]) {
        const r = await qvol(...args);
        expect(r.code, args.join(' ')).toBe(1);
        expect(r.err).toMatch(/running/);
      }
      expect(stateText()).toBe(before);
      // a change that does not toggle -1 is fine while running (A9)
      await json('volume', 'config', 'debian:root', 'revisions_to_keep', '2');
    });

    it('a start that fails on one volume: the volumes started are stopped again', async () => {
      await json('vm', 'create', '--class', 'app', '--template', 'debian', 'work');
      // The volatile image cannot be made: a directory (not empty) stands in its place.
      const blocker = join(home, 'pools', 'default', 'appvms', 'work', 'volatile-dirty.img');
      mkdirSync(join(blocker, 'x'), { recursive: true });
      const before = stateText();
      const r = await qvol('vm', 'start', 'work');
      expect(r.code).toBe(1);
      const vms = await json('vm', 'ls');
      expect(vms.find((v: { name: string }) => v.name === 'work').running).toBe(false);
      expect((await json('volume', 'info', 'work:private')).path).toMatch(/private-dirty\.img$/);
      expect(existsSync(join(home, 'pools', 'default', 'appvms', 'work', 'private-dirty.img'))).toBe(false);
      expect(existsSync(join(home, 'pools', 'default', 'appvms', 'work', 'root-dirty.img'))).toBe(false);
      const run = join(home, 'run');
      expect((existsSync(run) ? readdirSync(run) : []).filter((m) => m.includes('work'))).toEqual([]);
      expect(JSON.parse(stateText()).vms.work).toEqual(JSON.parse(before).vms.work);
      rmSync(blocker, { recursive: true });
      await json('vm', 'start', 'work');
      await json('vm', 'stop', 'work');
    });

    it('removing a template that VMs use', async () => {
      await json('vm', 'create', '--class', 'app', '--template', 'debian', 'work');
      const r = await qvol('vm', 'rm', 'debian');
      expect(r.err).toContain('is the template of work');
    });
  });

  it('never loses an update when two qvol processes run at once', async () => {
    await json('vm', 'create', '--class', 'template', 'debian');
    const run = promisify(execFile);
    const env = { ...process.env, QVOL_HOME: home };
    const results = await Promise.allSettled([
      run(process.execPath, [MAIN, 'vm', 'create', '--class', 'app', '--template', 'debian', 'a'], { env }),
      run(process.execPath, [MAIN, 'vm', 'create', '--class', 'app', '--template', 'debian', 'b'], { env }),
      run(process.execPath, [MAIN, 'vm', 'start', 'debian'], { env }),
      run(process.execPath, [MAIN, 'vm', 'start', 'debian'], { env }),
    ]);
    expect(results[0]!.status).toBe('fulfilled');
    expect(results[1]!.status).toBe('fulfilled');
    const starts = results.slice(2);
    expect(starts.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const loser = starts.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(String(loser.reason.stderr)).toContain('VM debian is already running');
    const state = JSON.parse(stateText());
    expect(Object.keys(state.vms).sort()).toEqual(['a', 'b', 'debian']);
  });
});

describe('disposables and snapshots-disabled sources', () => {
  it('a disposable snapshots its template\'s private and the template chain\'s root', async () => {
    await json('vm', 'create', '--class', 'template', 'debian');
    await json('vm', 'create', '--class', 'app', '--template', 'debian', 'dvm-tmpl');
    await json('vm', 'create', '--class', 'disp', '--template', 'dvm-tmpl', 'disp1');
    expect((await json('volume', 'info', 'disp1:root')).source).toBe('vm-templates/debian/root');
    expect((await json('volume', 'info', 'disp1:private')).source).toBe('appvms/dvm-tmpl/private');
    expect((await json('volume', 'info', 'disp1:volatile')).size).toBe(12 * 2 ** 30);
    const r = await qvol('vm', 'create', '--class', 'disp', '--template', 'debian', 'disp2');
    expect(r.err).toContain('a disp VM needs an app VM as template');
  });

  it('refuses to start a VM whose snapshot source runs without snapshots', async () => {
    await json('vm', 'create', '--class', 'template', 'debian');
    await json('vm', 'create', '--class', 'app', '--template', 'debian', 'work');
    await json('volume', 'config', 'debian:root', 'revisions_to_keep', '-1');
    await json('vm', 'start', 'debian');
    const r = await qvol('vm', 'start', 'work');
    expect(r.code).toBe(1);
    expect(r.err).toContain('Volume vm-templates/debian/root is running');
    await json('vm', 'stop', 'debian');
    await json('vm', 'start', 'work');
  });
});
