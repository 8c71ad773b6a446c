/**
 * The driver-independent volume of the Qubes storage model (docs/qubes-contract.md): its
 * configuration and validation, the four volume types, the `ephemeral` rules, and the
 * contract itself. The public operations live here, once: each takes the per-volume lock,
 * checks its preconditions with the Qubes messages, brackets data access with
 * `pool.using()`, dispatches on the volume type, and calls the protected hooks a driver
 * implements for its storage. A driver never re-checks what this class checked.
 */
import { Mutex } from '../util/mutex.js';
import { NotImplementedError, QubesValueError, StoragePoolException, UnsupportedFormatError } from '../errors/index.js';
import type { StreamSummary } from '../io/streams/format.js';
import { closeEphemeral, mapperName, openEphemeral, type CryptOptions, type EphemeralMapping, type MappingBacking } from '../io/dm-crypt.js';
import type { NativeFormat, NativeReceiveOptions, NativeSendOptions, VolumeCapabilities, VolumeFeature } from './features.js';
import type { Pool } from './pool.js';
import { resolveRevision } from './revisions.js';

export type VolumeType = 'volatile' | 'snapshot' | 'origin' | 'origin_snapshot';

/** A volume's persisted configuration, with the keys and meanings of Qubes' `config`. */
export interface VolumeConfig {
  name: string;
  pool: string;
  vid: string;
  revisions_to_keep: number;
  rw: boolean;
  save_on_stop: boolean;
  snap_on_start: boolean;
  size?: number;
  /** The source volume's vid (snap_on_start). */
  source?: string;
  /** Present only when set explicitly. */
  ephemeral?: boolean;
}

export interface VolumeInit {
  name: string;
  vid: string;
  revisionsToKeep?: number;
  rw?: boolean;
  saveOnStop?: boolean;
  snapOnStart?: boolean;
  size?: number;
  source?: Volume;
  ephemeral?: boolean;
  /** The VM the volume belongs to, for messages. */
  vm?: string;
}

/** Where a VM sees a volume: the device path and the frontend name (xvda, ...). */
export interface BlockDevice {
  path: string;
  name: string;
  rw: boolean;
  domain?: string;
  devtype: 'disk' | 'cdrom';
}

const NO_CAPABILITIES: VolumeCapabilities = { features: new Set(), nativeFormats: new Map() };

/** How import_volume moved the data, for reports: the driver's word (reflink, zfs clone, ...). */
export interface ImportVolumeOptions {
  /** Ends the copy early: it fails as CANCELLED, nothing of it is left, the volume is unchanged. */
  signal?: AbortSignal | undefined;
}

export interface ImportReport {
  method: string;
}

export abstract class Volume {
  readonly name: string;
  readonly vid: string;
  readonly pool: Pool;
  readonly vm: string | undefined;
  readonly source: Volume | undefined;
  readonly snapOnStart: boolean;
  saveOnStop: boolean;
  rw: boolean;
  revisionsToKeep: number;
  /** The backend domain for a device served by another VM; always undefined here. */
  domain: string | undefined = undefined;
  readonly devtype: 'disk' | 'cdrom' = 'disk';
  /** Serialises create, remove, start, stop, revert, resize and the imports. */
  readonly lock = new Mutex();
  protected _size: number;
  private _ephemeral: boolean | undefined;

  constructor(pool: Pool, init: VolumeInit) {
    this.pool = pool;
    this.name = init.name;
    this.vid = init.vid;
    this.vm = init.vm;
    this.snapOnStart = init.snapOnStart ?? false;
    this.saveOnStop = init.saveOnStop ?? false;
    this.rw = init.rw ?? false;
    this.revisionsToKeep = Math.trunc(init.revisionsToKeep ?? 0);
    this._size = init.size ?? 0;
    this._ephemeral = init.ephemeral;
    if (this.snapOnStart && init.source === undefined) {
      throw new StoragePoolException(`snap_on_start specified on '${this.name}' but no volume source set`);
    }
    if (!this.snapOnStart && init.source !== undefined) {
      throw new StoragePoolException(`source specified on '${this.name}' but no snap_on_start set`);
    }
    if (init.source !== undefined && init.source.pool !== pool) {
      throw new StoragePoolException(`source of '${this.name}' (${init.source.vid}) must be in pool ${pool.name}`);
    }
    this.source = init.source;
  }

  /** volatile, snapshot, origin, or origin_snapshot (which no driver supports). */
  get type(): VolumeType {
    if (this.snapOnStart) return this.saveOnStop ? 'origin_snapshot' : 'snapshot';
    return this.saveOnStop ? 'origin' : 'volatile';
  }

  /** `revisions_to_keep == -1` on an origin: the volume is used directly, without snapshots. */
  get snapshotsDisabled(): boolean {
    return this.revisionsToKeep === -1 && !this.snapOnStart && this.saveOnStop;
  }

  /**
   * Whether the volume is encrypted with a throw-away key. When not set explicitly it follows
   * the pool's `ephemeral_volatile`, read live, for rw volatile volumes only.
   */
  get ephemeral(): boolean {
    if (this._ephemeral !== undefined) return this._ephemeral;
    if (this.snapOnStart || this.saveOnStop || this.domain !== undefined || !this.rw) return false;
    return this.pool.ephemeralVolatile;
  }

  set ephemeral(value: boolean) {
    if (!value) {
      this._ephemeral = false;
      return;
    }
    if (this.snapOnStart || this.saveOnStop || this.domain !== undefined || !this.rw) {
      throw new QubesValueError('Cannot enable ephemeral on snap_on_start or save_on_stop or non-dom0 or not writable volume');
    }
    this._ephemeral = true;
  }

  /**
   * Takes the settings a host changes on a volume object in place between calls (qubesd
   * sets rw, revisions_to_keep, ephemeral and size on its Volume): the daemon hands each
   * call's config to the one object it keeps per volume, so its lock and caches live on.
   * `ephemeral` undefined means not set explicitly (it follows the pool's default again).
   */
  applyLiveSettings(settings: { rw: boolean; revisionsToKeep: number; size: number; ephemeral: boolean | undefined }): void {
    this.rw = settings.rw;
    this.revisionsToKeep = Math.trunc(settings.revisionsToKeep);
    this._size = settings.size;
    if (settings.ephemeral === undefined) this._ephemeral = undefined;
    else this.ephemeral = settings.ephemeral;
  }

  get config(): VolumeConfig {
    const config: VolumeConfig = {
      name: this.name,
      pool: this.pool.name,
      vid: this.vid,
      revisions_to_keep: this.revisionsToKeep,
      rw: this.rw,
      save_on_stop: this.saveOnStop,
      snap_on_start: this.snapOnStart,
    };
    if (this._ephemeral !== undefined) config.ephemeral = this._ephemeral;
    if (this._size) config.size = this._size;
    if (this.source) config.source = this.source.vid;
    return config;
  }

  /** Bytes the volume offers. */
  get size(): number {
    return this._size;
  }

  /** Bytes allocated on storage. */
  usage(): Promise<number> {
    return Promise.resolve(0);
  }

  /** The device path the VM is given; undefined where there is none yet. */
  get path(): string | undefined {
    return undefined;
  }

  blockDevice(): BlockDevice | undefined {
    const path = this.path;
    if (path === undefined) return undefined;
    return { path, name: this.name, rw: this.rw, devtype: this.devtype, ...(this.domain ? { domain: this.domain } : {}) };
  }

  private notImplemented(method: string): never {
    throw new NotImplementedError(`Volume ${this.constructor.name} has ${method}() not implemented`);
  }

  // -- capabilities ------------------------------------------------------------------------

  /** What this driver's volumes can do, and the formats of its own (see model/features). */
  get capabilities(): VolumeCapabilities {
    return NO_CAPABILITIES;
  }

  has(feature: VolumeFeature): boolean {
    return this.capabilities.features.has(feature);
  }

  /** The driver's own transfer format `name`, or undefined. */
  nativeFormat(name: string): NativeFormat<this> | undefined {
    return this.capabilities.nativeFormats.get(name) as NativeFormat<this> | undefined;
  }

  // -- the contract: public operations -------------------------------------------------------

  /**
   * Runs `fn` under the per-volume lock: mutating operations never overlap, within this
   * process (a mutex) or across processes (the pool's flock, model/pool-locks.ts).
   */
  protected locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.run(() => this.pool.locks.volume(this.vid, fn));
  }

  /** Called once in the volume's lifetime; nothing touches storage before it. */
  create(): Promise<void> {
    return this.locked(async () => {
      await this.cleanUp({ imports: true });
      // Only an origin has data at create: the others need no key or activation yet.
      if (this.type === 'origin') await this.pool.using(() => this.createStorage());
      else await this.createStorage();
    });
  }

  /** Removes the volume and everything that belongs to it. */
  remove(): Promise<void> {
    return this.locked(async () => {
      this.pool.forget(this.vid);
      await this.cleanUp({ imports: true });
      await this.removeStorage();
    });
  }

  /**
   * Prepares for the VM's start: a snapshot starts from its source's committed state, a
   * volatile volume empty, an origin from its committed state (saved as a revision first).
   * A dirty origin (its host died while it ran) is used as it is: the power-loss rule.
   * The data stays in use until stop().
   */
  start(): Promise<void> {
    return this.locked(() => this.pool.using(async () => {
      await this.cleanUp({ imports: true });
      if (this.snapOnStart) await this.startSnapshot();
      else if (!this.saveOnStop) await this.startVolatile();
      else if (await this.isDirty()) await this.resumeDirty();
      else await this.startOrigin();
    }, { hold: true }));
  }

  /**
   * Commits if save_on_stop (and dirty), otherwise discards; ends the hold start() took.
   * Also commits what a crash left, so it must work without the data being reachable (a
   * `recover` after a reboot must not ask for a passphrase).
   */
  stop(): Promise<void> {
    return this.locked(async () => {
      // An import pending here is what a crash left: a caller imports between import_data
      // and import_data_end, never across a stop (the registry holds the VM's lock for both).
      await this.cleanUp({ imports: true });
      if (this.saveOnStop && !this.snapOnStart) {
        if (await this.isDirty()) await this.commitRunning();
      } else {
        if (!this.snapOnStart) this._size = await this.currentSize(); // keep a resize made while running
        await this.discard();
      }
      await this.pool.release();
    });
  }

  /**
   * Qubes' start_encrypted: closes a mapping left at `path` (a crash, a VM killed), starts
   * the volume, then maps its device at `path` through dm-crypt with a new throw-away key
   * and zeroes the mapping's first 64 KiB. A failure after the start stops the volume again.
   */
  async startEncrypted(path: string, options: CryptOptions = {}): Promise<EphemeralMapping> {
    mapperName(path);
    await closeEphemeral(path, options);
    await this.start();
    try {
      const backing = await this.openForMapping();
      try {
        return await openEphemeral(path, { fd: backing.fd, path: backing.path }, options);
      } finally {
        await backing.close();
      }
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  /** Qubes' stop_encrypted: closes the mapping at `path` if there is one, then stops. */
  async stopEncrypted(path: string, options: CryptOptions = {}): Promise<void> {
    await closeEphemeral(path, options);
    await this.stop();
  }

  /** Reverts to `revision`, by default the latest; the state it replaces is kept as a revision. */
  revert(revision?: string): Promise<void> {
    return this.locked(async () => {
      if (await this.isDirty()) throw new StoragePoolException(`Cannot revert: ${this.vid} is not cleanly stopped`, { path: this.vid });
      const id = resolveRevision(this.vid, await this.revisions(), revision);
      await this.pool.using(() => this.revertTo(id));
    });
  }

  /** Resizes the volume (a running one in place); `size` may be rounded up by the driver. */
  resize(size: number): Promise<void> {
    return this.locked(async () => {
      if (!this.rw) throw new StoragePoolException(`Cannot resize: ${this.vid} is read-only`, { path: this.vid });
      this._size = await this.pool.using(() => this.resizeStorage(size));
    });
  }

  /** A readable path with the committed (pre-start) data, even while the VM runs. */
  async export(): Promise<string> {
    this.requireSaveOnStop('export');
    return this.pool.using(() => this.exportPath(), { hold: true });
  }

  /** Cleans up after export(). */
  async exportEnd(path: string): Promise<void> {
    try {
      await this.endExport(path);
    } finally {
      await this.pool.release();
    }
  }

  /** A writable path whose contents replace the volume's, `size` bytes, after create(). */
  importData(size: number): Promise<string> {
    return this.locked(async () => {
      this.requireSaveOnStop('import_data');
      await this.requireNotDirty(`Cannot import data to dirty volume ${this.vid}, stop the qube first`);
      return this.pool.using(async () => {
        await this.cleanUp({ imports: true });
        return this.importTarget(size);
      }, { hold: true });
    });
  }

  /** Always called after importData(): commits on success, discards otherwise. */
  importDataEnd(success: boolean): Promise<void> {
    return this.locked(async () => {
      try {
        await this.endImport(success);
      } finally {
        await this.pool.release();
      }
    });
  }

  /**
   * Copies another volume's committed data in, possibly from another pool, and says how.
   * A volume that is not save_on_stop has nothing to keep: nothing happens (as in Qubes).
   */
  importVolume(source: Volume, options: ImportVolumeOptions = {}): Promise<ImportReport> {
    return this.locked(async () => {
      if (!this.saveOnStop) return { method: 'none' };
      await this.requireNotDirty(`Cannot import to dirty volume ${this.vid} - start and stop a qube to cleanup`);
      return this.pool.using(async () => {
        await this.cleanUp({ imports: false });
        return { method: await this.importFrom(source, options) };
      });
    });
  }

  /**
   * Writes the committed state (or a revision, or the change since one) in the driver's own
   * format `format` to `outFd`: the export of a transfer format (model/features.ts).
   */
  async sendNative(format: string, outFd: number, options: NativeSendOptions = {}): Promise<StreamSummary> {
    const codec = this.requireNativeFormat(format);
    this.requireSaveOnStop('export');
    return this.pool.using(() => codec.send(this, outFd, options));
  }

  /** Replaces the stopped volume's data from a stream in the driver's own format `format`. */
  receiveNative(format: string, inFd: number, options: NativeReceiveOptions = {}): Promise<StreamSummary> {
    const codec = this.requireNativeFormat(format);
    return this.locked(async () => {
      this.requireSaveOnStop('import_data');
      await this.requireNotDirty(`Cannot import data to dirty volume ${this.vid}, stop the qube first`);
      return this.pool.using(async () => {
        await this.cleanUp({ imports: true });
        return codec.receive(this, inFd, options);
      });
    });
  }

  private requireNativeFormat(format: string): NativeFormat<this> {
    const codec = this.nativeFormat(format);
    if (codec) return codec;
    const own = [...this.capabilities.nativeFormats.keys()];
    throw new UnsupportedFormatError(`Volume ${this.vid} is in a ${this.pool.driver} pool, which does not move the ${format} format${own.length > 0 ? ` (it has ${own.join(', ')})` : ''}: use raw or sparse.`, { path: this.vid });
  }

  /** Resolves true, or throws StoragePoolException naming the storage that is missing. */
  async verify(): Promise<boolean> {
    const holder = this.snapOnStart ? this.source : this.saveOnStop ? this : undefined;
    const missing = holder === undefined ? undefined : await holder.missingCommittedState();
    if (missing !== undefined) {
      throw new StoragePoolException(`Missing ${missing.what} for volume ${this.vid}`, { path: missing.path });
    }
    return true;
  }

  /** Not cleanly stopped and committed (includes "running"). */
  async isDirty(): Promise<boolean> {
    return this.saveOnStop && this.hasUncommittedState();
  }

  /** A snap_on_start volume whose source changed since it started. */
  async isOutdated(): Promise<boolean> {
    return this.snapOnStart && this.sourceChanged();
  }

  /** Revision id -> isodate timestamp, oldest first. */
  async revisions(): Promise<Map<string, string>> {
    throw new NotImplementedError(`${this.constructor.name} has revisions not implemented`);
  }

  /** Whether the path importData() gives already reads zero everywhere (a new zvol), so an
   * import writes only data. A regular file is emptied by the importer itself. */
  get importTargetReadsZero(): boolean { return false; }

  private requireSaveOnStop(operation: 'export' | 'import_data'): void {
    if (!this.saveOnStop) throw new NotImplementedError(`Cannot ${operation}: ${this.vid} is not save_on_stop`);
  }

  private async requireNotDirty(message: string): Promise<void> {
    if (await this.isDirty()) throw new StoragePoolException(message, { path: this.vid });
  }

  // -- the hooks a driver implements ---------------------------------------------------------
  // Each default raises Qubes' NotImplementedError naming the public operation, so a driver
  // that leaves one out fails as a Qubes driver would.

  /**
   * Finishes or removes what a crashed operation left (temporaries, a half-made swap); with
   * `imports`, a pending import too. Runs first in every mutating operation.
   */
  protected async cleanUp(_options: { imports: boolean }): Promise<void> {}
  /**
   * Removes what an earlier volume of this vid left, then makes an origin's empty committed
   * state (only then is the pool's data reachable).
   */
  /**
   * The started volume's device or image, open read-write, for an ephemeral mapping. By
   * default the device path (a driver whose images sit among paths it does not own opens
   * them its own safe way).
   */
  protected async openForMapping(): Promise<MappingBacking & { close(): Promise<void> }> {
    const path = this.path;
    if (path === undefined) this.notImplemented('start_encrypted');
    const { open } = await import('node:fs/promises');
    const fh = await open(path, 'r+');
    return { fd: fh.fd, path, close: () => fh.close() };
  }
  protected async createStorage(): Promise<void> { this.notImplemented('create'); }
  protected async removeStorage(): Promise<void> { this.notImplemented('remove'); }
  /** A fresh writable copy of the source's committed state. */
  protected async startSnapshot(): Promise<void> { this.notImplemented('start'); }
  /** An empty volume of `size` bytes. */
  protected async startVolatile(): Promise<void> { this.notImplemented('start'); }
  /** A clean origin starts: save a revision, prune, and give the VM the committed data. */
  protected async startOrigin(): Promise<void> { this.notImplemented('start'); }
  /** A dirty origin starts again: its uncommitted state is used as it is. */
  protected async resumeDirty(): Promise<void> {}
  /** A dirty origin stops: its data becomes the committed state. */
  protected async commitRunning(): Promise<void> { this.notImplemented('stop'); }
  /** A snapshot or volatile volume stops: its data goes. */
  protected async discard(): Promise<void> { this.notImplemented('stop'); }
  /** The size the storage has now (a volatile volume resized while running). */
  protected async currentSize(): Promise<number> { return this._size; }
  protected async revertTo(_revision: string): Promise<void> { this.notImplemented('revert'); }
  /** Resizes the storage and returns the size it now has. */
  protected async resizeStorage(_size: number): Promise<number> { this.notImplemented('resize'); }
  protected async exportPath(): Promise<string> { this.notImplemented('export'); }
  protected async endExport(_path: string): Promise<void> {}
  protected async importTarget(_size: number): Promise<string> { this.notImplemented('import_data'); }
  protected async endImport(_success: boolean): Promise<void> {}
  /** Moves `source`'s committed data in as the new committed state; returns how. */
  protected async importFrom(_source: Volume, _options: ImportVolumeOptions): Promise<string> { this.notImplemented('import_volume'); }
  /** What is missing of the committed state, or undefined when it is there. */
  protected async missingCommittedState(): Promise<{ what: string; path: string } | undefined> { this.notImplemented('verify'); }
  /** An origin has a running or crashed image not yet committed. */
  protected async hasUncommittedState(): Promise<boolean> { this.notImplemented('is_dirty'); }
  /** A snapshot's source has been committed again since this snapshot was taken. */
  protected async sourceChanged(): Promise<boolean> { this.notImplemented('is_outdated'); }

  /**
   * The device-mapper node of this volume when it is ephemeral (Qubes: `_` -> `_u`, `-` ->
   * `_d` in the VM name). A driver whose devices live elsewhere overrides it.
   */
  encryptedPath(deviceName: string): string {
    return encryptedVolumePath(this.vm ?? '', deviceName);
  }

  toString(): string {
    return this.vid;
  }
}

/** The Qubes name of the device-mapper node of an ephemeral volume: `_` -> `_u`, `-` -> `_d`. */
export function encryptedVolumePath(vmName: string, deviceName: string): string {
  const escaped = vmName.replaceAll('_', '_u').replaceAll('-', '_d');
  return `/dev/mapper/vm-volatile-${escaped}-crypt@${deviceName}`;
}
