/**
 * The driver contract (docs/qubes-contract.md: operations, the power-loss rule, revisions,
 * import and export), one suite for every driver: file-reflink on the fs tier, zfs_zvol and
 * zfs_encrypted in the lab. Data goes in and out the way a VM and a backup tool see it:
 * through the started volume's path and through export().
 */
import { closeSync, fsyncSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { beforeEach, expect, it } from 'vitest';
import { blockDeviceInfo } from '../../src/io/blockdev.js';
import { NotImplementedError, RevisionNotFoundError, StoragePoolException } from '../../src/errors/index.js';
import type { Pool, VmRef } from '../../src/model/pool.js';
import type { Volume } from '../../src/model/volume.js';

export interface ContractDriver {
  /** A fresh, set-up pool for one test. */
  makePool(options: { revisionsToKeep: number }): Promise<Pool>;
  /** The same pool as a new process would build it from its config (for the power-loss rule). */
  reopen(pool: Pool): Pool | Promise<Pool>;
  /** What the pool still holds of its volumes (should be nothing after every remove). */
  leftovers(pool: Pool): Promise<string[]>;
}

const MiB = 2 ** 20;
const S = MiB;
const tmpl: VmRef = { name: 'tmpl', dirPathPrefix: 'vm-templates' };
const app: VmRef = { name: 'work', dirPathPrefix: 'appvms' };

/**
 * Writes `text`, padded with zeros to 8 bytes, at `offset` and flushes it, as a VM flushes
 * its disk before it stops.
 */
export function writeAt(path: string, text: string, offset = 0): void {
  const data = Buffer.alloc(Math.max(8, text.length));
  data.write(text, 'latin1');
  writeBytesAt(path, data, offset);
}

/** Writes `data` at `offset` and flushes it. */
export function writeBytesAt(path: string, data: Uint8Array, offset = 0): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function readAt(path: string, length: number, offset = 0): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, offset);
    return buf.toString('latin1').replace(/\0+$/, '');
  } finally {
    closeSync(fd);
  }
}

export async function sizeOf(path: string): Promise<number> {
  const st = statSync(path);
  if (!st.isBlockDevice()) return st.size;
  const fd = openSync(path, 'r');
  try {
    return (await blockDeviceInfo(fd, st)).size;
  } finally {
    closeSync(fd);
  }
}

/** `promise` rejects with exactly this class and message, and names the volume in `path`. */
async function refuses(promise: Promise<unknown>, cls: new (...args: never[]) => Error, message: string): Promise<void> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(cls);
  expect((err as Error).message).toBe(message);
}

/** What an export of `v` reads at offset 0. */
export async function exported(v: Volume, length = 8): Promise<string> {
  const path = await v.export();
  try {
    return readAt(path, length);
  } finally {
    await v.exportEnd(path);
  }
}

/** start, write `text`, stop: one committed change. */
export async function commit(v: Volume, text: string): Promise<void> {
  await v.start();
  writeAt(v.path!, text);
  await v.stop();
}

export function volumeContract(driver: ContractDriver): void {
  let pool: Pool;
  beforeEach(async () => { pool = await driver.makePool({ revisionsToKeep: 1 }); });

  const origin = (p = pool, extra = {}) => p.initVolume(tmpl, { name: 'root', saveOnStop: true, rw: true, size: S, ...extra });

  it('creates an origin, commits on stop and exports the committed data', async () => {
    const v = origin();
    await v.create();
    expect(await v.isDirty()).toBe(false);
    expect(await v.verify()).toBe(true);
    expect(await v.revisions()).toEqual(new Map());
    expect(v.size).toBe(S);
    await v.start();
    expect(await v.isDirty()).toBe(true);
    expect(await sizeOf(v.path!)).toBe(S);
    expect(readAt(v.path!, 8)).toBe('');
    writeAt(v.path!, 'v1');
    await v.stop();
    expect(await v.isDirty()).toBe(false);
    expect(await exported(v)).toBe('v1');
  });

  it('exports the pre-start data while the volume runs', async () => {
    const v = origin();
    await v.create();
    await commit(v, 'before');
    await v.start();
    writeAt(v.path!, 'during');
    expect(await exported(v)).toBe('before');
    await v.stop();
    expect(await exported(v)).toBe('during');
  });

  it('keeps the power-loss rule: a start after a crash uses the uncommitted data, the next stop commits it', async () => {
    const v = origin();
    await v.create();
    await commit(v, 'old');
    await v.start();
    writeAt(v.path!, 'unsaved');
    // The host dies: a new process builds the pool and volume again from their configs.
    const again = origin(await driver.reopen(pool));
    expect(await again.isDirty()).toBe(true);
    await again.start();
    expect(readAt(again.path!, 8)).toBe('unsaved');
    await again.stop();
    expect(await exported(again)).toBe('unsaved');
  });

  it('keeps revisions_to_keep revisions and reverts to the latest or a named one', async () => {
    const v = origin(pool, { revisionsToKeep: 2 });
    await v.create();
    for (const text of ['a', 'b', 'c']) await commit(v, text);
    const revisions = [...(await v.revisions()).keys()];
    expect(revisions).toHaveLength(2);
    for (const ts of (await v.revisions()).values()) expect(ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$/);
    await expect(v.revert('no-such-revision')).rejects.toThrow(RevisionNotFoundError);
    await v.revert();
    expect(await exported(v)).toBe('b');
    expect(await v.isDirty()).toBe(false);
    await v.revert([...(await v.revisions()).keys()][0]);
    expect(await exported(v)).toBe('a');
    await v.start();
    expect(readAt(v.path!, 8)).toBe('a');
    await expect(v.revert()).rejects.toThrow(StoragePoolException);
    await v.stop();
  });

  it('keeps no revisions with revisions_to_keep 0, and uses the volume directly with -1', async () => {
    const none = origin(pool, { revisionsToKeep: 0 });
    await none.create();
    await commit(none, 'x');
    await commit(none, 'y');
    expect(await none.revisions()).toEqual(new Map());
    const direct = pool.initVolume(tmpl, { name: 'private', saveOnStop: true, rw: true, size: S, revisionsToKeep: -1 });
    expect(direct.snapshotsDisabled).toBe(true);
    await direct.create();
    await commit(direct, 'd1');
    await commit(direct, 'd2');
    expect(await direct.revisions()).toEqual(new Map());
    expect(await exported(direct)).toBe('d2');
  });

  it('starts a snapshot from its source\'s committed data, discards it on stop, and sees the source change', async () => {
    const t = origin();
    await t.create();
    await commit(t, 't1');
    const root = pool.initVolume(app, { name: 'root', snapOnStart: true, rw: true, source: t, size: t.size });
    await root.create();
    await root.start();
    expect(readAt(root.path!, 8)).toBe('t1');
    writeAt(root.path!, 'scratch');
    expect(await root.isOutdated()).toBe(false);
    expect(await root.isDirty()).toBe(false);
    await commit(t, 't2');
    expect(await root.isOutdated()).toBe(true);
    await root.stop();
    await root.start();
    expect(readAt(root.path!, 8)).toBe('t2');
    await root.stop();
    await expect(root.export()).rejects.toThrow(NotImplementedError);
  });

  it('gives a volatile volume empty at every start', async () => {
    const v = pool.initVolume(app, { name: 'volatile', rw: true, size: S });
    await v.create();
    await v.start();
    expect(await sizeOf(v.path!)).toBe(S);
    writeAt(v.path!, 'swap');
    await v.stop();
    await v.start();
    expect(readAt(v.path!, 8)).toBe('');
    await v.stop();
  });

  it('resizes an origin halted and running, up and down, and refuses a read-only one', async () => {
    const v = origin();
    await v.create();
    await commit(v, 'keep');
    await v.resize(2 * S);
    expect(v.size).toBe(2 * S);
    await v.start();
    expect(await sizeOf(v.path!)).toBe(2 * S);
    expect(readAt(v.path!, 8)).toBe('keep');
    await v.resize(S);
    expect(await sizeOf(v.path!)).toBe(S);
    await v.stop();
    expect(v.size).toBe(S);
    expect(await exported(v)).toBe('keep');
    const ro = pool.initVolume(tmpl, { name: 'ro', saveOnStop: true, rw: false, size: S });
    await expect(ro.resize(2 * S)).rejects.toThrow(/read-only/);
  });

  it('imports data: committed on success, discarded on failure', async () => {
    const v = origin();
    await v.create();
    await commit(v, 'orig');
    const target = await v.importData(2 * S);
    expect(await sizeOf(target)).toBe(2 * S);
    writeAt(target, 'imported', S);
    writeAt(target, 'head');
    await v.importDataEnd(true);
    expect(v.size).toBe(2 * S);
    expect(await exported(v)).toBe('head');
    await v.start();
    expect(readAt(v.path!, 8, S)).toBe('imported');
    await v.stop();
    const second = await v.importData(S);
    writeAt(second, 'failed');
    await v.importDataEnd(false);
    expect(await exported(v)).toBe('head');
  });

  it('imports another volume of the same pool', async () => {
    const src = origin();
    await src.create();
    await commit(src, 'source');
    const dst = pool.initVolume(app, { name: 'private', saveOnStop: true, rw: true, size: S });
    await dst.create();
    expect((await dst.importVolume(src)).method).toMatch(/^(reflink|copy_file_range|sparse copy|zfs clone|thin snapshot)$/);
    expect(await exported(dst)).toBe('source');
    await commit(src, 'later');
    expect(await exported(dst)).toBe('source');
    await commit(dst, 'own');
    expect(await exported(src)).toBe('later');
  });

  it('refuses with the Qubes messages, naming the volume, and changes nothing', async () => {
    const v = origin();
    await v.create();
    await commit(v, 'kept');
    const volatile = pool.initVolume(app, { name: 'volatile', rw: true, size: S });
    await volatile.create();
    const ro = pool.initVolume(tmpl, { name: 'ro', saveOnStop: true, rw: false, size: S });
    await ro.create();
    await v.start();
    writeAt(v.path!, 'running');
    await refuses(v.revert(), StoragePoolException, `Cannot revert: ${v.vid} is not cleanly stopped`);
    await refuses(v.importData(S), StoragePoolException, `Cannot import data to dirty volume ${v.vid}, stop the qube first`);
    await refuses(v.importVolume(ro), StoragePoolException, `Cannot import to dirty volume ${v.vid} - start and stop a qube to cleanup`);
    await refuses(ro.resize(2 * S), StoragePoolException, `Cannot resize: ${ro.vid} is read-only`);
    await refuses(volatile.export(), NotImplementedError, `Cannot export: ${volatile.vid} is not save_on_stop`);
    await refuses(volatile.importData(S), NotImplementedError, `Cannot import_data: ${volatile.vid} is not save_on_stop`);
    await v.stop();
    expect(await exported(v)).toBe('running');
    const missing = pool.initVolume(tmpl, { name: 'never-created', saveOnStop: true, rw: true, size: S });
    const err = await missing.verify().then(() => undefined, (e: unknown) => e as StoragePoolException);
    expect(err).toBeInstanceOf(StoragePoolException);
    expect(err!.message).toMatch(new RegExp(`^Missing .+ for volume ${missing.vid}$`));
    for (const x of [v, volatile, ro, missing]) await x.remove();
  });

  it('leaves nothing behind when every volume is removed', async () => {
    const t = origin();
    await t.create();
    await commit(t, 't');
    const root = pool.initVolume(app, { name: 'root', snapOnStart: true, rw: true, source: t, size: t.size });
    const priv = pool.initVolume(app, { name: 'private', saveOnStop: true, rw: true, size: S });
    const vol = pool.initVolume(app, { name: 'volatile', rw: true, size: S });
    for (const v of [root, priv, vol]) await v.create();
    for (const v of [root, priv, vol]) await v.start();
    const exportPath = await t.export();
    await t.exportEnd(exportPath);
    for (const v of [root, priv, vol]) await v.stop();
    await priv.importVolume(t);
    for (const v of [root, priv, vol, t]) await v.remove();
    expect(await driver.leftovers(pool)).toEqual([]);
    expect(pool.listVolumes()).toEqual([]);
  });
}
