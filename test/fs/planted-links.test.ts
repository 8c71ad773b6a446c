/**
 * Paths qvol must not follow: a symbolic link planted where a pool keeps its images (the
 * dirty image, the committed one, the VM's directory) never makes qvol read, write,
 * truncate, rename, export or hand to a VM what it points at. Each refusal names the path,
 * and the file the link points at is as it was.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { runQvol } from '../helpers/cli.js';
import { scratchDir } from '../helpers/scratch.js';

let home: string;
let victim: string;
const VICTIM = Buffer.from('VICTIM: not qvol\'s to touch\n');

const run = runQvol;
const qvol = (...args: string[]) => run(args);

/** A verb with --json: its exit status and its stdout, which must be one JSON document. */
async function qvolJson(...args: string[]): Promise<{ code: number; json: { committed: string[]; failed: unknown[] } }> {
  const r = await run([...args, '--json']);
  return { code: r.code, json: JSON.parse(r.out) };
}

async function ok(...args: string[]): Promise<void> {
  const r = await qvol(...args);
  expect(r.code, r.err).toBe(0);
}

const vmDir = (cls: 'appvms' | 'vm-templates', vm: string) => join(home, 'pools', 'default', cls, vm);

function expectVictimIntact(): void {
  expect(readFileSync(victim).equals(VICTIM)).toBe(true);
  expect(statSync(victim).mode & 0o777).toBe(0o640);
}

function plant(path: string): void {
  rmSync(path, { force: true });
  symlinkSync(victim, path);
}

beforeEach(async () => {
  home = scratchDir('links');
  process.env.QVOL_HOME = home;
  victim = join(scratchDir('victim'), 'victim');
  writeFileSync(victim, VICTIM, { mode: 0o640 });
  await ok('vm', 'create', '--class', 'template', 'debian');
  await ok('vm', 'create', '--class', 'app', '--template', 'debian', 'work');
});

describe('planted symbolic links', () => {
  it('at a snapshot\'s dirty image: vm start refuses and writes nothing through it', async () => {
    plant(join(vmDir('appvms', 'work'), 'root-dirty.img'));
    const r = await qvol('vm', 'start', 'work');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`Refusing to use '${join(vmDir('appvms', 'work'), 'root-dirty.img')}': it is a symbolic link`);
    expectVictimIntact();
  });

  it('at an origin\'s dirty image: start, resize and stop refuse; nothing is truncated or committed', async () => {
    const dirty = join(vmDir('appvms', 'work'), 'private-dirty.img');
    plant(dirty);
    expect((await qvol('vm', 'start', 'work')).code).toBe(1);
    rmSync(dirty);
    await ok('vm', 'start', 'work');
    plant(dirty); // swapped under a running VM
    const resize = await qvol('volume', 'resize', 'work:private', '4M');
    expect(resize.code).toBe(1);
    expect(resize.err).toContain('symbolic link');
    const stop = await qvol('vm', 'stop', 'work');
    expect(stop.code).toBe(1);
    expect(stop.err).toContain('VM work did not stop whole: private: Refusing to use');
    expect(stop.err).toContain('root, volatile stopped');
    expectVictimIntact();
    expect(statSync(join(vmDir('appvms', 'work'), 'private.img')).isFile()).toBe(true);
  });

  it('at the committed image: export, import and start refuse', async () => {
    const clean = join(vmDir('vm-templates', 'debian'), 'private.img');
    plant(clean);
    const out = join(home, 'out.img');
    const exp = await qvol('volume', 'export', 'debian:private', '-o', out);
    expect(exp.code).toBe(1);
    expect(exp.err).toContain('symbolic link');
    expect(() => statSync(out)).toThrow();
    expect((await qvol('vm', 'start', 'debian')).code).toBe(1);
    expectVictimIntact();
  });

  it('as the VM\'s directory', async () => {
    const dir = vmDir('appvms', 'work');
    const elsewhere = join(scratchDir('elsewhere'), 'work');
    mkdirSync(elsewhere);
    renameSync(dir, join(home, 'moved'));
    symlinkSync(elsewhere, dir);
    const r = await qvol('vm', 'start', 'work');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`Refusing to use '${dir}': it is a symbolic link`);
    unlinkSync(dir);
  });

  it('recover goes past a VM that fails, commits the others and reports every failure', async () => {
    await ok('vm', 'create', '--class', 'standalone', 'solo');
    for (const vm of ['work', 'solo']) await ok('vm', 'start', vm);
    // The host loses power: markers of another boot, the dirty images stay.
    for (const f of readdirSync(join(home, 'run'))) writeFileSync(join(home, 'run', f), 'another-boot\n');
    plant(join(vmDir('appvms', 'work'), 'private-dirty.img'));
    const r = await qvolJson('recover');
    expect(r.code).toBe(1);
    expect(r.json.committed).toEqual(['solo']);
    expect(r.json.failed).toEqual([{ vm: 'work', code: 'VM_ERROR', path: 'work', message: expect.stringContaining('VM work did not stop whole: private: Refusing to use') }]);
    expectVictimIntact();
  });

  it('a link removed again leaves a VM that works', async () => {
    const dirty = join(vmDir('appvms', 'work'), 'volatile-dirty.img');
    plant(dirty);
    expect((await qvol('vm', 'start', 'work')).code).toBe(1);
    rmSync(dirty);
    await ok('vm', 'start', 'work');
    await ok('vm', 'stop', 'work');
    expectVictimIntact();
  });
});
