/**
 * The lvm_thin pool (Qubes' ThinPool, qubes/storage/lvm.py): volumes as thin LVs in the thin
 * pool VG/THIN, named as Qubes names them, so a Qubes host's VMs are this pool's volumes:
 *   VG/vm-<vm>-<volume>             the committed state (and a volatile volume)
 *   VG/vm-<vm>-<volume>-snap        what a running VM writes (snap_on_start, save_on_stop)
 *   VG/vm-<vm>-<volume>-import      the target of import_data
 *   VG/vm-<vm>-<volume>-<ts>-back   a revision, from the commit at unix time ts
 * Setup uses an existing thin pool as it is; with create_thin_pool it makes the thin pool in
 * an existing VG; with block_devices it makes the physical volumes, the VG and the thin pool
 * on those devices, refusing devices in use or holding data. Destroy undoes exactly what
 * setup made, and nothing when it made nothing.
 */
import { StoragePoolException } from '../../errors/index.js';
import { checkFreeDevices } from '../../io/free-devices.js';
import { parseBool } from '../../model/parse-bool.js';
import { formatBytes } from '../../util/size.js';
import { Pool, type PoolOptions, type UsageDetails, type VmRef, type VolumeRequest } from '../../model/pool.js';
import { readLvReport, type LvReport } from './lv-report.js';
import { checkLvmName, lvmArgv, lvmChange } from './lvm-command.js';
import { ThinVolume } from './volume.js';

/**
 * Metadata use at which no new thin LV is made. A thin pool whose metadata fills up is
 * switched read-only by the kernel (every VM on it loses its writes, and the pool needs
 * `lvconvert --repair`), and a new snapshot is what makes a running VM's writes allocate.
 */
const METADATA_LIMIT = 0.95;

export interface ThinPoolOptions extends PoolOptions {
  volume_group: string;
  thin_pool: string;
  /** Devices to make the VG and its thin pool on at setup, separated by commas or spaces. */
  block_devices?: string;
  /** Use devices that hold a filesystem or a partition table. */
  force?: boolean | string;
  /** Make the thin pool in the existing volume_group at setup (90 % of its free space). */
  create_thin_pool?: boolean | string;
}

export class ThinPool extends Pool {
  readonly driver = 'lvm_thin';
  readonly volumeGroup: string;
  readonly thinPool: string;
  readonly blockDevices: string[];
  readonly force: boolean;
  /** Setup makes the thin pool (block_devices implies it). */
  readonly createThinPool: boolean;

  constructor(options: ThinPoolOptions) {
    super(options);
    if (!options.volume_group || !options.thin_pool) throw new StoragePoolException(`Pool ${options.name} needs volume_group and thin_pool.`);
    this.volumeGroup = checkLvmName(String(options.volume_group), 'volume group name');
    this.thinPool = checkLvmName(String(options.thin_pool), 'thin pool name');
    this.blockDevices = String(options.block_devices ?? '').split(/[\s,]+/).filter(Boolean);
    this.force = parseBool(options.force ?? false);
    this.createThinPool = this.blockDevices.length > 0 || parseBool(options.create_thin_pool ?? false);
  }

  /** `VG/THIN`: every pool on this thin pool shares its locks. */
  override get storageIdentity(): string {
    return `lvm:${this.poolId}`;
  }

  get poolId(): string {
    return `${this.volumeGroup}/${this.thinPool}`;
  }

  override get config(): Record<string, string | number | boolean> {
    return {
      ...super.config, volume_group: this.volumeGroup, thin_pool: this.thinPool,
      ...(this.blockDevices.length > 0 ? { block_devices: this.blockDevices.join(','), force: this.force }
        : this.createThinPool ? { create_thin_pool: true } : {}),
    };
  }

  private cached?: { readAt: number; report: Promise<LvReport> };

  /**
   * The VG's LVs. With `since` (when the caller took its volume's lock, performance.now()),
   * a report read after that moment is shared: the LVs of a locked volume change only
   * under its lock, so the volumes of one VM operation read one report between them, not
   * one each per step. Without, always a new one (an answer for someone holding no lock).
   */
  report(since?: number): Promise<LvReport> {
    if (since !== undefined && this.cached && this.cached.readAt >= since) return this.cached.report;
    const report = readLvReport(this.volumeGroup);
    this.cached = { readAt: performance.now(), report };
    report.catch(() => { if (this.cached?.report === report) this.cached = undefined; });
    return report;
  }

  /** An LV was made or changed in size: the next report is read anew. */
  changed(): void {
    this.cached = undefined;
  }

  async setup(): Promise<void> {
    if (this.blockDevices.length > 0) await this.createOnDevices();
    else if (this.createThinPool) await this.createInGroup();
    const thin = (await this.report().catch((err: unknown) => {
      throw new StoragePoolException(`Thin pool ${this.poolId} does not exist`, { path: this.poolId, cause: err });
    })).get(this.poolId);
    if (!thin) throw new StoragePoolException(`Thin pool ${this.poolId} does not exist`, { path: this.poolId });
    if (!thin.attr.startsWith('t')) throw new StoragePoolException(`Volume ${this.poolId} is not a thin pool`, { path: this.poolId });
  }

  /** pvcreate, vgcreate and a thin pool over 90 % of the VG, on devices that are free. */
  private async createOnDevices(): Promise<void> {
    const existing = await this.report().then(() => true, () => false);
    if (existing) throw new StoragePoolException(`Volume group ${this.volumeGroup} already exists: drop block_devices to use it as it is.`, { path: this.volumeGroup });
    await checkFreeDevices(this.blockDevices, this.force, 'a new volume group');
    await lvmChange(lvmArgv.pvcreate(this.blockDevices, this.force));
    await lvmChange(lvmArgv.vgcreate(this.volumeGroup, this.blockDevices));
    await lvmChange(lvmArgv.createThinPool(this.volumeGroup, this.thinPool));
  }

  /** A thin pool over 90 % of the free space of a VG that exists, where none of that name is. */
  private async createInGroup(): Promise<void> {
    const report = await this.report().catch((err: unknown) => {
      throw new StoragePoolException(`Volume group ${this.volumeGroup} does not exist`, { path: this.volumeGroup, cause: err });
    });
    if (report.has(this.poolId)) {
      throw new StoragePoolException(`Thin pool ${this.poolId} already exists: drop create_thin_pool to use it as it is.`, { path: this.poolId });
    }
    await lvmChange(lvmArgv.createThinPool(this.volumeGroup, this.thinPool));
    this.changed();
  }

  /**
   * Undoes what setup made: the VG and its PVs from block_devices, or the thin pool from
   * create_thin_pool; a pool over an existing thin pool leaves it.
   */
  override async destroy(): Promise<void> {
    if (this.blockDevices.length > 0) {
      await lvmChange(lvmArgv.vgremove(this.volumeGroup));
      await lvmChange(lvmArgv.pvremove(this.blockDevices));
    } else if (this.createThinPool) {
      await lvmChange(lvmArgv.remove(this.poolId));
    }
  }

  /**
   * Refuses, before anything is made, an operation that needs a new thin LV (and `need`
   * bytes of data written into it) in a thin pool that cannot take it: out of data, its
   * metadata nearly full, or in a state LVM says needs repair. A thin pool is overcommitted
   * by design, so only what will be written counts, never a volume's size.
   */
  checkRoom(report: LvReport, what: string, need = 0): void {
    const thin = report.get(this.poolId);
    if (!thin) throw new StoragePoolException(`Thin pool ${this.poolId} does not exist`, { path: this.poolId });
    const extend = `extend it (lvextend -L +SIZE ${this.poolId}) or remove volumes or revisions`;
    if (thin.health !== '' && thin.health !== 'out_of_data') {
      throw new StoragePoolException(
        `Thin pool ${this.poolId} needs repair (LVM reports ${thin.health}): stop its VMs and run lvconvert --repair ${this.poolId}; ${what} was not started.`,
        { path: this.poolId });
    }
    const free = thin.size - thin.usage;
    if (thin.health === 'out_of_data' || free <= 0 || need > free) {
      const room = need > 0 ? `has ${formatBytes(Math.max(free, 0))} free and ${what} writes up to ${formatBytes(need)}` : `is full`;
      throw new StoragePoolException(`Thin pool ${this.poolId} ${room}: ${extend}; nothing was changed.`, { path: this.poolId });
    }
    if (thin.metadataSize > 0 && thin.metadataUsage >= METADATA_LIMIT * thin.metadataSize) {
      const used = Math.floor((100 * thin.metadataUsage) / thin.metadataSize);
      throw new StoragePoolException(
        `Thin pool ${this.poolId} has used ${used}% of its metadata, and qvol makes no new thin volume past ${METADATA_LIMIT * 100}% `
        + `(a pool whose metadata fills turns read-only): extend it (lvextend --poolmetadatasize +SIZE ${this.poolId}) `
        + `or remove volumes or revisions; nothing was changed.`, { path: this.poolId });
    }
  }

  initVolume(vm: VmRef, request: VolumeRequest): ThinVolume {
    const vid = request.vid ?? `${this.volumeGroup}/${checkLvmName(`vm-${vm.name}-${request.name}`, 'logical volume name')}`;
    return this.register(new ThinVolume(this, { ...request, vid, vm: vm.name, revisionsToKeep: request.revisionsToKeep ?? this.revisionsToKeep }));
  }

  override async usageDetails(): Promise<UsageDetails> {
    const thin = (await this.report().catch(() => new Map() as LvReport)).get(this.poolId);
    if (!thin) return {};
    return { data_size: thin.size, data_usage: thin.usage, metadata_size: thin.metadataSize, metadata_usage: thin.metadataUsage };
  }
}
