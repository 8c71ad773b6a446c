/**
 * The driver-independent volume of the Qubes storage model (shared/spec/qubes-storage.md §1):
 * its configuration and validation, the four volume types, the `ephemeral` rules, and the
 * contract every driver implements. Mutating operations are serialised per volume.
 */
import { Mutex } from '../util/mutex.js';
import { NotImplementedError, QubesValueError, StoragePoolException } from './errors.js';
import type { Pool } from './pool.js';

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

/**
 * How a volume's data came over from another volume: shared extents (reflink), a ZFS clone
 * of a snapshot, a ZFS send/receive stream, or the copy engine's in-kernel copy or its
 * read / zero-check / write loop.
 */
export type ImportMethod = 'reflink' | 'zfs clone' | 'zfs send/recv' | 'copy_file_range' | 'sparse copy';

/** The copy engine's rung, as an ImportMethod. */
export function importMethodName(method: 'clone' | 'copy_file_range' | 'readwrite'): ImportMethod {
  return method === 'clone' ? 'reflink' : method === 'copy_file_range' ? 'copy_file_range' : 'sparse copy';
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

  /** Called once in the volume's lifetime; nothing touches storage before it. */
  async create(): Promise<void> { this.notImplemented('create'); }
  /** Removes the volume and everything that belongs to it. */
  async remove(): Promise<void> { this.notImplemented('remove'); }
  /** Prepares for the VM's start; snapshots the source if snap_on_start. */
  async start(): Promise<void> { this.notImplemented('start'); }
  /** Commits if save_on_stop, otherwise discards. */
  async stop(): Promise<void> { this.notImplemented('stop'); }
  /** A readable path with the committed (pre-start) data, even while the VM runs. */
  async export(): Promise<string> { this.notImplemented('export'); }
  /** Cleans up after export(). */
  async exportEnd(_path: string): Promise<void> {}
  /** A writable path whose contents replace the volume's, `size` bytes, after create(). */
  async importData(_size: number): Promise<string> { this.notImplemented('import_data'); }
  /** How the last importVolume() moved the data, for reports: see ImportMethod. */
  importMethod: ImportMethod | undefined;
  /** Whether the path importData() gives already reads zero everywhere (a new zvol), so an
   * import writes only data. A regular file is emptied by the importer itself. */
  get importTargetReadsZero(): boolean { return false; }
  /** Always called after importData(): commits on success, discards otherwise. */
  async importDataEnd(_success: boolean): Promise<void> {}
  /** Copies another volume's committed data in, possibly from another pool. */
  async importVolume(_source: Volume): Promise<Volume> { this.notImplemented('import_volume'); }
  /** Not cleanly stopped and committed (includes "running"). */
  async isDirty(): Promise<boolean> { this.notImplemented('is_dirty'); }
  /** A snap_on_start volume whose source changed since it started. */
  async isOutdated(): Promise<boolean> { this.notImplemented('is_outdated'); }
  async resize(_size: number): Promise<void> { this.notImplemented('resize'); }
  /** Reverts to `revision`, by default the latest. */
  async revert(_revision?: string): Promise<void> { this.notImplemented('revert'); }
  /** Resolves true or throws StoragePoolException naming what is missing. */
  async verify(): Promise<boolean> { this.notImplemented('verify'); }
  /** Revision id -> isodate timestamp, oldest first. */
  async revisions(): Promise<Map<string, string>> {
    throw new NotImplementedError(`${this.constructor.name} has revisions not implemented`);
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
