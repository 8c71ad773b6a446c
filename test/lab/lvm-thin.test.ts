/**
 * The lvm_thin driver on real LVM, in the lab VM: a thin pool over a loop device, the
 * driver contract suite that file-reflink and the ZFS drivers pass, then what is LVM's and
 * Qubes' own: the LV names, an interrupted commit (Qubes' test_009), the revision filter
 * (#4680), a pool made from block devices or in a VG and undone, clones to and from the
 * other drivers with equal data and holes kept, and thin pools that run out of data or
 * metadata space.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ThinPool } from '../../src/drivers/lvm-thin/pool.js';
import { createPool } from '../../src/drivers/registry.js';
import type { Pool, VmRef } from '../../src/model/pool.js';
import type { Volume } from '../../src/model/volume.js';
import { skipReason } from '../helpers/gates.js';
import { copyVolume } from '../../src/io/copy.js';
import { makeSparseFile, patternBuffer, sameBytes, spreadChunks } from '../helpers/files.js';
import { commit, exported, readAt, volumeContract, writeAt, writeBytesAt } from '../helpers/volume-contract.js';
import { inLab, makeZpool, notInLab, sh } from './zpool.js';

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
function lvsOf(vg: string, thin = THIN): string[] {
  return sh('lvs', '--noheadings', '-o', 'lv_name', vg).split('\n').map((l) => l.trim()).filter((n) => n && n !== thin && !n.startsWith('['));
}

/** A VG of 1 MiB extents on a new loop device of `sizeMiB`; returns the device. */
function volumeGroup(name: string, sizeMiB: number): string {
  const dev = loopDevice(dir, `${name}.img`, sizeMiB);
  sh('pvcreate', '-q', dev);
  sh('vgcreate', '-q', '-s', '1m', name, dev);
  return dev;
}

function dropVolumeGroup(name: string, dev: string): void {
  try {
    sh('vgremove', '-q', '-f', name);
  } catch {
    // A failed thin pool takes no message, so its LVs cannot be removed: deactivate them
    // and wipe the label instead.
    spawnSync('vgchange', ['-q', '-an', name]);
  }
  spawnSync('pvremove', ['-q', '-ff', '-y', dev]);
  sh('losetup', '-d', dev);
  rmSync(join(dir, `${name}.img`), { force: true });
}

/**
 * Writes 4 KiB at the start of every 64 KiB chunk of `lv` in [from, to): each write maps a
 * new chunk, which costs the thin pool metadata but (the pool not zeroing, the PV sparse)
 * almost no data space or memory. Returns the error that stopped it, if one did.
 */
function mapChunks(lv: string, from: number, to: number): unknown {
  const fd = openSync(lv, 'r+');
  const block = Buffer.alloc(4096, 1);
  try {
    for (let o = from; o < to; o += 64 * 1024) writeSync(fd, block, 0, block.length, o);
    fsyncSync(fd);
    return undefined;
  } catch (err) {
    return err;
  } finally {
    closeSync(fd);
  }
}

/** `lvs -o field` of one LV, trimmed. */
function lvField(lv: string, field: string): string {
  return sh('lvs', '--noheadings', '--units', 'b', '--nosuffix', '-o', field, lv).trim();
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
    const snap = lvField(`${VG}/vm-tmpl-root-snap`, 'lv_uuid');
    await again.start();
    expect(lvField(`${VG}/vm-tmpl-root-snap`, 'lv_uuid')).toBe(snap);
    expect(readAt(again.path!, 8)).toBe('new');
    await again.stop();
    expect(lvField(`${VG}/vm-tmpl-root`, 'lv_uuid')).toBe(snap);
    expect(await exported(again)).toBe('new');
    expect([...(await again.revisions()).keys()]).toContain(id);
  });

  it('moves LVs as Qubes\' tests check them by uuid: commit, import, same-pool import, revert, volatile, resize (spec 8.C)', async () => {
    const pool = await freshPool(2);
    const uuid = (lv: string) => lvField(`${VG}/${lv}`, 'lv_uuid');
    const v = pool.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: 4 * MiB });
    await v.create();
    // 51: the snapshot becomes the base, the base a revision.
    let base = uuid('vm-tmpl-root');
    await v.start();
    const snap = uuid('vm-tmpl-root-snap');
    expect(lvField(`${VG}/vm-tmpl-root-snap`, 'origin')).toBe('vm-tmpl-root');
    // 63: a running volume's resize goes to its -snap; the base gets it at stop.
    await v.resize(8 * MiB);
    expect(Number(lvField(`${VG}/vm-tmpl-root-snap`, 'lv_size'))).toBe(8 * MiB);
    expect(Number(lvField(`${VG}/vm-tmpl-root`, 'lv_size'))).toBe(4 * MiB);
    await v.stop();
    const [first] = [...(await v.revisions()).keys()];
    expect(uuid('vm-tmpl-root')).toBe(snap);
    expect(uuid(`vm-tmpl-root-${first}`)).toBe(base);
    expect(Number(lvField(`${VG}/vm-tmpl-root`, 'lv_size'))).toBe(8 * MiB);
    // 55: a committed import is the import LV itself; an abandoned one changes nothing.
    base = uuid('vm-tmpl-root');
    await v.importData(8 * MiB);
    const imported = uuid('vm-tmpl-root-import');
    await v.importDataEnd(true);
    expect(uuid('vm-tmpl-root')).toBe(imported);
    const revisions = [...(await v.revisions()).keys()];
    expect(uuid(`vm-tmpl-root-${revisions.at(-1)}`)).toBe(base);
    await v.importData(8 * MiB);
    await v.importDataEnd(false);
    expect(uuid('vm-tmpl-root')).toBe(imported);
    expect([...(await v.revisions()).keys()]).toEqual(revisions);
    // 54: a revert puts the revision's LV back as the base (qvol keeps the replaced base as a revision).
    const target = revisions[0]!;
    const reverted = uuid(`vm-tmpl-root-${target}`);
    await v.revert(target);
    expect(uuid('vm-tmpl-root')).toBe(reverted);
    expect(lvsOf(VG)).not.toContain('vm-tmpl-root-snap');
    // 57: a same-pool import is a thin snapshot of the source's base.
    const other = pool.initVolume({ name: 'other', dirPathPrefix: 'appvms' }, { name: 'root', saveOnStop: true, rw: true, size: 4 * MiB });
    await other.create();
    await other.importVolume(v);
    expect(lvField(`${VG}/vm-other-root`, 'origin')).toBe('vm-tmpl-root');
    expect(await other.revisions()).toHaveProperty('size', 1);
    // 59: a volatile volume is a new LV at each start, and gone at stop.
    const vol = pool.initVolume({ name: 'other', dirPathPrefix: 'appvms' }, { name: 'volatile', rw: true, size: 4 * MiB });
    await vol.create();
    expect(lvsOf(VG)).not.toContain('vm-other-volatile');
    await vol.start();
    const once = uuid('vm-other-volatile');
    await vol.stop();
    expect(lvsOf(VG)).not.toContain('vm-other-volatile');
    await vol.start();
    expect(uuid('vm-other-volatile')).not.toBe(once);
    await vol.stop();
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

  /**
   * A volume with data at both ends of 64 MiB cloned from the thin pool into `other` and
   * back, equal both ways, with holes kept in the thin pool (and `allocated` checks them
   * in `other`); returns the source for further clones.
   */
  async function cloneRoundTrip(other: Pool, allocated: (v: Volume) => number): Promise<{ pool: ThinPool; src: Volume; copy: Volume }> {
    const pool = await freshPool(1);
    await other.setup();
    const src = pool.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: 64 * MiB });
    await src.create();
    await src.start();
    writeAt(src.path!, 'head');
    writeAt(src.path!, 'tail', 60 * MiB);
    await src.stop();
    const copy = other.initVolume({ name: 'copy', dirPathPrefix: 'appvms' }, { name: 'root', saveOnStop: true, rw: true, size: 64 * MiB });
    await copy.create();
    expect((await copy.importVolume(src)).method).not.toBe('thin snapshot');
    expect(await exported(copy)).toBe('head');
    expect(allocated(copy)).toBeLessThan(8 * MiB);
    const back = pool.initVolume({ name: 'back', dirPathPrefix: 'appvms' }, { name: 'root', saveOnStop: true, rw: true, size: 64 * MiB });
    await back.create();
    await back.importVolume(copy);
    await back.start();
    expect(readAt(back.path!, 8)).toBe('head');
    expect(readAt(back.path!, 8, 60 * MiB)).toBe('tail');
    await back.stop();
    // Only what was written is allocated in the thin pool: holes stayed holes.
    expect(Number(lvField(`${VG}/vm-back-root`, 'data_percent'))).toBeLessThan(5);
    return { pool, src, copy };
  }

  it('clones to and from a file-reflink pool, the data equal and the holes kept', async () => {
    const files = await createPool({ name: 'files', driver: 'file-reflink', dir_path: join(dir, 'files'), setup_check: false });
    const { pool, src } = await cloneRoundTrip(files, (v) => statSync(join(dir, 'files', `${v.vid}.img`)).blocks * 512);
    const same = pool.initVolume({ name: 'same', dirPathPrefix: 'appvms' }, { name: 'root', saveOnStop: true, rw: true, size: 64 * MiB });
    await same.create();
    expect((await same.importVolume(src)).method).toBe('thin snapshot');
  });

  it('clones to and from a zfs_zvol pool, the data equal and the holes kept', async () => {
    const zp = makeZpool('qvollvmz', 512);
    try {
      const zfs = await createPool({ name: 'z', driver: 'zfs_zvol', container: 'qvollvmz/q' });
      const { copy } = await cloneRoundTrip(zfs, (v) => Number(sh('zfs', 'get', '-Hp', '-o', 'value', 'referenced', v.vid)));
      await copy.remove();
    } finally {
      zp.destroy();
    }
  });

  it('makes a thin pool in an existing VG with create_thin_pool, and destroy removes only that', async () => {
    const dev = volumeGroup('qvolvg', 128);
    try {
      sh('lvcreate', '-q', '-L', '8m', '-n', 'other', 'qvolvg');
      const pool = new ThinPool({ name: 'invg', volume_group: 'qvolvg', thin_pool: 'tp', create_thin_pool: true });
      await pool.setup();
      expect(lvField('qvolvg/tp', 'lv_attr')).toMatch(/^t/);
      expect(pool.config).toMatchObject({ create_thin_pool: true });
      await expect(new ThinPool({ name: 'twice', volume_group: 'qvolvg', thin_pool: 'tp', create_thin_pool: true }).setup())
        .rejects.toThrow('Thin pool qvolvg/tp already exists: drop create_thin_pool to use it as it is.');
      await expect(new ThinPool({ name: 'novg', volume_group: 'qvolnovg', thin_pool: 'tp', create_thin_pool: true }).setup())
        .rejects.toThrow('Volume group qvolnovg does not exist');
      const v = pool.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: 4 * MiB });
      await v.create();
      await commit(v, 'kept');
      await v.remove();
      await pool.destroy();
      expect(lvsOf('qvolvg', 'tp')).toEqual(['other']);
    } finally {
      dropVolumeGroup('qvolvg', dev);
    }
  });

  it('refuses what a full thin pool cannot take, before changing anything, and loses nothing when it fills meanwhile', async () => {
    const dev = volumeGroup('qvolfull', 128);
    try {
      sh('lvcreate', '-q', '--type', 'thin-pool', '-L', '64m', '-n', 'tp', 'qvolfull');
      // Writes fail at once when the pool is full (LVM's default queues them for 60 s).
      sh('lvchange', '-q', '--errorwhenfull', 'y', 'qvolfull/tp');
      const pool = new ThinPool({ name: 'full', volume_group: 'qvolfull', thin_pool: 'tp', revisions_to_keep: 1 });
      await pool.setup();
      const keep = pool.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: 8 * MiB });
      await keep.create();
      await commit(keep, 'old');
      // Another LV takes all but ~16 MiB.
      sh('lvcreate', '-q', '--thin', '-V', '128m', '-n', 'filler', 'qvolfull/tp');
      sh('dd', 'if=/dev/zero', 'of=/dev/qvolfull/filler', 'bs=1M', 'count=46', 'oflag=direct', 'status=none');

      const files = await createPool({ name: 'files', driver: 'file-reflink', dir_path: join(dir, 'full-files'), setup_check: false });
      await files.setup();
      const big = files.initVolume({ name: 'big', dirPathPrefix: 'appvms' }, { name: 'root', saveOnStop: true, rw: true, size: 64 * MiB });
      await big.create();
      await big.start();
      writeBytesAt(big.path!, randomBytes(32 * MiB));
      await big.stop();
      const before = lvsOf('qvolfull', 'tp').sort();
      await expect(keep.importVolume(big)).rejects.toThrow(/^Thin pool qvolfull\/tp has .* free and copying .* writes up to 32.0 MiB: extend it/);
      expect(lvsOf('qvolfull', 'tp').sort()).toEqual(before);
      expect(await exported(keep)).toBe('old');

      // The pool fills while the copy runs (another VM writing): hidden here by a source
      // that reports no data, so the check lets it through and the kernel refuses the writes.
      big.usage = async () => 0;
      const err = await keep.importVolume(big).catch((e: unknown) => e);
      expect(String(err)).toMatch(/Thin pool qvolfull\/tp is full: extend it .*; nothing was changed/);
      expect(lvsOf('qvolfull', 'tp').sort()).toEqual(before);
      expect(await exported(keep)).toBe('old');
      // A stream import into it fails the same way and leaves the committed state.
      const target = await keep.importData(32 * MiB);
      expect(() => writeBytesAt(target, randomBytes(32 * MiB))).toThrow(/ENOSPC|EIO/);
      await keep.importDataEnd(false);
      expect(await exported(keep)).toBe('old');

      // Full: a start makes no snapshot and leaves the volume as it was.
      spawnSync('dd', ['if=/dev/zero', 'of=/dev/qvolfull/filler', 'bs=1M', 'seek=46', 'count=64', 'oflag=direct', 'status=none']);
      expect(lvField('qvolfull/tp', 'lv_health_status')).toBe('out_of_data');
      await expect(keep.start()).rejects.toThrow(/^Thin pool qvolfull\/tp is full: extend it/);
      expect(await keep.isDirty()).toBe(false);
      expect(await exported(keep)).toBe('old');
      // Room made, it starts.
      sh('lvremove', '-q', '-f', 'qvolfull/filler');
      await keep.start();
      await keep.stop();
      expect(await exported(keep)).toBe('old');
    } finally {
      dropVolumeGroup('qvolfull', dev);
    }
  });

  it('makes no new thin LV once the metadata is nearly full, and says a failed pool needs repair', async () => {
    // The smallest metadata LVM makes (2 MiB) over 64 KiB chunks holds about 110,000
    // mappings: 7 GiB of chunks, 4 KiB of each written.
    const dev = volumeGroup('qvolmeta', 13 * 1024);
    try {
      sh('lvcreate', '-q', '--type', 'thin-pool', '-L', '12g', '--poolmetadatasize', '2m', '--chunksize', '64k', '--zero', 'n', '-n', 'tp', 'qvolmeta');
      sh('lvchange', '-q', '--errorwhenfull', 'y', 'qvolmeta/tp');
      const pool = new ThinPool({ name: 'meta', volume_group: 'qvolmeta', thin_pool: 'tp', revisions_to_keep: 1 });
      await pool.setup();
      const keep = pool.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: 8 * MiB });
      await keep.create();
      await commit(keep, 'old');
      sh('lvcreate', '-q', '--thin', '-V', '64g', '-n', 'filler', 'qvolmeta/tp');
      const metadataPercent = () => Number(lvField('qvolmeta/tp', 'metadata_percent'));
      let mapped = 6 * 1024 * MiB;
      expect(mapChunks('/dev/qvolmeta/filler', 0, mapped)).toBeUndefined();
      while (metadataPercent() < 95.5) {
        expect(mapChunks('/dev/qvolmeta/filler', mapped, mapped + 64 * MiB)).toBeUndefined();
        mapped += 64 * MiB;
      }
      await expect(keep.start()).rejects.toThrow(/^Thin pool qvolmeta\/tp has used 9\d% of its metadata, and qvol makes no new thin volume past 95% .*lvextend --poolmetadatasize/);
      expect(await keep.isDirty()).toBe(false);
      expect(await exported(keep)).toBe('old');

      // Past the end the kernel fails the pool; qvol says what it needs.
      expect(mapChunks('/dev/qvolmeta/filler', mapped, mapped + 1024 * MiB)).toBeDefined();
      expect(lvField('qvolmeta/tp', 'lv_health_status')).toBe('failed');
      await expect(keep.start()).rejects.toThrow(/^Thin pool qvolmeta\/tp needs repair \(LVM reports failed\): stop its VMs and run lvconvert --repair qvolmeta\/tp/);
    } finally {
      dropVolumeGroup('qvolmeta', dev);
    }
  });

  it('copies onto a thin LV full of old data: zero runs become discards, the data equal and the space given back', async () => {
    await freshPool(1);
    const size = 64 * MiB;
    const src = join(dir, 'sparse.img');
    // Ten 1 MiB chunks at odd offsets: the zero runs between them start and end inside chunks of the pool.
    makeSparseFile(src, size, spreadChunks(size, 10, MiB, 5).map((c) => ({ ...c, offset: c.offset + 12 * 1024 })).filter((c) => c.offset + c.length <= size));
    const usage = (lv: string) => Number(lvField(`${VG}/${lv}`, 'data_percent'));
    for (const [lv, disable, rung, most] of [['thin-discard', [], 16, 25], ['thin-zeroout', ['discard'], 0, 101]] as const) {
      sh('lvcreate', '-q', '--thin', '-V', '64m', '-n', lv, `${VG}/${THIN}`);
      writeBytesAt(`/dev/${VG}/${lv}`, patternBuffer(size, 3));
      expect(usage(lv)).toBe(100);
      const r = await copyVolume(src, `/dev/${VG}/${lv}`, { disable: [...disable] });
      expect(sameBytes(src, `/dev/${VG}/${lv}`, size)).toBe(true);
      expect(r.zeroRungs & 16).toBe(rung);
      // Discarded: about the ten chunks stay mapped. Forced off: zeroed in place, all mapped.
      expect(usage(lv)).toBeLessThan(most);
      if (rung === 0) expect(usage(lv)).toBe(100);
      sh('lvremove', '-q', '-f', `${VG}/${lv}`);
    }
  });
});
