/**
 * The ZFS drivers on real OpenZFS, in the lab VM: the driver contract suite against
 * zfs_zvol and zfs_encrypted, then what is ZFS's own: the layout and properties, nothing
 * left behind, promote-on-delete keeping the encryption root, a wrong passphrase, the key
 * unload timer against a zvol held open, and zpool creation from block devices.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/drivers/registry.js';
import { ZfsEncryptedPool } from '../../src/drivers/zfs/encrypted-pool.js';
import { runningTimer } from '../../src/drivers/zfs/key-unload.js';
import { ZfsPool } from '../../src/drivers/zfs/pool.js';
import { waitForPath } from '../../src/io/wait.js';
import type { Pool, VmRef } from '../../src/model/pool.js';
import type { Volume } from '../../src/model/volume.js';
import { skipReason } from '../helpers/gates.js';
import { commit, exported, readAt, volumeContract, writeAt } from '../helpers/volume-contract.js';
import { datasetsUnder, inLab, makeZpool, notInLab, sh, zfsGet, type LabZpool } from './zpool.js';

const MiB = 2 ** 20;
const tmpl: VmRef = { name: 'tmpl', dirPathPrefix: 'vm-templates' };
const app: VmRef = { name: 'work', dirPathPrefix: 'appvms' };
const PASS = 'printf %s correct-horse';
const HELPERS = /\/\.(tmp|trash|importing|exported)$/;

let zp: LabZpool;
let n = 0;
beforeAll(() => { if (inLab) zp = makeZpool('qvolz'); });
afterAll(() => zp?.destroy());

/** Datasets of the pool's volumes still there: anything but the container's own helpers. */
async function leftovers(pool: Pool): Promise<string[]> {
  const p = pool as ZfsPool;
  return datasetsUnder(p.container).filter((ds) => !HELPERS.test(ds) && ds !== p.vmRoot);
}

const drivers = {
  zfs_zvol: async (revisionsToKeep: number, extra = {}) => {
    const pool = new ZfsPool({ name: `z${n}`, container: `qvolz/z${n++}`, revisions_to_keep: revisionsToKeep, ...extra });
    await pool.setup();
    return pool;
  },
  zfs_encrypted: async (revisionsToKeep: number, extra = {}) => {
    const pool = new ZfsEncryptedPool({ name: `e${n++}`, zpool_name: 'qvolz', passphrase_command: PASS, unload_timeout: 0, revisions_to_keep: revisionsToKeep, ...extra });
    await pool.setup();
    return pool;
  },
};

describe.skipIf(!inLab).each(Object.keys(drivers) as Array<keyof typeof drivers>)(skipReason(notInLab, 'volume contract: %s'), (driver) => {
  volumeContract({
    makePool: ({ revisionsToKeep }) => drivers[driver](revisionsToKeep),
    reopen: (pool) => createPool(pool.config),
    leftovers,
  });
});

describe.skipIf(!inLab)(skipReason(notInLab, 'zfs_zvol specifics'), () => {
  it('lays volumes out as sparse zvols with volmode=dev, marked as ours, with revision and clean snapshots', async () => {
    const pool = await drivers.zfs_zvol(1);
    expect(pool.config).toMatchObject({ driver: 'zfs_zvol', container: pool.container, revisions_to_keep: 1 });
    const v = pool.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: 3 * MiB + 512 });
    expect(v.vid).toBe(`${pool.container}/vm/tmpl/root`);
    expect(v.path).toBe(`/dev/zvol/${v.vid}`);
    await v.create();
    expect(v.size).toBe(3 * MiB + 16384); // rounded up to the 16 KiB block size
    expect(['volmode', 'volblocksize', 'refreservation', 'org.qvol:pool'].map((p) => zfsGet(v.vid, p))).toEqual(['dev', '16384', '0', pool.name]);
    await commit(v, 'x');
    const snaps = datasetsUnder(v.vid).map((s) => s.split('@')[1]);
    expect(snaps).toEqual([expect.stringMatching(/^qubes:before-start:\d+\.\d{6}$/), expect.stringMatching(/^qubes-clean-[0-9a-f]{8}$/)]);
    expect(zfsGet(v.vid, 'org.qvol:dirty')).toBe('off');
    await v.start();
    expect(zfsGet(v.vid, 'org.qvol:dirty')).toBe('on');
    await v.stop();
    await v.remove();
    // udev removes the link directory after the zvol is gone, in its own time under load.
    await waitForPath(`/dev/zvol/${pool.container}/vm/tmpl`, { gone: true, timeoutMs: 60_000 });
    expect(existsSync(`/dev/zvol/${pool.container}/vm/tmpl`)).toBe(false);
    expect(await leftovers(pool)).toEqual([]);
  });

  it('keeps a running snapshot alive when its source is replaced (promote-on-delete)', async () => {
    const pool = await drivers.zfs_zvol(1);
    const { t, root } = await replaceSourceOfRunningSnapshot(pool);
    expect(readAt(root.path!, 8)).toBe('base');
    expect(await exported(t)).toBe('new');
    await root.stop();
    await t.remove();
    await root.remove();
    expect(await leftovers(pool)).toEqual([]);
  });

  it('creates its zpool from block_devices, refusing one that holds a filesystem unless forced', async () => {
    sh('modprobe', 'loop');
    const backing = join(zp.dir, 'disk.img');
    writeFileSync(backing, '');
    truncateSync(backing, 128 * MiB);
    const dev = sh('losetup', '--find', '--show', backing);
    try {
      sh('mkfs.ext4', '-q', dev);
      const options = { name: 'bd', driver: 'zfs_zvol', zpool_name: 'qvolbd', block_devices: dev };
      await expect((await createPool(options)).setup()).rejects.toThrow(`Block device ${dev} holds a ext4 filesystem: pass force=True`);
      expect(sh('zpool', 'list', '-H', '-o', 'name')).not.toContain('qvolbd');
      const pool = await createPool({ ...options, force: 'True' });
      await pool.setup();
      expect(zfsGet('qvolbd', 'org.qvol:pool')).toBe('bd');
      await expect((await createPool({ ...options, name: 'again' })).setup()).rejects.toThrow(/zpool qvolbd already exists/);
      await pool.destroy();
      expect(sh('zpool', 'list', '-H', '-o', 'name')).not.toContain('qvolbd');
    } finally {
      sh('losetup', '-d', dev);
    }
  });
});

describe.skipIf(!inLab)(skipReason(notInLab, 'zfs_encrypted specifics'), () => {
  const keystatus = (pool: ZfsEncryptedPool) => zfsGet(pool.container, 'keystatus');

  it('makes its container an aes-256-gcm encryption root under <zpool>/encryption', async () => {
    const pool = await drivers.zfs_encrypted(1);
    expect(pool.container).toBe(`qvolz/encryption/${pool.name}`);
    expect(['encryption', 'keyformat', 'encryptionroot'].map((p) => zfsGet(pool.container, p))).toEqual(['aes-256-gcm', 'passphrase', pool.container]);
    expect(pool.config).toEqual({ name: pool.name, driver: 'zfs_encrypted', zpool_name: 'qvolz', unload_timeout: 0, passphrase_command: PASS, revisions_to_keep: 1, ephemeral_volatile: false });
    const v = pool.initVolume(tmpl, { name: 'private', saveOnStop: true, rw: true, size: MiB });
    expect(v.vid).toBe(`${pool.container}/tmpl/private`);
  });

  it('refuses a wrong passphrase and changes nothing', async () => {
    const pool = await drivers.zfs_encrypted(1);
    const v = pool.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: MiB });
    await v.create();
    await commit(v, 'secret');
    sh('zfs', 'unload-key', pool.container);
    const wrong = await createPool({ ...pool.config, passphrase_command: 'printf %s wrong-horse' });
    const again = wrong.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: MiB });
    await expect(again.start()).rejects.toMatchObject({ code: 'WRONG_PASSPHRASE', message: expect.stringMatching(/Wrong passphrase for pool/) });
    expect(keystatus(pool)).toBe('unavailable');
    expect(zfsGet(v.vid, 'org.qvol:dirty')).toBe('off');
    const right = (await createPool(pool.config)).initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: MiB });
    await right.start();
    expect(readAt(right.path!, 8)).toBe('secret');
    await right.stop();
  });

  it('never loses the encryption root when promote-on-delete moves snapshots (OpenZFS #9267)', async () => {
    const pool = await drivers.zfs_encrypted(1);
    const { t, root } = await replaceSourceOfRunningSnapshot(pool);
    for (const ds of datasetsUnder(pool.container)) expect([ds, zfsGet(ds, 'encryptionroot')]).toEqual([ds, pool.container]);
    await root.stop();
    sh('zfs', 'unload-key', pool.container);
    sh('sh', '-c', `printf %s correct-horse | zfs load-key ${pool.container}`);
    expect(await exported(t)).toBe('new');
  });

  it('unloads the key after the timeout, not while a zvol is held open, and not after a start', async () => {
    const pool = await drivers.zfs_encrypted(1, { unload_timeout: 3 });
    const v = pool.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: MiB });
    await v.create();
    await v.start();
    expect(await runningTimer(pool.container)).toBeUndefined(); // a start cancels the timer
    // A process that is not ours keeps the zvol open (a VM's disk backend would).
    const holder = spawn('sh', ['-c', `exec 3<${v.path}; echo held; exec sleep 600`], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((resolve) => holder.stdout!.once('data', resolve));
    await v.stop();
    expect(await runningTimer(pool.container)).toBeGreaterThan(0);
    await sleep(12_000); // several timeouts, with the timer's own start-up under emulation
    expect(keystatus(pool)).toBe('available');
    holder.kill('SIGKILL');
    await waitFor(() => keystatus(pool) === 'unavailable', 90_000);
    // The timer removes its pid file just after `zfs unload-key` returns: wait for it to go.
    await waitForAsync(async () => (await runningTimer(pool.container)) === undefined, 30_000);
    // The next start asks for the key again and finds the data.
    const again = (await createPool(pool.config)).initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: MiB });
    await again.start();
    expect(keystatus(pool)).toBe('available');
    expect(await runningTimer(pool.container)).toBeUndefined(); // no timer while it runs
    await again.stop();
    await waitFor(() => keystatus(pool) === 'unavailable', 90_000);
  });
});

/**
 * A template volume holding 'base', an app VM's root started from it, then the template's
 * data replaced by an import ('new'): the old template dataset goes, and the running root,
 * a clone of one of its snapshots, is promoted so that it lives on.
 */
async function replaceSourceOfRunningSnapshot(pool: Pool): Promise<{ t: Volume; root: Volume }> {
  const t = pool.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: MiB });
  await t.create();
  await commit(t, 'base');
  const root = pool.initVolume(app, { name: 'root', snapOnStart: true, rw: true, source: t, size: MiB });
  await root.create();
  await root.start();
  const target = await t.importData(MiB);
  writeAt(target, 'new');
  await t.importDataEnd(true);
  return { t, root };
}

async function waitForAsync(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(250);
  }
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(500);
  }
}
