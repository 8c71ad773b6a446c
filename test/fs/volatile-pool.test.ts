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
});
