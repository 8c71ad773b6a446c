/**
 * The lvm_thin driver on real LVM, in the lab VM: a thin pool over a loop device, the
 * driver contract suite that file-reflink and the ZFS drivers pass, then what is LVM's and
 * Qubes' own: the LV names, an interrupted commit (Qubes' test_009), the revision filter
 * (#4680), a pool made from block devices and undone, and clones to and from the other
 * drivers with equal data and holes kept.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ThinPool } from '../../src/drivers/lvm-thin/pool.js';
import { createPool } from '../../src/drivers/registry.js';
import type { Pool, VmRef } from '../../src/model/pool.js';
import { skipReason } from '../helpers/gates.js';
import { commit, exported, readAt, volumeContract, writeAt } from '../helpers/volume-contract.js';
import { inLab, notInLab, sh } from './zpool.js';

const MiB = 2 ** 20;
const VG = 'qvollvm';
const THIN = 'pool';
const tmpl: VmRef = { name: 'tmpl', dirPathPrefix: 'vm-templates' };

/** A loop device over a sparse file of `sizeMiB`, and how to let it go. */
function loopDevice(dir: string, name: string, sizeMiB: number): string {
  const file = join(dir, name);
  writeFileSync(file, '');
  truncateSync(file, sizeMiB * MiB);
  return sh('losetup', '--find', '--show', file);
}

/** The LVs of `vg` but its thin pool (and the pool's hidden metadata). */
function lvsOf(vg: string): string[] {
  return sh('lvs', '--noheadings', '-o', 'lv_name', vg).split('\n').map((l) => l.trim()).filter((n) => n && n !== THIN && !n.startsWith('['));
}

let dir: string;
let loop: string;
beforeAll(() => {
  if (!inLab) return;
  dir = mkdtempSync(join(tmpdir(), 'qvol-lvm-'));
  loop = loopDevice(dir, 'pv.img', 1024);
  // 1 MiB extents: the contract's volumes are 1 MiB, and LVM sizes are whole extents.
  sh('pvcreate', '-q', loop);
  sh('vgcreate', '-q', '-s', '1m', VG, loop);
  sh('lvcreate', '-q', '--type', 'thin-pool', '-L', '768m', '-n', THIN, VG);
});
afterAll(() => {
  if (!inLab) return;
  try { sh('vgremove', '-q', '-f', VG); } catch { /* best effort */ }
  try { sh('losetup', '-d', loop); } catch { /* likewise */ }
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/** A new pool object on the thin pool, with no volume of an earlier case left in it. */
async function freshPool(revisionsToKeep: number): Promise<ThinPool> {
  for (const lv of lvsOf(VG)) sh('lvremove', '-q', '-f', `${VG}/${lv}`);
  const pool = new ThinPool({ name: `lvm${n++}`, volume_group: VG, thin_pool: THIN, revisions_to_keep: revisionsToKeep });
  await pool.setup();
  return pool;
}

describe.skipIf(!inLab)(skipReason(notInLab, 'volume contract: lvm_thin'), () => {
  volumeContract({
    makePool: ({ revisionsToKeep }) => freshPool(revisionsToKeep),
    reopen: (pool) => createPool(pool.config),
    leftovers: async (_pool: Pool) => lvsOf(VG),
  });
});

describe.skipIf(!inLab)(skipReason(notInLab, 'lvm_thin specifics'), () => {
  it('names the LVs as Qubes does and keeps them in the thin pool', async () => {
    const pool = await freshPool(2);
    const v = pool.initVolume(tmpl, { name: 'private', saveOnStop: true, rw: true, size: 4 * MiB });
    await v.create();
    await commit(v, 'one');
    await v.start();
    expect(lvsOf(VG).sort()).toEqual(['vm-tmpl-private', expect.stringMatching(/^vm-tmpl-private-\d+-back$/), 'vm-tmpl-private-snap']);
    expect(v.path).toBe(`/dev/mapper/${VG}-vm--tmpl--private--snap`);
    await v.stop();
    expect(sh('lvs', '--noheadings', '-o', 'pool_lv', `${VG}/vm-tmpl-private`).trim()).toBe(THIN);
    expect((await pool.usageDetails()).data_size).toBe(768 * MiB);
  });

  it('finishes an interrupted commit: the newest revision is current until the snapshot is renamed in (Qubes test_009)', async () => {
    const pool = await freshPool(2);
    const v = pool.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: 4 * MiB });
    await v.create();
    await commit(v, 'old');
    await v.start();
    writeAt(v.path!, 'new');
    // The commit's first rename happened, the second did not.
    const id = `${Math.floor(Date.now() / 1000) + 1000}-back`;
    sh('lvrename', VG, 'vm-tmpl-root', `vm-tmpl-root-${id}`);
    const again = (await createPool(pool.config)).initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: 4 * MiB, revisionsToKeep: 2 });
    expect(await again.isDirty()).toBe(true);
    expect(await exported(again)).toBe('old');
    await again.start();
    expect(readAt(again.path!, 8)).toBe('new');
    await again.stop();
    expect(await exported(again)).toBe('new');
    expect([...(await again.revisions()).keys()]).toContain(id);
  });

  it('does not take VM foo-root\'s revisions for foo\'s root (#4680)', async () => {
    const pool = await freshPool(1);
    const foo = pool.initVolume({ name: 'foo', dirPathPrefix: 'appvms' }, { name: 'root', saveOnStop: true, rw: true, size: 4 * MiB });
    await foo.create();
    sh('lvcreate', '-q', '--thin', '-V', '4m', '-n', 'vm-foo-root-root-1521065905-back', `${VG}/${THIN}`);
    expect(await foo.revisions()).toEqual(new Map());
  });

  it('makes the VG and thin pool from block devices, refuses one in use, and undoes only what it made', async () => {
    const dev = loopDevice(dir, 'pv2.img', 256);
    try {
      const pool = new ThinPool({ name: 'made', volume_group: 'qvolmade', thin_pool: 'tp', block_devices: dev });
      await pool.setup();
      expect(sh('lvs', '--noheadings', '-o', 'lv_attr', 'qvolmade/tp').trim()).toMatch(/^t/);
      await expect(new ThinPool({ name: 'again', volume_group: 'qvolother', thin_pool: 'tp', block_devices: dev }).setup()).rejects.toThrow(/in use|holds/);
      const v = pool.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: 8 * MiB });
      await v.create();
      await pool.destroy();
      expect(() => sh('vgs', 'qvolmade')).toThrow();
      // blkid finds nothing (exit 2): the PV label went with the VG.
      expect(spawnSync('blkid', ['-p', '-o', 'export', dev], { encoding: 'utf8' }).stdout).not.toMatch(/LVM2_member/);
    } finally {
      try { sh('vgremove', '-q', '-f', 'qvolmade'); } catch { /* gone already */ }
      sh('losetup', '-d', dev);
    }
  });

  it('refuses a thin pool that is not there, or not a thin pool', async () => {
    await expect(new ThinPool({ name: 'x', volume_group: VG, thin_pool: 'nope' }).setup()).rejects.toThrow(`Thin pool ${VG}/nope does not exist`);
    sh('lvcreate', '-q', '--thin', '-V', '4m', '-n', 'plain', `${VG}/${THIN}`);
    await expect(new ThinPool({ name: 'x', volume_group: VG, thin_pool: 'plain' }).setup()).rejects.toThrow(`Volume ${VG}/plain is not a thin pool`);
    sh('lvremove', '-q', '-f', `${VG}/plain`);
  });

  it('clones to and from a file-reflink pool, the data equal and the holes kept', async () => {
    const pool = await freshPool(1);
    const files = await createPool({ name: 'files', driver: 'file-reflink', dir_path: join(dir, 'files'), setup_check: false });
    await files.setup();
    const src = pool.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: 64 * MiB });
    await src.create();
    await src.start();
    writeAt(src.path!, 'head');
    writeAt(src.path!, 'tail', 60 * MiB);
    await src.stop();
    const copy = files.initVolume({ name: 'copy', dirPathPrefix: 'appvms' }, { name: 'root', saveOnStop: true, rw: true, size: 64 * MiB });
    await copy.create();
    const there = await copy.importVolume(src);
    expect(there.method).not.toBe('thin snapshot');
    expect(await exported(copy)).toBe('head');
    const back = pool.initVolume({ name: 'back', dirPathPrefix: 'appvms' }, { name: 'root', saveOnStop: true, rw: true, size: 64 * MiB });
    await back.create();
    await back.importVolume(copy);
    await back.start();
    expect(readAt(back.path!, 8)).toBe('head');
    expect(readAt(back.path!, 8, 60 * MiB)).toBe('tail');
    await back.stop();
    // Only what was written is allocated in the thin pool: holes stayed holes.
    const usage = Number(sh('lvs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'data_percent', `${VG}/vm-back-root`).trim());
    expect(usage).toBeLessThan(5);
    const same = pool.initVolume({ name: 'same', dirPathPrefix: 'appvms' }, { name: 'root', saveOnStop: true, rw: true, size: 64 * MiB });
    await same.create();
    expect((await same.importVolume(src)).method).toBe('thin snapshot');
  });
});
