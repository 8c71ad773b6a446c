/**
 * A volume of the ZFS pools: a sparse zvol whose committed states are snapshots.
 *   vid@qubes:<cause>:<ts>   a revision (cause before-start; ts seconds with microseconds)
 *   vid@qubes-clean-<R>      the latest committed state: what export() and snapshots of
 *                            this volume read while it runs (only the newest is kept)
 *   org.qvol:dirty=on        started and not yet stopped: the power-loss rule's marker
 * Every replacement (import, clone from another volume) is built beside the volume and
 * swapped in by renames through `.trash`, so a crash leaves the old volume or the new one;
 * repair() finishes or undoes a swap that a crash interrupted.
 */
import { open } from 'node:fs/promises';
import { copyVolume } from '../../io/copy.js';
import { waitForDevice } from '../../io/wait.js';
import { NotImplementedError, RevisionNotFoundError, StoragePoolException, StreamError, UsageError } from '../../model/errors.js';
import { summarize, type StreamSummary } from '../../io/streams/format.js';
import { isodate } from '../../model/isodate.js';
import { importMethodName, Volume, type VolumeInit } from '../../model/volume.js';
import {
  DIRTY_PROPERTY, descendants, destroyDataset, destroyIfEmpty, devicePath, ensureParent, exists, properties, randomSuffix, snapshots,
  type SnapshotInfo,
} from './datasets.js';
import { VOLBLOCKSIZE, type ZfsPool } from './pool.js';
import { isZfsFailure, sentSize, zfsArgv, zfsChange, zfsReceiveFrom, zfsSendReceive, zfsSendTo } from './zfs-command.js';

const REVISION = /^qubes:([a-z-]+):(\d+(?:\.\d+)?)$/;
const CLEAN_PREFIX = 'qubes-clean-';
/** A snapshot made only to export a volume that keeps no snapshots (revisions_to_keep -1). */
const EXPORT_PREFIX = 'qvol-export-';
/** udev takes its time under emulation; on real hardware a link appears in milliseconds. */
const DEVICE_TIMEOUT_MS = 120_000;

/** Rounds up to the zvol block size: ZFS refuses a volsize that is not a multiple of it. */
export function zvolSize(bytes: number): number {
  return Math.max(VOLBLOCKSIZE, Math.ceil(bytes / VOLBLOCKSIZE) * VOLBLOCKSIZE);
}

function isRevision(s: SnapshotInfo): boolean {
  return REVISION.test(s.name) && !s.deferred;
}

function isClean(s: SnapshotInfo): boolean {
  return s.name.startsWith(CLEAN_PREFIX) && !s.deferred;
}

/** The snapshot holding the committed state: the newest clean one, else the newest revision. */
function latestCommitted(all: SnapshotInfo[]): SnapshotInfo | undefined {
  return all.filter(isClean).at(-1) ?? all.filter(isRevision).at(-1);
}

export class ZfsVolume extends Volume {
  declare readonly pool: ZfsPool;

  constructor(pool: ZfsPool, init: VolumeInit) {
    super(pool, { ...init, ...(init.size === undefined ? {} : { size: zvolSize(init.size) }) });
  }

  override get path(): string {
    return devicePath(this.vid);
  }

  private get sourceVolume(): ZfsVolume {
    return this.source as ZfsVolume;
  }

  override async usage(): Promise<number> {
    const props = await properties(this.vid, ['referenced']);
    return props ? Number(props.referenced) : 0;
  }

  // -- snapshots -------------------------------------------------------------------------

  override async revisions(): Promise<Map<string, string>> {
    const found = (await snapshots(this.vid)).filter(isRevision);
    return new Map(found.map((s) => [s.name, isodate(Number(REVISION.exec(s.name)![2]))]));
  }

  /** Makes the current data the committed state, dropping the older clean snapshots. */
  private async markClean(): Promise<void> {
    await zfsChange(zfsArgv.snapshot(`${this.vid}@${CLEAN_PREFIX}${randomSuffix()}`));
    await this.dropOldClean();
  }

  /** Older clean snapshots go; one a running VM was cloned from goes with that clone (-d). */
  private async dropOldClean(): Promise<void> {
    const clean = (await snapshots(this.vid)).filter(isClean).map((s) => s.name);
    if (clean.length > 1) await zfsChange(zfsArgv.destroySnapshots(this.vid, clean.slice(0, -1)));
  }

  private async pruneRevisions(keep = this.revisionsToKeep): Promise<void> {
    const revisions = (await snapshots(this.vid)).filter(isRevision).map((s) => s.name);
    const drop = revisions.slice(0, Math.max(0, revisions.length - Math.max(0, keep)));
    if (drop.length > 0) await zfsChange(zfsArgv.destroySnapshots(this.vid, drop));
  }

  /**
   * The snapshot holding the committed state: the newest clean one, else the newest revision.
   * A volume that keeps none (revisions_to_keep -1) gets one made now, when stopped.
   */
  async committedSnapshot(): Promise<{ snapshot: string; temporary: boolean }> {
    if (!this.snapshotsDisabled) {
      const found = latestCommitted(await snapshots(this.vid));
      if (found) return { snapshot: `${this.vid}@${found.name}`, temporary: false };
    }
    if (await this.isDirty()) throw new StoragePoolException(`Volume ${this.vid} must be stopped before its data can be read: it keeps no snapshots (revisions_to_keep -1).`, { path: this.vid });
    const snapshot = `${this.vid}@${EXPORT_PREFIX}${randomSuffix()}`;
    await zfsChange(zfsArgv.snapshot(snapshot));
    return { snapshot, temporary: true };
  }

  /**
   * `zfs clone` of the committed state to `ds`. A snapshot made just for it is marked for
   * deferred destroy at once, so it goes with the clone.
   */
  async cloneTo(ds: string, props: Record<string, string>): Promise<void> {
    const { snapshot, temporary } = await this.committedSnapshot();
    await zfsChange(zfsArgv.clone(snapshot, ds, props));
    if (temporary) await zfsChange(zfsArgv.destroySnapshots(this.vid, [snapshot.split('@')[1]!]));
  }

  // -- crash repair ----------------------------------------------------------------------

  /**
   * Finishes or undoes what a crash interrupted: a swap (the volume back from `.trash` when
   * the new one never arrived, the old one destroyed when it did), a half-made clone or copy,
   * and (with `imports`) an import that was never ended.
   */
  private async repair(options: { imports?: boolean } = {}): Promise<void> {
    const trash = this.pool.helper('trash', this.vid);
    if (await exists(trash)) {
      if (await exists(this.vid)) await destroyDataset(trash);
      else await zfsChange(zfsArgv.rename(trash, this.vid));
    }
    await destroyDataset(this.pool.helper('tmp', this.vid));
    if (options.imports) await destroyDataset(this.pool.helper('importing', this.vid));
  }

  /**
   * Puts `replacement` in the volume's place; the old volume and its snapshots go. The new
   * data is committed with a clean snapshot, unless `received`: a received stream's own
   * snapshot is the committed state, kept as it is so later incremental streams apply.
   */
  private async swapIn(replacement: string, received = false): Promise<void> {
    const trash = this.pool.helper('trash', this.vid);
    await this.flushDevice(replacement);
    const old = await exists(this.vid);
    if (old) await zfsChange(zfsArgv.rename(this.vid, trash));
    await zfsChange(zfsArgv.rename(replacement, this.vid));
    if (old) await destroyDataset(trash);
    await this.commitReceived(received);
  }

  /** After data arrived: a clean snapshot (or, for a received stream, its own) commits it. */
  private async commitReceived(received: boolean): Promise<void> {
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

  /**
   * Writes what the kernel still holds for the zvol in its page cache: a snapshot takes what
   * ZFS has, and buffered writes to /dev/zdN are not there until flushed. A device that is
   * not there (its key unloaded, never started) has nothing to flush.
   */
  private async flushDevice(ds = this.vid): Promise<void> {
    const fh = await open(devicePath(ds), 'r').catch(() => undefined);
    if (!fh) return;
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  private waitForDevice(ds = this.vid): Promise<void> {
    return waitForDevice(devicePath(ds), { timeoutMs: DEVICE_TIMEOUT_MS });
  }

  // -- the contract ----------------------------------------------------------------------

  override create(): Promise<void> {
    return this.lock.run(async () => {
      await this.repair({ imports: true });
      await destroyDataset(this.vid);
      if (this.saveOnStop && !this.snapOnStart) {
        await this.pool.beforeUse();
        try {
          await this.createEmpty(this.vid, this._size);
          if (!this.snapshotsDisabled) await this.markClean();
        } finally {
          await this.pool.afterUse();
        }
      }
    });
  }

  override start(): Promise<void> {
    return this.lock.run(async () => {
      await this.pool.beforeUse();
      await this.repair({ imports: true });
      if (this.snapOnStart) {
        // A fresh clone of the source's committed state, every start (as reflink does).
        await destroyDataset(this.vid);
        await this.sourceVolume.cloneTo(this.vid, this.rw ? {} : { readonly: 'on' });
      } else if (!this.saveOnStop) {
        await destroyDataset(this.vid);
        await this.createEmpty(this.vid, this._size);
      } else {
        const props = await properties(this.vid, [DIRTY_PROPERTY, 'readonly']);
        if (!props) throw new StoragePoolException(`Missing zvol ${this.vid} for volume ${this.vid}`, { path: this.vid });
        // Dirty: a crash while it ran. The power-loss rule: use the uncommitted data as is.
        if (props[DIRTY_PROPERTY] !== 'on') {
          if (this.snapshotsDisabled) {
            // Used directly: no revision, and no committed snapshot that would go stale.
            const kept = (await snapshots(this.vid)).filter((x) => !x.deferred).map((x) => x.name);
            if (kept.length > 0) await zfsChange(zfsArgv.destroySnapshots(this.vid, kept));
          } else {
            if (this.revisionsToKeep > 0) await zfsChange(zfsArgv.snapshot(`${this.vid}@qubes:before-start:${(Date.now() / 1000).toFixed(6)}`));
            await this.pruneRevisions(); // also after revisions_to_keep went down, to 0 too
          }
          await zfsChange(zfsArgv.set(this.vid, { [DIRTY_PROPERTY]: 'on', ...this.readonlyChange(props.readonly) }));
        } else if (this.readonlyChange(props.readonly).readonly) {
          await zfsChange(zfsArgv.set(this.vid, this.readonlyChange(props.readonly)));
        }
      }
      await this.waitForDevice();
    });
  }

  private readonlyChange(current: string | undefined): { readonly?: string } {
    const wanted = this.rw ? 'off' : 'on';
    return current === wanted ? {} : { readonly: wanted };
  }

  override stop(): Promise<void> {
    return this.lock.run(async () => {
      await this.repair({ imports: true });
      if (this.saveOnStop && !this.snapOnStart) {
        if (await this.isDirty()) {
          // The new committed state first, then the marker: a crash between the two leaves
          // a dirty volume, which the next stop commits again.
          await this.flushDevice();
          if (!this.snapshotsDisabled) await zfsChange(zfsArgv.snapshot(`${this.vid}@${CLEAN_PREFIX}${randomSuffix()}`));
          await zfsChange(zfsArgv.set(this.vid, { [DIRTY_PROPERTY]: 'off' }));
          if (!this.snapshotsDisabled) await this.dropOldClean();
        }
      } else {
        if (!this.snapOnStart) {
          await this.refreshSize(); // keep a resize made while running
        }
        await destroyDataset(this.vid);
      }
      await this.pool.afterUse();
    });
  }

  override revert(revision?: string): Promise<void> {
    return this.lock.run(async () => {
      if (await this.isDirty()) throw new StoragePoolException(`Cannot revert: ${this.vid} is not cleanly stopped`, { path: this.vid });
      const revisions = [...(await this.revisions()).keys()];
      const id = revision ?? revisions.at(-1);
      if (id === undefined || !revisions.includes(id)) throw new RevisionNotFoundError(this.vid, revision ?? 'latest');
      await this.pool.beforeUse();
      try {
        // rollback -r destroys the newer snapshots; a clone of one (a running VM's root, an
        // export) stops it, and ZFS says so: that VM must stop first.
        await zfsChange(zfsArgv.rollback(`${this.vid}@${id}`)).catch((err: unknown) => {
          if (!isZfsFailure(err, 'dependent-clones')) throw err;
          throw new StoragePoolException(`Cannot revert ${this.vid} to ${id}: a newer state of it is in use by a running VM or an export; stop that first.`, { path: this.vid, cause: err });
        });
        await zfsChange(zfsArgv.destroySnapshots(this.vid, [id]));
        await this.markClean();
        await this.refreshSize();
      } finally {
        await this.pool.afterUse();
      }
    });
  }

  override resize(size: number): Promise<void> {
    return this.lock.run(async () => {
      if (!this.rw) throw new StoragePoolException(`Cannot resize: ${this.vid} is read-only`, { path: this.vid });
      const bytes = zvolSize(size);
      const props = await properties(this.vid, [DIRTY_PROPERTY]);
      if (props) {
        await this.pool.beforeUse();
        try {
          await zfsChange(zfsArgv.set(this.vid, { volsize: String(bytes) }));
          // A halted origin's committed state changed size: commit it, so exports see it.
          if (this.saveOnStop && !this.snapOnStart && props[DIRTY_PROPERTY] !== 'on' && !this.snapshotsDisabled) await this.markClean();
        } finally {
          await this.pool.afterUse();
        }
      }
      this._size = bytes;
    });
  }

  override async export(): Promise<string> {
    if (!this.saveOnStop) throw new NotImplementedError(`Cannot export: ${this.vid} is not save_on_stop`);
    await this.pool.beforeUse();
    const clone = this.pool.helper('exported', this.vid, `.${randomSuffix()}`);
    await this.cloneTo(clone, { readonly: 'on' });
    await this.waitForDevice(clone);
    return devicePath(clone);
  }

  override async exportEnd(path: string): Promise<void> {
    const clone = path.replace(/^\/dev\/zvol\//, '');
    if (!clone.startsWith(this.pool.helper('exported', this.vid, '.'))) {
      throw new StoragePoolException(`${path} is not an export of ${this.vid}.`, { path });
    }
    await destroyDataset(clone);
    await this.pool.afterUse();
  }

  override importData(size: number): Promise<string> {
    return this.lock.run(async () => {
      if (!this.saveOnStop) throw new NotImplementedError(`Cannot import_data: ${this.vid} is not save_on_stop`);
      if (await this.isDirty()) throw new StoragePoolException(`Cannot import data into ${this.vid}: it is running; stop it first.`, { path: this.vid });
      await this.pool.beforeUse();
      await this.repair({ imports: true });
      const target = this.pool.helper('importing', this.vid);
      await this.createEmpty(target, size);
      await this.waitForDevice(target);
      return devicePath(target);
    });
  }

  /** importData() gives a new sparse zvol. */
  override get importTargetReadsZero(): boolean { return true; }

  override importDataEnd(success: boolean): Promise<void> {
    return this.lock.run(async () => {
      const target = this.pool.helper('importing', this.vid);
      try {
        if (success) await this.swapIn(target);
        else await destroyDataset(target);
      } finally {
        await this.pool.afterUse();
      }
    });
  }

  /**
   * Another volume's committed data in: a `zfs clone` of its committed snapshot when both
   * live under the same container (same zpool and, encrypted, the same key); otherwise the
   * copy engine from its export into a new sparse zvol, which reads as zeros, so only data
   * is written and holes stay holes.
   */
  override importVolume(source: Volume): Promise<Volume> {
    return this.lock.run(async () => {
      if (!this.saveOnStop) return this;
      if (await this.isDirty()) throw new StoragePoolException(`Cannot import into ${this.vid}: it is running; stop it first.`, { path: this.vid });
      await this.pool.beforeUse();
      try {
        await this.repair();
        const tmp = this.pool.helper('tmp', this.vid);
        if (source instanceof ZfsVolume && source.pool.container === this.pool.container) {
          await source.cloneTo(tmp, this.rw ? {} : { readonly: 'on' });
          this.importMethod = 'zfs clone';
        } else if (source instanceof ZfsVolume) {
          // Another zpool or encryption root: the ZFS stream moves only allocated blocks.
          await source.sendTo(tmp);
          if (!this.rw) await zfsChange(zfsArgv.set(tmp, { readonly: 'on' }));
          this.importMethod = 'zfs send/recv';
        } else {
          const from = await source.export();
          try {
            await this.createEmpty(tmp, source.size);
            await this.waitForDevice(tmp);
            this.importMethod = importMethodName((await copyVolume(from, devicePath(tmp), { targetIsZero: true })).method);
          } finally {
            await source.exportEnd(from);
          }
        }
        await this.swapIn(tmp);
      } finally {
        await this.pool.afterUse();
      }
      return this;
    });
  }

  // -- streams (the zfs format) ------------------------------------------------------------

  /** A snapshot of this volume named by a revision id or a snapshot name. */
  private async snapshotNamed(name: string): Promise<string> {
    const bare = name.includes('@') ? name.slice(name.indexOf('@') + 1) : name;
    if (!(await snapshots(this.vid)).some((s) => s.name === bare && !s.deferred)) throw new RevisionNotFoundError(this.vid, name);
    return `${this.vid}@${bare}`;
  }

  /** `zfs send | zfs receive` of the committed state into `ds` (another zpool's dataset). */
  async sendTo(ds: string): Promise<void> {
    await this.pool.beforeUse();
    try {
      const { snapshot, temporary } = await this.committedSnapshot();
      try {
        await ensureParent(ds);
        await zfsSendReceive(zfsArgv.send(snapshot), zfsArgv.receive(ds));
      } finally {
        if (temporary) await zfsChange(zfsArgv.destroySnapshots(this.vid, [snapshot.split('@')[1]!]));
      }
    } finally {
      await this.pool.afterUse();
    }
  }

  /**
   * The `zfs send` stream of the committed state (or of `revision`) into `outFd`; with
   * `since`, an incremental stream from that revision or snapshot. The pre-start data of a
   * running volume, as every export.
   */
  async sendStream(outFd: number, options: { since?: string | undefined; revision?: string | undefined } = {}): Promise<StreamSummary> {
    if (!this.saveOnStop) throw new NotImplementedError(`Cannot export: ${this.vid} is not save_on_stop`);
    const started = process.hrtime.bigint();
    await this.pool.beforeUse();
    try {
      const from = options.since === undefined ? undefined : await this.snapshotNamed(options.since);
      const { snapshot, temporary } = options.revision === undefined
        ? await this.committedSnapshot() : { snapshot: await this.snapshotNamed(options.revision), temporary: false };
      try {
        const bytes = sentSize(await zfsSendTo(zfsArgv.send(snapshot, from), outFd));
        const props = await properties(snapshot, ['logicalreferenced']);
        const data = Math.min(this.size, Number(props?.logicalreferenced ?? 0));
        return summarize('zfs', { bytes, size: this.size, dataBytes: data, holeBytes: this.size - data, method: from ? 'zfs send -i' : 'zfs send' }, started);
      } finally {
        if (temporary) await zfsChange(zfsArgv.destroySnapshots(this.vid, [snapshot.split('@')[1]!]));
      }
    } finally {
      await this.pool.afterUse();
    }
  }

  /**
   * A `zfs send` stream from `inFd`. A full stream is received beside the volume and swapped
   * in only when whole (ZFS receives all or nothing), its snapshot kept as the committed
   * state; `incremental` applies the stream to the stopped volume in place, which ZFS allows
   * only when the volume's newest snapshot is the stream's base. `size`, when given, must be
   * the stream's volume size.
   */
  receiveStream(inFd: number, options: { size?: number | undefined; incremental?: boolean } = {}): Promise<StreamSummary> {
    return this.lock.run(async () => {
      if (!this.saveOnStop) throw new NotImplementedError(`Cannot import_data: ${this.vid} is not save_on_stop`);
      if (await this.isDirty()) throw new StoragePoolException(`Cannot import data into ${this.vid}: it is running; stop it first.`, { path: this.vid });
      if (options.incremental && options.size !== undefined) throw new UsageError('--size does not apply to an incremental stream: it changes a volume in place.');
      const started = process.hrtime.bigint();
      await this.pool.beforeUse();
      try {
        await this.repair({ imports: true });
        const target = options.incremental ? this.vid : this.pool.helper('importing', this.vid);
        await ensureParent(target);
        await zfsReceiveFrom(zfsArgv.receive(target), inFd);
        const props = await properties(target, ['volsize', 'logicalreferenced']);
        const volsize = Number(props?.volsize ?? 0);
        if (options.size !== undefined && zvolSize(options.size) !== volsize) {
          await destroyDataset(target);
          throw new StreamError('STREAM_SIZE_MISMATCH', `Import into ${this.vid} refused: the stream holds a ${volsize}-byte volume but the size given is ${options.size}; the volume is unchanged.`, 0);
        }
        if (options.incremental) await this.commitReceived(true);
        else await this.swapIn(target, true);
        const data = Math.min(volsize, Number(props?.logicalreferenced ?? 0));
        return summarize('zfs', { bytes: 0, size: volsize, dataBytes: data, holeBytes: volsize - data, method: 'zfs receive' }, started);
      } finally {
        await this.pool.afterUse();
      }
    });
  }

  override remove(): Promise<void> {
    return this.lock.run(async () => {
      this.pool.forget(this.vid);
      await this.repair({ imports: true });
      await destroyDataset(this.vid);
      const exports = this.pool.helper('exported', this.vid, '.');
      for (const ds of await descendants(`${this.pool.container}/.exported`)) {
        if (ds.startsWith(exports)) await destroyDataset(ds);
      }
      // The VM's own dataset goes with its last volume (Qubes' driver left it behind).
      const parent = this.vid.slice(0, this.vid.lastIndexOf('/'));
      if (parent.startsWith(`${this.pool.vmRoot}/`)) await destroyIfEmpty(parent);
    });
  }

  override async verify(): Promise<boolean> {
    const needed = this.snapOnStart ? this.sourceVolume.vid : this.saveOnStop ? this.vid : undefined;
    if (needed !== undefined && !(await exists(needed))) {
      throw new StoragePoolException(`Missing zvol ${needed} for volume ${this.vid}`, { path: needed });
    }
    return true;
  }

  override async isDirty(): Promise<boolean> {
    if (!this.saveOnStop) return false;
    return (await properties(this.vid, [DIRTY_PROPERTY]))?.[DIRTY_PROPERTY] === 'on';
  }

  /** Outdated once the source's committed snapshot is another than the one this was cloned from. */
  override async isOutdated(): Promise<boolean> {
    if (!this.snapOnStart) return false;
    const origin = (await properties(this.vid, ['origin']))?.origin;
    if (origin === undefined || origin === '-') return false;
    const current = latestCommitted(await snapshots(this.sourceVolume.vid));
    return current === undefined || origin !== `${this.sourceVolume.vid}@${current.name}`;
  }
}

