/**
 * A volume of the ZFS pools: a sparse zvol whose committed states are snapshots (the names
 * and the policy are in snapshots.ts), with `org.qvol:dirty=on` while it holds uncommitted
 * data: the power-loss rule's marker. Every replacement is built beside the volume and
 * swapped in (swap.ts). The Qubes rules (locks, preconditions, dispatch) are the model's;
 * this file maps them onto zvols and snapshots.
 */
import { copyMethodName, copyVolume } from '../../io/copy.js';
import { waitForDevice } from '../../io/wait.js';
import { RevisionNotFoundError, StoragePoolException } from '../../errors/index.js';
import type { VolumeCapabilities } from '../../model/features.js';
import { keepsRevisions, revisionsToPrune } from '../../model/revisions.js';
import { Volume, type ImportVolumeOptions, type VolumeInit } from '../../model/volume.js';
import { DIRTY_PROPERTY, descendants, destroyDataset, destroyIfEmpty, devicePath, ensureParent, exists, properties, randomSuffix, snapshots } from './datasets.js';
import type { ZfsPool } from './pool.js';
import {
  bareName, cleanName, exportName, isRevision, latestCommitted, live, revisionMap, revisionName, staleClean,
} from './snapshots.js';
import { ZFS_FORMAT } from './streams.js';
import { flushDevice, repairSwap, swapIn, type SwapNames } from './swap.js';
import { isZfsFailure, zfsArgv, zfsChange, zfsSendReceive } from './zfs-command.js';
import { VOLBLOCKSIZE, zvolSize } from './zvol-size.js';

/** udev takes its time under emulation; on real hardware a link appears in milliseconds. */
const DEVICE_TIMEOUT_MS = 120_000;

const CAPABILITIES: VolumeCapabilities<ZfsVolume> = {
  features: new Set(['revisions', 'online-resize', 'shrink', 'stable-read']),
  nativeFormats: new Map([['zfs', ZFS_FORMAT]]),
};

export class ZfsVolume extends Volume {
  declare readonly pool: ZfsPool;

  constructor(pool: ZfsPool, init: VolumeInit) {
    super(pool, { ...init, ...(init.size === undefined ? {} : { size: zvolSize(init.size) }) });
  }

  override get capabilities(): VolumeCapabilities {
    return CAPABILITIES as VolumeCapabilities;
  }

  override get path(): string {
    return devicePath(this.vid);
  }

  private get sourceVolume(): ZfsVolume {
    return this.source as ZfsVolume;
  }

  private get swapNames(): SwapNames {
    return { vid: this.vid, trash: this.pool.helper('trash', this.vid) };
  }

  override async usage(): Promise<number> {
    const props = await properties(this.vid, ['referenced']);
    return props ? Number(props.referenced) : 0;
  }

  // -- snapshots -------------------------------------------------------------------------

  override async revisions(): Promise<Map<string, string>> {
    return revisionMap(await snapshots(this.vid));
  }

  /** Makes the current data the committed state, dropping the older clean snapshots. */
  private async markClean(): Promise<void> {
    await zfsChange(zfsArgv.snapshot(`${this.vid}@${cleanName(randomSuffix())}`));
    await this.dropOldClean();
  }

  /** Older clean snapshots go; one a running VM was cloned from goes with that clone (-d). */
  private async dropOldClean(): Promise<void> {
    const stale = staleClean(await snapshots(this.vid));
    if (stale.length > 0) await zfsChange(zfsArgv.destroySnapshots(this.vid, stale));
  }

  private async pruneRevisions(keep = this.revisionsToKeep): Promise<void> {
    const drop = revisionsToPrune((await snapshots(this.vid)).filter(isRevision).map((s) => s.name), keep);
    if (drop.length > 0) await zfsChange(zfsArgv.destroySnapshots(this.vid, drop));
  }

  /**
   * Runs `fn` on the snapshot holding the committed state (the newest clean one, else the
   * newest revision), or on `revision`. A volume that keeps none (revisions_to_keep -1) gets
   * one made for `fn` when stopped, destroyed after (deferred, when `fn` cloned it).
   */
  async withSnapshot<T>(revision: string | undefined, fn: (snapshot: string) => Promise<T>): Promise<T> {
    if (revision !== undefined) return fn(await this.snapshotNamed(revision));
    if (!this.snapshotsDisabled) {
      const found = latestCommitted(await snapshots(this.vid));
      if (found) return fn(`${this.vid}@${found.name}`);
    }
    if (await this.isDirty()) throw new StoragePoolException(`Volume ${this.vid} must be stopped before its data can be read: it keeps no snapshots (revisions_to_keep -1).`, { path: this.vid });
    const name = exportName(randomSuffix());
    await zfsChange(zfsArgv.snapshot(`${this.vid}@${name}`));
    try {
      return await fn(`${this.vid}@${name}`);
    } finally {
      await zfsChange(zfsArgv.destroySnapshots(this.vid, [name]));
    }
  }

  /** A snapshot of this volume named by a revision id or a snapshot name. */
  async snapshotNamed(name: string): Promise<string> {
    const bare = bareName(name);
    if (!live(await snapshots(this.vid)).includes(bare)) throw new RevisionNotFoundError(this.vid, name);
    return `${this.vid}@${bare}`;
  }

  /** `zfs clone` of the committed state to `ds`. */
  private cloneTo(ds: string, props: Record<string, string>): Promise<void> {
    return this.withSnapshot(undefined, (snapshot) => zfsChange(zfsArgv.clone(snapshot, ds, props)).then(() => undefined));
  }

  /** `zfs send | zfs receive` of the committed state into `ds` (another zpool's dataset). */
  private sendTo(ds: string, signal: AbortSignal | undefined): Promise<void> {
    return this.withSnapshot(undefined, async (snapshot) => {
      await ensureParent(ds);
      await zfsSendReceive(zfsArgv.send(snapshot), zfsArgv.receive(ds), signal);
    });
  }

  // -- replacing the data whole ------------------------------------------------------------

  /**
   * Puts `replacement` in the volume's place and commits it: with a clean snapshot, or, for
   * a received stream, with the stream's own snapshot, kept so later incremental streams apply.
   */
  async replaceWith(replacement: string, options: { received?: boolean } = {}): Promise<void> {
    await swapIn(this.swapNames, replacement);
    await this.commitReceived(options.received === true);
  }

  /** After data arrived: a clean snapshot (or, for a received stream, its own) commits it. */
  async commitReceived(received: boolean): Promise<void> {
    if (received && latestCommitted(await snapshots(this.vid))) await this.dropOldClean();
    else await this.markClean();
    await this.refreshSize();
  }

  /** `size` from the zvol itself, after an operation that may have changed it. */
  private async refreshSize(): Promise<void> {
    const props = await properties(this.vid, ['volsize']);
    if (props) this._size = Number(props.volsize);
  }

  private async createEmpty(ds: string, size: number): Promise<void> {
    await zfsChange(zfsArgv.createVolume(ds, zvolSize(size), {
      volblocksize: String(VOLBLOCKSIZE), ...(this.rw ? {} : { readonly: 'on' }),
    }));
  }

  private waitForDevice(ds = this.vid): Promise<void> {
    return waitForDevice(devicePath(ds), { timeoutMs: DEVICE_TIMEOUT_MS });
  }

  private readonlyChange(current: string | undefined): { readonly?: string } {
    const wanted = this.rw ? 'off' : 'on';
    return current === wanted ? {} : { readonly: wanted };
  }

  // -- the contract's hooks (model/volume.ts) ------------------------------------------------

  protected override async cleanUp(options: { imports: boolean }): Promise<void> {
    await repairSwap(this.swapNames);
    await destroyDataset(this.pool.helper('tmp', this.vid));
    if (options.imports) await destroyDataset(this.pool.helper('importing', this.vid));
  }

  protected override async createStorage(): Promise<void> {
    await destroyDataset(this.vid);
    if (this.type !== 'origin') return;
    await this.createEmpty(this.vid, this._size);
    if (!this.snapshotsDisabled) await this.markClean();
  }

  protected override async removeStorage(): Promise<void> {
    await destroyDataset(this.vid);
    const exports = this.pool.helper('exported', this.vid, '.');
    for (const ds of await descendants(`${this.pool.container}/.exported`)) {
      if (ds.startsWith(exports)) await destroyDataset(ds);
    }
    // The VM's own dataset goes with its last volume (Qubes' driver left it behind).
    const parent = this.vid.slice(0, this.vid.lastIndexOf('/'));
    if (parent.startsWith(`${this.pool.vmRoot}/`)) await destroyIfEmpty(parent);
  }

  /** A fresh clone of the source's committed state, every start (as reflink does). */
  protected override async startSnapshot(): Promise<void> {
    await destroyDataset(this.vid);
    await this.sourceVolume.cloneTo(this.vid, this.rw ? {} : { readonly: 'on' });
    await this.waitForDevice();
  }

  protected override async startVolatile(): Promise<void> {
    await destroyDataset(this.vid);
    await this.createEmpty(this.vid, this._size);
    await this.waitForDevice();
  }

  protected override async startOrigin(): Promise<void> {
    const props = await properties(this.vid, ['readonly']);
    if (!props) throw new StoragePoolException(`Missing zvol ${this.vid} for volume ${this.vid}`, { path: this.vid });
    if (this.snapshotsDisabled) {
      // Used directly: no revision, and no committed snapshot that would go stale.
      const kept = live(await snapshots(this.vid));
      if (kept.length > 0) await zfsChange(zfsArgv.destroySnapshots(this.vid, kept));
    } else {
      if (keepsRevisions(this.revisionsToKeep)) await zfsChange(zfsArgv.snapshot(`${this.vid}@${revisionName(Date.now())}`));
      await this.pruneRevisions(); // also after revisions_to_keep went down, to 0 too
    }
    await zfsChange(zfsArgv.set(this.vid, { [DIRTY_PROPERTY]: 'on', ...this.readonlyChange(props.readonly) }));
    await this.waitForDevice();
  }

  /** Dirty: a crash while it ran. The uncommitted data is used as is, with today's rw. */
  protected override async resumeDirty(): Promise<void> {
    const change = this.readonlyChange((await properties(this.vid, ['readonly']))?.readonly);
    if (change.readonly) await zfsChange(zfsArgv.set(this.vid, change));
    await this.waitForDevice();
  }

  /**
   * The new committed state first, then the marker: a crash between the two leaves a dirty
   * volume, which the next stop commits again.
   */
  protected override async commitRunning(): Promise<void> {
    await flushDevice(this.vid);
    if (!this.snapshotsDisabled) await zfsChange(zfsArgv.snapshot(`${this.vid}@${cleanName(randomSuffix())}`));
    await zfsChange(zfsArgv.set(this.vid, { [DIRTY_PROPERTY]: 'off' }));
    if (!this.snapshotsDisabled) await this.dropOldClean();
  }

  protected override async discard(): Promise<void> {
    await destroyDataset(this.vid);
  }

  protected override async currentSize(): Promise<number> {
    const props = await properties(this.vid, ['volsize']);
    return props ? Number(props.volsize) : this._size;
  }

  protected override async revertTo(revision: string): Promise<void> {
    // rollback -r destroys the newer snapshots; a clone of one (a running VM's root, an
    // export) stops it, and ZFS says so: that VM must stop first.
    await zfsChange(zfsArgv.rollback(`${this.vid}@${revision}`)).catch((err: unknown) => {
      if (!isZfsFailure(err, 'dependent-clones')) throw err;
      throw new StoragePoolException(`Cannot revert ${this.vid} to ${revision}: a newer state of it is in use by a running VM or an export; stop that first.`, { path: this.vid, cause: err });
    });
    await zfsChange(zfsArgv.destroySnapshots(this.vid, [revision]));
    await this.markClean();
    await this.refreshSize();
  }

  protected override async resizeStorage(size: number): Promise<number> {
    const bytes = zvolSize(size);
    const props = await properties(this.vid, [DIRTY_PROPERTY]);
    if (props) {
      await zfsChange(zfsArgv.set(this.vid, { volsize: String(bytes) }));
      // A halted origin's committed state changed size: commit it, so exports see it.
      if (this.type === 'origin' && props[DIRTY_PROPERTY] !== 'on' && !this.snapshotsDisabled) await this.markClean();
    }
    return bytes;
  }

  /** A read-only clone of the committed snapshot: stable while the VM writes. */
  protected override async exportPath(): Promise<string> {
    const clone = this.pool.helper('exported', this.vid, `.${randomSuffix()}`);
    await this.cloneTo(clone, { readonly: 'on' });
    await this.waitForDevice(clone);
    return devicePath(clone);
  }

  protected override async endExport(path: string): Promise<void> {
    const clone = path.replace(/^\/dev\/zvol\//, '');
    if (!clone.startsWith(this.pool.helper('exported', this.vid, '.'))) {
      throw new StoragePoolException(`${path} is not an export of ${this.vid}.`, { path });
    }
    await destroyDataset(clone);
  }

  protected override async importTarget(size: number): Promise<string> {
    const target = this.pool.helper('importing', this.vid);
    await this.createEmpty(target, size);
    await this.waitForDevice(target);
    return devicePath(target);
  }

  /** importData() gives a new sparse zvol. */
  override get importTargetReadsZero(): boolean { return true; }

  protected override async endImport(success: boolean): Promise<void> {
    const target = this.pool.helper('importing', this.vid);
    if (success) await this.replaceWith(target);
    else await destroyDataset(target);
  }

  /**
   * Another volume's committed data in: a `zfs clone` of its committed snapshot when both
   * live under the same container (same zpool and, encrypted, the same key); `zfs send |
   * zfs receive` from another ZFS pool (only allocated blocks move, re-encrypted under this
   * pool's key); otherwise the copy engine from its export into a new sparse zvol, which
   * reads as zeros, so only data is written and holes stay holes.
   */
  protected override async importFrom(source: Volume, options: ImportVolumeOptions): Promise<string> {
    const tmp = this.pool.helper('tmp', this.vid);
    const zfsSource = source instanceof ZfsVolume ? source : undefined;
    let method: string;
    if (zfsSource && zfsSource.pool.container === this.pool.container) {
      await zfsSource.cloneTo(tmp, this.rw ? {} : { readonly: 'on' });
      method = 'zfs clone';
    } else if (zfsSource) {
      await zfsSource.sendTo(tmp, options.signal);
      if (!this.rw) await zfsChange(zfsArgv.set(tmp, { readonly: 'on' }));
      method = 'zfs send/recv';
    } else {
      const from = await source.export();
      try {
        await this.createEmpty(tmp, source.size);
        await this.waitForDevice(tmp);
        method = copyMethodName((await copyVolume(from, devicePath(tmp), { targetIsZero: true, signal: options.signal })).method);
      } finally {
        await source.exportEnd(from);
      }
    }
    await this.replaceWith(tmp);
    return method;
  }

  protected override async missingCommittedState(): Promise<{ what: string; path: string } | undefined> {
    return (await exists(this.vid)) ? undefined : { what: `zvol ${this.vid}`, path: this.vid };
  }

  protected override async hasUncommittedState(): Promise<boolean> {
    return (await properties(this.vid, [DIRTY_PROPERTY]))?.[DIRTY_PROPERTY] === 'on';
  }

  /** Outdated once the source's committed snapshot is another than the one this was cloned from. */
  protected override async sourceChanged(): Promise<boolean> {
    const origin = (await properties(this.vid, ['origin']))?.origin;
    if (origin === undefined || origin === '-') return false;
    const current = latestCommitted(await snapshots(this.sourceVolume.vid));
    return current === undefined || origin !== `${this.sourceVolume.vid}@${current.name}`;
  }
}
