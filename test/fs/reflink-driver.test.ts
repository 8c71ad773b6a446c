/**
 * The file-reflink driver against the acceptance cases of Qubes' own tests (qubes-core-admin,
 * qubes/tests/storage_reflink.py), on btrfs and XFS
 * (reflinks) and on ext4 with setup_check=False (sparse copies), one suite for all three.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ReflinkPool } from '../../src/drivers/file-reflink/pool.js';
import type { ReflinkVolume } from '../../src/drivers/file-reflink/volume.js';
import { NotImplementedError, RevisionNotFoundError, StoragePoolException } from '../../src/errors/index.js';
import { isodate } from '../../src/model/isodate.js';
import { fiemap, FIEMAP_EXTENT_SHARED } from '../../src/io/extents.js';
import type { VmRef } from '../../src/model/pool.js';
import { fsTierBlocker, skipReason } from '../helpers/gates.js';
import { mountLoopFs, type FsKind, type LoopFs } from '../helpers/loopfs.js';

const MiB = 2 ** 20;
const S = MiB;
const blocker = fsTierBlocker(['mkfs.btrfs', 'mkfs.xfs', 'mkfs.ext4']);
const vm: VmRef = { name: 'test-inst-appvm', dirPathPrefix: 'appvms' };
const tmpl: VmRef = { name: 'tmpl', dirPathPrefix: 'vm-templates' };

const files = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);
const content = (p: string) => readFileSync(p);
const write = (p: string, data: string) => writeFileSync(p, data, { flag: 'r+' });

describe.skipIf(blocker !== undefined).each(['btrfs', 'xfs', 'ext4'] as const)(skipReason(blocker, 'file-reflink driver on %s'), (kind: FsKind) => {
  let fs: LoopFs;
  let n = 0;
  let pool: ReflinkPool;
  let vmDir: string;
  const reflinks = kind !== 'ext4';

  beforeAll(() => { fs = mountLoopFs(kind, 400); });
  afterAll(() => fs?.unmount());
  beforeEach(async () => {
    const dir = join(fs.dir, `pool${n++}`);
    pool = new ReflinkPool({ name: 'test-pool', dir_path: dir, setup_check: reflinks, revisions_to_keep: 1 });
    await pool.setup();
    vmDir = join(dir, 'appvms', vm.name);
  });

  const origin = (extra = {}) => pool.initVolume(vm, { name: 'private', saveOnStop: true, rw: true, size: S, ...extra });

  it('sets up, or refuses a filesystem without reflinks unless told (B15, B16)', async () => {
    expect(existsSync(join(pool.dirPath, 'appvms'))).toBe(true);
    expect(existsSync(join(pool.dirPath, 'vm-templates'))).toBe(true);
    expect(pool.config).toEqual({ name: 'test-pool', dir_path: pool.dirPath, driver: 'file-reflink', revisions_to_keep: 1, ephemeral_volatile: false });
    const fresh = join(fs.dir, `checked${n++}`);
    const checked = new ReflinkPool({ name: 'checked', dir_path: fresh });
    if (reflinks) {
      await checked.setup();
    } else {
      await expect(checked.setup()).rejects.toThrow(/does not support reflinks.*setup_check=False/);
      expect(existsSync(fresh)).toBe(false);
    }
  });

  it('names volumes by VM and paths by the dirty image (B17)', () => {
    const v = origin();
    expect(v.vid).toBe('appvms/test-inst-appvm/private');
    expect(v.path).toBe(join(pool.dirPath, 'appvms/test-inst-appvm/private-dirty.img'));
    expect(v.blockDevice()?.path).toBe(v.path);
    expect(v.revisionsToKeep).toBe(1);
    expect(() => pool.initVolume({ name: 'x', dirPathPrefix: 'foo' as 'appvms' }, { name: 'root' })).toThrow(StoragePoolException);
  });

  it('creates an origin as a sparse clean image and its precache (B18)', async () => {
    const v = origin();
    await v.create();
    expect(files(vmDir)).toEqual(['private-precache.img', 'private.img']);
    const clean = statSync(v.cleanPath, { bigint: true });
    const pre = statSync(v.precachePath, { bigint: true });
    expect([clean.size, pre.size]).toEqual([BigInt(S), BigInt(S)]);
    expect([clean.blocks, clean.mode & 0o777n]).toEqual([0n, 0o600n]);
    expect(pre.mtimeNs).toBe(clean.mtimeNs);
    expect(pre.ino).not.toBe(clean.ino);
    expect(await v.isDirty()).toBe(false);
    expect(await v.revisions()).toEqual(new Map());
    expect(await v.usage()).toBe(0);
    expect(v.size).toBe(S);
  });

  it('removes leftovers on create, and creates nothing for snapshots and volatiles (B19, B20)', async () => {
    mkdirSync(vmDir, { recursive: true });
    for (const f of ['private.img.3@2020-01-01T00:00:00Z', 'private-dirty.img', 'private.img~x', 'private-import.img', 'private2.img~keep']) {
      writeFileSync(join(vmDir, f), 'x');
    }
    await origin().create();
    expect(files(vmDir)).toEqual(['private-precache.img', 'private.img', 'private2.img~keep']);
    await pool.initVolume(vm, { name: 'volatile', rw: true, size: S }).create();
    expect(files(vmDir)).toHaveLength(3);
  });

  it('starts an origin by renaming the precache, or copying without one (B21, B22)', async () => {
    const v = origin();
    await v.create();
    const preIno = statSync(v.precachePath).ino;
    const cleanIno = statSync(v.cleanPath).ino;
    await v.start();
    expect(statSync(v.dirtyPath).ino).toBe(preIno);
    expect(existsSync(v.precachePath)).toBe(false);
    expect(statSync(v.cleanPath).ino).toBe(cleanIno);
    expect(await v.isDirty()).toBe(true);
    await v.stop();
    rmSync(v.precachePath);
    await v.start();
    expect(content(v.dirtyPath).equals(content(v.cleanPath))).toBe(true);
  });

  it('commits on stop: the old clean becomes a revision, a new precache appears (B24)', async () => {
    const v = origin();
    await v.create();
    const oldMtime = statSync(v.cleanPath).mtimeMs / 1000;
    const oldIno = statSync(v.cleanPath).ino;
    await v.start();
    const dirtyIno = statSync(v.dirtyPath).ino;
    write(v.dirtyPath, 'v1');
    await v.stop();
    const ts = isodate(Math.floor(oldMtime));
    expect(files(vmDir)).toEqual(['private-precache.img', 'private.img', `private.img.1@${ts}Z`]);
    expect(statSync(v.cleanPath).ino).toBe(dirtyIno);
    // the revision is the old clean image itself, under a second name (deviation: no copy)
    expect(statSync(join(vmDir, `private.img.1@${ts}Z`)).ino).toBe(oldIno);
    expect(content(v.cleanPath).subarray(0, 2).toString()).toBe('v1');
    expect(statSync(v.precachePath, { bigint: true }).mtimeNs).toBe(statSync(v.cleanPath, { bigint: true }).mtimeNs);
    expect(await v.revisions()).toEqual(new Map([['1', ts]]));
  });

  it('prunes to revisions_to_keep, and keeps none with 0 (B25, B26)', async () => {
    const v = origin({ revisionsToKeep: 2 });
    await v.create();
    for (let i = 0; i < 3; i++) { await v.start(); await v.stop(); }
    expect([...(await v.revisions()).keys()]).toEqual(['2', '3']);
    await v.start(); await v.stop();
    expect([...(await v.revisions()).keys()]).toEqual(['3', '4']);
    v.revisionsToKeep = 0;
    await v.start(); await v.stop();
    expect(await v.revisions()).toEqual(new Map());
  });

  it('parses revision names strictly and orders them as numbers (B27)', async () => {
    const v = origin();
    await v.create();
    for (const f of ['private.img.5@2020-01-01T00:00:00Z', 'private.img.7@2020-01-01T00:00:00', 'private.img.junk', 'private.img.10@2020-01-02T00:00:00Z', 'private.img.9@2020-01-03T00:00:00Z']) {
      writeFileSync(join(vmDir, f), '');
    }
    expect([...(await v.revisions()).entries()]).toEqual([['5', '2020-01-01T00:00:00'], ['9', '2020-01-03T00:00:00'], ['10', '2020-01-02T00:00:00']]);
  });

  it('reverts: the revision becomes clean, the clean a new revision (B28, B29)', async () => {
    const v = origin({ revisionsToKeep: 2 });
    await v.create();
    for (const c of ['c1', 'c2', 'c3', 'c4', 'c5']) { await v.start(); write(v.dirtyPath, c); await v.stop(); }
    expect([...(await v.revisions()).keys()]).toEqual(['4', '5']); // hold c3, c4
    await v.revert('4');
    expect(content(v.cleanPath).subarray(0, 2).toString()).toBe('c3');
    expect([...(await v.revisions()).keys()]).toEqual(['5', '6']);
    expect(content(v.precachePath).equals(content(v.cleanPath))).toBe(true);
    await v.revert();
    expect(content(v.cleanPath).subarray(0, 2).toString()).toBe('c5'); // rev 6 held the clean of before
    await expect(v.revert('99')).rejects.toBeInstanceOf(RevisionNotFoundError);
    await v.start();
    await expect(v.revert()).rejects.toThrow(`Cannot revert: ${v.vid} is not cleanly stopped`);
  });

  it('starts a snapshot from the source\'s clean and notices when it is outdated (B30)', async () => {
    const src = pool.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: S });
    await src.create();
    await src.start(); write(src.dirtyPath, 'template'); await src.stop();
    const snap = pool.initVolume(vm, { name: 'root', snapOnStart: true, rw: true, source: src, size: S }) as ReflinkVolume;
    await snap.start();
    expect(statSync(snap.cleanPath).ino).toBe(statSync(src.cleanPath).ino);
    expect(statSync(snap.dirtyPath).ino).not.toBe(statSync(src.cleanPath).ino);
    expect(content(snap.dirtyPath).equals(content(src.cleanPath))).toBe(true);
    expect(await snap.isDirty()).toBe(false);
    expect(await snap.isOutdated()).toBe(false);
    await src.start(); await src.stop();
    expect(await snap.isOutdated()).toBe(true);
    await snap.stop();
    expect(existsSync(snap.cleanPath) || existsSync(snap.dirtyPath)).toBe(false);
    expect(await snap.isOutdated()).toBe(false);
  });

  it('makes volatiles fresh each start and keeps a running resize (B31)', async () => {
    const v = pool.initVolume(vm, { name: 'volatile', rw: true, size: 2 * MiB });
    await v.start();
    expect(statSync(v.dirtyPath)).toMatchObject({ size: 2 * MiB, blocks: 0 });
    await v.resize(3 * MiB);
    expect(statSync(v.dirtyPath).size).toBe(3 * MiB);
    await v.stop();
    expect(existsSync(v.dirtyPath)).toBe(false);
    expect(v.size).toBe(3 * MiB);
    await v.start();
    expect(statSync(v.dirtyPath).size).toBe(3 * MiB);
  });

  it('resizes: refused read-only; a stopped origin gets a new inode; a running one in place (B32–B34)', async () => {
    await expect(pool.initVolume(vm, { name: 'ro', size: S }).resize(2 * S)).rejects.toThrow('Cannot resize: appvms/test-inst-appvm/ro is read-only');
    const v = origin();
    await v.create();
    await v.start(); write(v.dirtyPath, 'keep'); await v.stop();
    const ino = statSync(v.cleanPath).ino;
    const revisions = await v.revisions();
    await v.resize(4 * MiB);
    expect(statSync(v.cleanPath)).toMatchObject({ size: 4 * MiB });
    expect(statSync(v.cleanPath).ino).not.toBe(ino);
    expect(content(v.cleanPath).subarray(0, 4).toString()).toBe('keep');
    expect(statSync(v.precachePath).size).toBe(4 * MiB);
    expect(await v.revisions()).toEqual(revisions);
    await v.resize(512 * 1024);
    expect(v.size).toBe(512 * 1024);
    await v.start();
    const dirtyIno = statSync(v.dirtyPath).ino;
    await v.resize(MiB);
    expect(statSync(v.dirtyPath)).toMatchObject({ ino: dirtyIno, size: MiB });
    expect(statSync(v.cleanPath).size).toBe(512 * 1024);
    await v.stop();
    expect(statSync(v.cleanPath).size).toBe(MiB);
  });

  it('exports the pre-start data of an origin, and only of an origin (B35)', async () => {
    const v = origin();
    await v.create();
    await v.start(); write(v.dirtyPath, 'old'); await v.stop();
    await v.start(); write(v.dirtyPath, 'new');
    const path = await v.export();
    expect(path).toBe(v.cleanPath);
    expect(content(path).subarray(0, 3).toString()).toBe('old');
    await expect(pool.initVolume(vm, { name: 'volatile', rw: true }).export()).rejects.toThrow(new NotImplementedError('Cannot export: appvms/test-inst-appvm/volatile is not save_on_stop'));
  });

  it('imports data: committed on success, dropped on failure (B36–B38)', async () => {
    const v = origin();
    await v.create();
    const path = await v.importData(8192);
    expect(path).toBe(join(vmDir, 'private-import.img'));
    expect(path).not.toBe(v.path);
    expect(statSync(path)).toMatchObject({ size: 8192, blocks: 0 });
    write(path, 'IMP');
    await v.importDataEnd(true);
    expect(existsSync(path)).toBe(false);
    expect(statSync(v.cleanPath).size).toBe(8192);
    expect(content(v.cleanPath).subarray(0, 3).toString()).toBe('IMP');
    expect((await v.revisions()).size).toBe(1);
    const before = content(v.cleanPath);
    await v.importData(4096);
    await v.importDataEnd(false);
    expect(existsSync(v.importPath)).toBe(false);
    expect(content(v.cleanPath)).toEqual(before);
    await expect(pool.initVolume(vm, { name: 'volatile', rw: true }).importData(1)).rejects.toThrow('Cannot import_data: appvms/test-inst-appvm/volatile is not save_on_stop');
  });

  it('imports another volume: the size follows the source, the old clean becomes a revision', async () => {
    const src = pool.initVolume(tmpl, { name: 'private', saveOnStop: true, rw: true, size: 3 * MiB });
    await src.create();
    await src.start(); write(src.dirtyPath, 'source'); await src.stop();
    const dst = origin();
    await dst.create();
    await dst.importVolume(src);
    expect(dst.size).toBe(3 * MiB);
    expect(content(dst.cleanPath).equals(content(src.cleanPath))).toBe(true);
    expect([...(await dst.revisions()).keys()]).toEqual(['1']);
  });

  it('deletes a pending import and temporary files on start', async () => {
    const v = origin();
    await v.create();
    writeFileSync(join(vmDir, 'private.img~garbage'), 'x');
    writeFileSync(v.importPath, 'x');
    await v.start();
    expect(files(vmDir)).toEqual(['private-dirty.img', 'private.img']);
  });

  it('reuses the uncommitted state after a crash, and commits it at the next stop', async () => {
    const v = origin();
    await v.create();
    await v.start(); write(v.dirtyPath, 'crash');
    // a new process: the pool and volume objects are built again from the config
    const again = new ReflinkPool({ name: 'test-pool', dir_path: pool.dirPath, setup_check: false });
    const w = again.initVolume(vm, { name: 'private', saveOnStop: true, rw: true, size: S });
    expect(await w.isDirty()).toBe(true);
    await w.start();
    expect(content(w.dirtyPath).subarray(0, 5).toString()).toBe('crash');
    await w.stop();
    expect(content(w.cleanPath).subarray(0, 5).toString()).toBe('crash');
  });

  it('runs without snapshots with revisions_to_keep -1', async () => {
    const v = origin({ revisionsToKeep: -1 });
    await v.create();
    await v.start();
    expect(files(vmDir)).toEqual(['private-dirty.img']);
    await v.stop();
    expect(files(vmDir)).toEqual(['private.img']);
  });

  it('verifies, and removes everything including the VM directory', async () => {
    const v = origin();
    await expect(v.verify()).rejects.toThrow(`Missing image file '${v.cleanPath}' for volume ${v.vid}`);
    await v.create();
    expect(await v.verify()).toBe(true);
    await v.start(); await v.stop();
    await v.remove();
    expect(existsSync(vmDir)).toBe(false);
    expect(pool.listVolumes()).toEqual([]);
  });

  it('clones the precache and revisions where the filesystem can, copies elsewhere', async () => {
    const v = origin({ size: 8 * MiB });
    await v.create();
    await v.start();
    writeFileSync(v.dirtyPath, Buffer.alloc(8 * MiB, 1), { flag: 'r+' });
    await v.stop();
    const shared = (await fiemap(v.precachePath)).filter((e) => e.flags & FIEMAP_EXTENT_SHARED).reduce((a, e) => a + e.length, 0);
    expect(shared).toBe(reflinks ? 8 * MiB : 0);
    expect(content(v.precachePath).equals(content(v.cleanPath))).toBe(true);
  });
});
