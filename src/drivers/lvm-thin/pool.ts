/**
 * The lvm_thin pool (Qubes' ThinPool, qubes/storage/lvm.py): volumes as thin LVs in the thin
 * pool VG/THIN, named as Qubes names them, so a Qubes host's VMs are this pool's volumes:
 *   VG/vm-<vm>-<volume>             the committed state (and a volatile volume)
 *   VG/vm-<vm>-<volume>-snap        what a running VM writes (snap_on_start, save_on_stop)
 *   VG/vm-<vm>-<volume>-import      the target of import_data
 *   VG/vm-<vm>-<volume>-<ts>-back   a revision, from the commit at unix time ts
 * With block_devices, setup makes the physical volumes, the VG and the thin pool on them,
 * refusing devices in use or holding data, and destroy undoes exactly that.
 */
import { StoragePoolException } from '../../errors/index.js';
import { checkFreeDevices } from '../../io/free-devices.js';
import { parseBool } from '../../model/parse-bool.js';
import { Pool, type PoolOptions, type UsageDetails, type VmRef, type VolumeRequest } from '../../model/pool.js';
import { readLvReport, type LvReport } from './lv-report.js';
import { checkLvmName, lvmArgv, lvmChange } from './lvm-command.js';
import { ThinVolume } from './volume.js';

export interface ThinPoolOptions extends PoolOptions {
  volume_group: string;
  thin_pool: string;
  /** Devices to make the VG and its thin pool on at setup, separated by commas or spaces. */
  block_devices?: string;
  /** Use devices that hold a filesystem or a partition table. */
  force?: boolean | string;
}

export class ThinPool extends Pool {
  readonly driver = 'lvm_thin';
  readonly volumeGroup: string;
  readonly thinPool: string;
  readonly blockDevices: string[];
  readonly force: boolean;

  constructor(options: ThinPoolOptions) {
    super(options);
    if (!options.volume_group || !options.thin_pool) throw new StoragePoolException(`Pool ${options.name} needs volume_group and thin_pool.`);
    this.volumeGroup = checkLvmName(String(options.volume_group), 'volume group name');
    this.thinPool = checkLvmName(String(options.thin_pool), 'thin pool name');
    this.blockDevices = String(options.block_devices ?? '').split(/[\s,]+/).filter(Boolean);
    this.force = parseBool(options.force ?? false);
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
      ...(this.blockDevices.length > 0 ? { block_devices: this.blockDevices.join(','), force: this.force } : {}),
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

  /** Undoes what setup made from block_devices; a pool over an existing thin pool leaves it. */
  override async destroy(): Promise<void> {
    if (this.blockDevices.length === 0) return;
    await lvmChange(lvmArgv.vgremove(this.volumeGroup));
    await lvmChange(lvmArgv.pvremove(this.blockDevices));
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
