/**
 * A VM's volatile volume in a pool of its own (issue 14): on a tmpfs, as a user would put
 * it, chosen per volume at create time, inherited by a disposable from its template, and
 * made again empty when a reboot emptied the tmpfs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runQvol } from '../helpers/cli.js';
import { scratchDir } from '../helpers/scratch.js';
import { ioctlRungAvailable } from '../../src/io/dm-crypt.js';

const qvol = (...args: string[]) => runQvol(args);

async function json<T>(...args: string[]): Promise<T> {
  const r = await qvol(...args, '--json');
  expect(r.code, r.err + r.out).toBe(0);
  return JSON.parse(r.out) as T;
}

const mounted: string[] = [];
function tmpfs(at: string): void {
  mkdirSync(at, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', 'qvol-test', at]);
  mounted.push(at);
}
function unmount(at: string): void {
  execFileSync('umount', [at]);
  mounted.splice(mounted.indexOf(at), 1);
}

afterEach(() => {
  for (const at of mounted.splice(0)) execFileSync('umount', ['-l', at]);
});

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('volatile volumes in a pool of their own', () => {
  it('puts a VM\'s volatile on a tmpfs pool, a disposable\'s too, and starts it again after the tmpfs was emptied', async () => {
    process.env.QVOL_HOME = scratchDir('vp-home');
    const fast = join(scratchDir('vp-mnt'), 'fast');
    tmpfs(fast);
    await json('pool', 'add', 'fast', 'file-reflink', '-o', `dir_path=${join(fast, 'pool')}`, '-o', 'setup_check=False');
    await json('vm', 'create', '--class', 'template', 't');
    await json('vm', 'create', '--class', 'app', '--template', 't', '--volatile-pool', 'fast', 'w');
    const info = async (ref: string) => json<{ pool: string; path: string }>('volume', 'info', ref);
    expect((await info('w:volatile')).pool).toBe('fast');
    expect((await info('w:private')).pool).toBe('default');

    // A disposable's volatile follows its template's pool; a pool given wins.
    await json('vm', 'create', '--class', 'disp', '--template', 'w', 'd1');
    expect((await info('d1:volatile')).pool).toBe('fast');
    await json('vm', 'create', '--class', 'disp', '--template', 'w', '-P', 'default', 'd2');
    expect((await info('d2:volatile')).pool).toBe('default');

    // Refused, naming the way: a snapshot volume has its source's pool; no such volume; no such pool.
    expect((await qvol('vm', 'create', '--class', 'app', '--template', 't', '-P', 'root=fast', 'x')).err).toMatch(/root volume of an app VM is a snapshot of its template's.*give a pool for private or volatile/);
    expect((await qvol('vm', 'create', '--class', 'app', '--template', 't', '-P', 'swap=fast', 'x')).err).toMatch(/has no volume swap/);
    expect((await qvol('vm', 'create', '--class', 'app', '--template', 't', '--volatile-pool', 'nope', 'x')).code).not.toBe(0);
    expect((await json<Array<{ name: string }>>('vm', 'ls')).map((v) => v.name).sort()).toEqual(['d1', 'd2', 't', 'w']);

    const devices = await json<Array<{ volume: string; path: string }>>('vm', 'start', 'w');
    expect(devices.find((d) => d.volume === 'volatile')!.path.startsWith(fast)).toBe(true);
    await json('vm', 'stop', 'w');

    // A reboot empties the tmpfs: the next start makes the pool's directories again.
    unmount(fast);
    tmpfs(fast);
    expect(existsSync(join(fast, 'pool'))).toBe(false);
    const again = await json<Array<{ volume: string; path: string }>>('vm', 'start', 'w');
    expect(existsSync(again.find((d) => d.volume === 'volatile')!.path)).toBe(true);
    await json('vm', 'stop', 'w');
    for (const vm of ['d1', 'd2', 'w']) expect((await qvol('vm', 'remove', vm)).code).toBe(0);
  });

  it('pool set changes ephemeral_volatile and revisions_to_keep, stored, with the Qubes checks', async () => {
    process.env.QVOL_HOME = scratchDir('vp-set');
    await json('vm', 'create', '--class', 'template', 't');
    await json('vm', 'create', '--class', 'app', '--template', 't', 'w');
    const ephemeral = async (ref: string) => (await json<{ ephemeral: boolean }>('volume', 'info', ref)).ephemeral;
    expect(await ephemeral('w:volatile')).toBe(false);
    expect(await json('pool', 'set', 'default', 'ephemeral_volatile', 'true')).toMatchObject({ ephemeral_volatile: true });
    // Read live: the volatile follows, the others never can.
    expect(await ephemeral('w:volatile')).toBe(true);
    expect(await ephemeral('w:private')).toBe(false);
    expect(await ephemeral('w:root')).toBe(false);
    expect((await json<{ ephemeral_volatile: boolean }>('pool', 'info', 'default')).ephemeral_volatile).toBe(true);
    // A disposable follows its template's explicit value, else its own pool's.
    await json('vm', 'create', '--class', 'disp', '--template', 'w', 'd1');
    expect(await ephemeral('d1:volatile')).toBe(true);
    await json('volume', 'config', 'w:volatile', 'ephemeral', 'false');
    expect(await ephemeral('w:volatile')).toBe(false);
    await json('vm', 'create', '--class', 'disp', '--template', 'w', 'd2');
    expect(await ephemeral('d2:volatile')).toBe(false);
    expect(await ephemeral('d1:volatile')).toBe(true);
    expect(await json('pool', 'set', 'default', 'revisions_to_keep', '3')).toMatchObject({ revisions_to_keep: 3 });

    expect((await qvol('pool', 'set', 'default', 'ephemeral_volatile', 'abc')).err).toMatch(/Invalid boolean value 'abc'/);
    expect((await qvol('pool', 'set', 'default', 'revisions_to_keep', '-2')).err).toMatch(/Invalid revisions_to_keep '-2'/);
    expect((await qvol('pool', 'set', 'default', 'dir_path', '/x')).err).toMatch(/Unknown pool setting 'dir_path'/);
    expect((await qvol('pool', 'set', 'nope', 'revisions_to_keep', '1')).code).not.toBe(0);
    expect(await json('pool', 'info', 'default')).toMatchObject({ revisions_to_keep: 3, ephemeral_volatile: true });
  });

  it.skipIf(ioctlRungAvailable().ok)('without device-mapper, an ephemeral start fails saying why and leaves the VM halted', async () => {
    process.env.QVOL_HOME = scratchDir('vp-nodm');
    await json('pool', 'add', 'eph', 'file-reflink', '-o', `dir_path=${scratchDir('vp-nodm-pool')}`, '-o', 'setup_check=False', '-o', 'ephemeral_volatile=True');
    await json('vm', 'create', '--class', 'template', 't');
    await json('vm', 'create', '--class', 'app', '--template', 't', 'w', '--volatile-pool', 'eph');
    const failed = await qvol('vm', 'start', 'w');
    expect(failed.code).not.toBe(0);
    expect(failed.err).toMatch(/Cannot open ephemeral device \/dev\/mapper\/vm-volatile-w-crypt@volatile: the kernel refuses the device-mapper ioctls/);
    const vms = await json<Array<{ name: string; running: boolean }>>('vm', 'ls');
    expect(vms.find((v) => v.name === 'w')!.running).toBe(false);
  });
});
