/**
 * The driver-independent pool (docs/qubes-contract.md, "Pools"): a named place for
 * volumes with a default `revisions_to_keep` and `ephemeral_volatile`. A driver subclasses
 * it; the app layer keeps the pools and their configs.
 */
import { NotImplementedError, QubesValueError, QvolError } from '../errors/index.js';
import { PoolLocks } from './pool-locks.js';
import { validateName } from './names.js';
import { parseBoolStrict } from './parse-bool.js';
import { parseRevisionsToKeep } from './revisions.js';
import type { Volume, VolumeInit } from './volume.js';

/** What a pool needs to know of the VM a volume belongs to. */
export interface VmRef {
  name: string;
  /** `vm-templates` for templates, `appvms` for everything else (Qubes' dir_path_prefix). */
  dirPathPrefix: 'appvms' | 'vm-templates';
}

/** The volume settings a VM asks a pool for (Qubes' volume_config entry). */
export interface VolumeRequest extends Omit<VolumeInit, 'vid' | 'vm'> {
  vid?: string;
}

export interface PoolOptions {
  name: string;
  revisions_to_keep?: number | string;
  ephemeral_volatile?: boolean | string;
}

export interface UsageDetails {
  data_size?: number;
  data_usage?: number;
  metadata_size?: number;
  metadata_usage?: number;
}

export abstract class Pool {
  readonly name: string;
  /** Default for volumes initialised later without their own value; -1 disables snapshots. */
  revisionsToKeep: number;
  ephemeralVolatile: boolean;
  abstract readonly driver: string;
  /** The volumes initVolume() made and remove() has not forgotten (Qubes' `pool.volumes`). */
  private readonly volumes = new Map<string, Volume>();

  constructor(options: PoolOptions) {
    this.name = validateName('pool', options.name);
    const keep = parseRevisionsToKeep(options.revisions_to_keep ?? 1);
    if (keep === undefined) {
      throw new QubesValueError(`Invalid revisions_to_keep '${String(options.revisions_to_keep)}' for pool ${options.name}: use a whole number, -1 (no snapshots) or more.`);
    }
    this.revisionsToKeep = keep;
    this.ephemeralVolatile = parseBoolStrict(options.ephemeral_volatile ?? false);
  }

  /**
   * What the pool's storage is, whoever names the pool: its locks (pool-locks.ts) are
   * shared by every process that reaches this storage. Drivers name their directory or
   * dataset; the default is the pool's name.
   */
  get storageIdentity(): string {
    return `${this.driver}:${this.name}`;
  }

  private poolLocks?: PoolLocks;

  /** The cross-process locks of this pool's storage. */
  get locks(): PoolLocks {
    this.poolLocks ??= new PoolLocks(this.storageIdentity, this.name);
    return this.poolLocks;
  }

  /** The persisted options, with which the pool is constructed again. */
  get config(): Record<string, string | number | boolean> {
    return {
      name: this.name,
      driver: this.driver,
      revisions_to_keep: this.revisionsToKeep,
      ephemeral_volatile: this.ephemeralVolatile,
    };
  }

  /** Makes the pool usable (creates directories, checks capabilities). */
  abstract setup(): Promise<void>;

  /** Builds the volume object for a VM; touches no storage. */
  abstract initVolume(vm: VmRef, request: VolumeRequest): Volume;

  /** Tears down the pool's storage. Not called when a pool is merely forgotten. */
  async destroy(): Promise<void> {
    throw new NotImplementedError(`Pool ${this.constructor.name} has destroy() not implemented`);
  }

  /** Keeps a volume that initVolume() built, by vid. */
  protected register<V extends Volume>(volume: V): V {
    this.volumes.set(volume.vid, volume);
    return volume;
  }

  /** Called by a volume's remove(). */
  forget(vid: string): void {
    this.volumes.delete(vid);
  }

  listVolumes(): Volume[] {
    return [...this.volumes.values()];
  }

  getVolume(vid: string): Volume {
    const volume = this.volumes.get(vid);
    if (!volume) throw new QvolError('VOLUME_NOT_FOUND', `Pool ${this.name} has no volume ${vid}.`, { path: vid });
    return volume;
  }

  /**
   * Runs `fn` with the pool's data reachable: the one data-access hook, where zfs_encrypted
   * loads its key and LVM thin activates its volumes. With `hold`, the data stays reachable
   * after `fn` succeeds (a started VM, an export, an import in progress) until release().
   */
  async using<T>(fn: () => Promise<T>, options: { hold?: boolean } = {}): Promise<T> {
    await this.acquireData();
    let held = false;
    try {
      const result = await fn();
      held = options.hold === true;
      return result;
    } finally {
      if (!held) await this.release();
    }
  }

  /** Ends a hold of using(): the pool may make its data unreachable again (a key unload). */
  async release(): Promise<void> {
    await this.releaseData();
  }

  /** Makes the data reachable (load a key, activate volumes). */
  protected async acquireData(): Promise<void> {}

  /** The data is no longer needed by this operation (arm a key unload, deactivate). */
  protected async releaseData(): Promise<void> {}

  /** Bytes of storage, or undefined when unknown. */
  async size(): Promise<number | undefined> {
    return (await this.usageDetails()).data_size;
  }

  /** Bytes used, or undefined when unknown. */
  async usage(): Promise<number | undefined> {
    return (await this.usageDetails()).data_usage;
  }

  async usageDetails(): Promise<UsageDetails> {
    return {};
  }

  toString(): string {
    return this.name;
  }
}
