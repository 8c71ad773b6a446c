/**
 * The contract as the base Volume implements it, on an in-memory driver that records which
 * hooks ran: the lock, the preconditions with Qubes' messages, the dispatch on the volume
 * type, and the pool's data-access bracket. No storage: the real drivers run the shared
 * contract suite (test/helpers/volume-contract.ts) on real filesystems and zvols.
 */
import { describe, expect, it } from 'vitest';
import { NotImplementedError, RevisionNotFoundError, StoragePoolException, UnsupportedFormatError } from '../../../src/errors/index.js';
import type { VolumeCapabilities } from '../../../src/model/features.js';
import { Pool, type VmRef, type VolumeRequest } from '../../../src/model/pool.js';
import { Volume } from '../../../src/model/volume.js';

class MemoryVolume extends Volume {
  declare readonly pool: MemoryPool;
  committed = '';
  dirty: string | undefined;
  revs = new Map<string, string>();

  private log(hook: string): void {
    this.pool.calls.push(`${this.name}.${hook}`);
  }

  protected override async createStorage() { this.log('createStorage'); }
  protected override async removeStorage() { this.log('removeStorage'); }
  protected override async startSnapshot() { this.log('startSnapshot'); this.dirty = (this.source as MemoryVolume).committed; }
  protected override async startVolatile() { this.log('startVolatile'); this.dirty = ''; }
  protected override async startOrigin() { this.log('startOrigin'); this.dirty = this.committed; }
  protected override async resumeDirty() { this.log('resumeDirty'); }
  protected override async commitRunning() { this.log('commitRunning'); this.committed = this.dirty!; this.dirty = undefined; }
  protected override async discard() { this.log('discard'); this.dirty = undefined; }
  protected override async revertTo(revision: string) { this.log(`revertTo ${revision}`); }
  protected override async resizeStorage(size: number) { this.log('resizeStorage'); return size; }
  protected override async exportPath() { this.log('exportPath'); return '/mem'; }
  protected override async importTarget() { this.log('importTarget'); return '/mem-import'; }
  protected override async importFrom() { this.log('importFrom'); return 'memcpy'; }
  protected override async missingCommittedState() { return undefined; }
  protected override async hasUncommittedState() { return this.dirty !== undefined; }
  override async revisions() { return this.revs; }
}

class MemoryPool extends Pool {
  readonly driver = 'memory';
  calls: string[] = [];
  async setup(): Promise<void> {}
  protected override async acquireData() { this.calls.push('acquire'); }
  protected override async releaseData() { this.calls.push('release'); }
  initVolume(vm: VmRef, request: VolumeRequest): MemoryVolume {
    return this.register(new MemoryVolume(this, { ...request, vid: request.vid ?? `${vm.name}/${request.name}` }));
  }
}

const vm: VmRef = { name: 'work', dirPathPrefix: 'appvms' };

/** `promise` rejects with exactly this class and message. */
async function refuses(promise: Promise<unknown>, cls: new (...args: never[]) => Error, message: string): Promise<void> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(cls);
  expect((err as Error).message).toBe(message);
}
function setup() {
  const pool = new MemoryPool({ name: 'm' });
  const origin = pool.initVolume(vm, { name: 'private', saveOnStop: true, rw: true, size: 4096 });
  const snapshot = pool.initVolume(vm, { name: 'root', snapOnStart: true, rw: true, source: origin });
  const volatile = pool.initVolume(vm, { name: 'volatile', rw: true, size: 4096 });
  return { pool, origin, snapshot, volatile };
}

describe('the contract in the base Volume', () => {
  it('dispatches start and stop on the volume type, holding the data from start to stop', async () => {
    const { pool, origin, snapshot, volatile } = setup();
    for (const v of [origin, snapshot, volatile]) await v.start();
    expect(pool.calls).toEqual([
      'acquire', 'private.startOrigin', 'acquire', 'root.startSnapshot', 'acquire', 'volatile.startVolatile',
    ]);
    pool.calls = [];
    for (const v of [origin, snapshot, volatile]) await v.stop();
    expect(pool.calls).toEqual(['private.commitRunning', 'release', 'root.discard', 'release', 'volatile.discard', 'release']);
  });

  it('starts a dirty origin as it is (the power-loss rule) and creates storage with data access only for an origin', async () => {
    const { pool, origin, volatile } = setup();
    origin.dirty = 'unsaved';
    await origin.start();
    await volatile.create();
    await origin.create();
    expect(pool.calls).toEqual(['acquire', 'private.resumeDirty', 'volatile.createStorage', 'acquire', 'private.createStorage', 'release']);
  });

  it('refuses with the Qubes messages and calls no hook', async () => {
    const { pool, origin, snapshot } = setup();
    const ro = pool.initVolume(vm, { name: 'ro', saveOnStop: true, rw: false });
    origin.dirty = 'running';
    pool.calls = [];
    await refuses(origin.revert(), StoragePoolException, 'Cannot revert: work/private is not cleanly stopped');
    await refuses(ro.resize(8192), StoragePoolException, 'Cannot resize: work/ro is read-only');
    await refuses(snapshot.export(), NotImplementedError, 'Cannot export: work/root is not save_on_stop');
    await refuses(snapshot.importData(4096), NotImplementedError, 'Cannot import_data: work/root is not save_on_stop');
    await refuses(origin.importData(4096), StoragePoolException, 'Cannot import data to dirty volume work/private, stop the qube first');
    await refuses(origin.importVolume(ro), StoragePoolException, 'Cannot import to dirty volume work/private - start and stop a qube to cleanup');
    await expect(origin.sendNative('zfs', 1)).rejects.toThrow(UnsupportedFormatError);
    expect(pool.calls).toEqual([]);
    const err = await origin.revert().then(() => undefined, (e: unknown) => e as StoragePoolException);
    expect(err?.path).toBe('work/private');
  });

  it('resolves "latest or named" revisions once, for every driver', async () => {
    const { pool, origin } = setup();
    origin.revs = new Map([['1', 't1'], ['2', 't2']]);
    await origin.revert();
    await origin.revert('1');
    await expect(origin.revert('3')).rejects.toThrow(new RevisionNotFoundError('work/private', '3'));
    origin.revs = new Map();
    await expect(origin.revert()).rejects.toThrow(new RevisionNotFoundError('work/private', 'latest'));
    expect(pool.calls.filter((c) => c.includes('revertTo'))).toEqual(['private.revertTo 2', 'private.revertTo 1']);
  });

  it('releases the data when an operation that would hold it fails', async () => {
    const { pool, origin } = setup();
    (origin as unknown as { exportPath: () => Promise<string> }).exportPath = async () => { throw new Error('no clone'); };
    await expect(origin.export()).rejects.toThrow('no clone');
    expect(pool.calls).toEqual(['acquire', 'release']);
  });

  it('reports how import_volume moved the data, and does nothing for a volume that keeps none', async () => {
    const { origin, volatile, snapshot } = setup();
    expect(await origin.importVolume(volatile)).toEqual({ method: 'memcpy' });
    expect(await snapshot.importVolume(origin)).toEqual({ method: 'none' });
  });

  it('serialises the operations of one volume', async () => {
    const { pool, origin } = setup();
    await Promise.all([origin.start(), origin.stop(), origin.start(), origin.stop()]);
    expect(pool.calls.filter((c) => c.startsWith('private.'))).toEqual(['private.startOrigin', 'private.commitRunning', 'private.startOrigin', 'private.commitRunning']);
  });
});

describe('declared capabilities', () => {
  it('negotiates transfer formats as export ∩ import', async () => {
    const { commonFormats, formatsOf } = await import('../../../src/model/features.js');
    const zfsLike: VolumeCapabilities = { features: new Set(['revisions']), nativeFormats: new Map([['zfs', { name: 'zfs', send: async () => { throw new Error(); }, receive: async () => { throw new Error(); } }]]) };
    const plain: VolumeCapabilities = { features: new Set(), nativeFormats: new Map() };
    expect(formatsOf(zfsLike)).toEqual(['raw', 'sparse', 'zfs']);
    expect(commonFormats(zfsLike, zfsLike)).toEqual(['raw', 'sparse', 'zfs']);
    expect(commonFormats(zfsLike, plain)).toEqual(['raw', 'sparse']);
    const { origin } = setup();
    expect(origin.has('revisions')).toBe(false);
  });
});
