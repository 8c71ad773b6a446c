/**
 * The zfs_zvol pool: volumes as sparse zvols (`volmode=dev`) under a container dataset,
 * laid out as Qubes' core ZFS driver lays them out (qubes-core-admin, qubes/storage/zfs.py):
 *   <container>/vm/<vm>/<volume>        a volume (its vid)
 *   <container>/.tmp/<vm>:<volume>      a clone or copy being prepared, renamed into place
 *   <container>/.trash/<vm>:<volume>    the volume being replaced, until the new one is in place
 *   <container>/.importing/<vm>:<vol>   the target of import_data
 *   <container>/.exported/<vm>:<vol>.R  a clone of a committed snapshot, for export()
 * The container carries org.qvol:pool=<pool name> (every dataset under it inherits it) and
 * volmode=dev, so the zvols are block devices without partition scans.
 */
import { checkFreeDevices } from '../../io/free-devices.js';
import { StoragePoolException } from '../../errors/index.js';
import { parseBool } from '../../model/parse-bool.js';
import { Pool, type PoolOptions, type UsageDetails, type VmRef, type VolumeRequest } from '../../model/pool.js';
import { POOL_PROPERTY, descendants, destroyDataset, properties } from './datasets.js';
import { ZfsVolume } from './volume.js';
import { checkDatasetName, rows, zfsArgv, zfsChange, zpool } from './zfs-command.js';

export interface ZfsPoolOptions extends PoolOptions {
  /** The zpool whose root dataset is the container. */
  zpool_name?: string;
  /** A dataset to hold the pool (made if missing). */
  container?: string;
  /** Devices to create the zpool from at setup, separated by commas or spaces. */
  block_devices?: string;
  /** Create the zpool even on devices that hold a filesystem or a partition table. */
  force?: boolean | string;
}

export type HelperKind = 'tmp' | 'trash' | 'importing' | 'exported';

export class ZfsPool extends Pool {
  readonly driver: string = 'zfs_zvol';
  /** The dataset under which the helpers live. */
  readonly container: string;
  /** The dataset under which the VMs' datasets live. */
  readonly vmRoot: string;
  readonly zpoolName: string;
  readonly blockDevices: string[];
  readonly force: boolean;

  constructor(options: ZfsPoolOptions, layout?: { container: string; vmRoot: string }) {
    super(options);
    if (layout) {
      this.container = checkDatasetName(layout.container);
      this.vmRoot = checkDatasetName(layout.vmRoot);
    } else {
      if ((options.zpool_name === undefined) === (options.container === undefined)) {
        throw new StoragePoolException(`Pool ${options.name} needs exactly one of zpool_name (a zpool) or container (a dataset).`);
      }
      this.container = checkDatasetName(String(options.container ?? options.zpool_name));
      this.vmRoot = `${this.container}/vm`;
    }
    this.zpoolName = this.container.split('/')[0]!;
    this.blockDevices = String(options.block_devices ?? '').split(/[\s,]+/).filter(Boolean);
    this.force = parseBool(options.force ?? false);
  }

  /** The container dataset: zfs_zvol and zfs_encrypted pools in one zpool lock apart. */
  override get storageIdentity(): string {
    return `zfs:${this.container}`;
  }

  override get config(): Record<string, string | number | boolean> {
    const base = { ...super.config };
    if (this.container === this.zpoolName) base.zpool_name = this.zpoolName;
    else base.container = this.container;
    return base;
  }

  /** Not encrypted; the encrypted pool names its encryption root. */
  get encryptionRoot(): string | undefined {
    return undefined;
  }

  /** `<vm>:<volume>` for the vid `<vmRoot>/<vm>/<volume>`: unique, since names have no ':'. */
  flat(vid: string): string {
    return vid.startsWith(`${this.vmRoot}/`) ? vid.slice(this.vmRoot.length + 1).replaceAll('/', ':') : vid.replaceAll('/', ':');
  }

  helper(kind: HelperKind, vid: string, suffix = ''): string {
    return `${this.container}/.${kind}/${this.flat(vid)}${suffix}`;
  }

  async setup(): Promise<void> {
    if (this.blockDevices.length > 0) await this.createZpool();
    else await this.requireZpool();
    await this.claimContainer(this.container, { mountpoint: 'none', canmount: 'off' });
  }

  protected async requireZpool(): Promise<void> {
    try {
      await zpool(['list', '-H', '-o', 'name', this.zpoolName]);
    } catch (err) {
      throw new StoragePoolException(`There is no zpool ${this.zpoolName} for pool ${this.name}: import or create it, or pass block_devices=DEV,... to create it.`, { path: this.zpoolName, cause: err });
    }
  }

  /** Makes `ds` ours (created with `props` if missing); refuses one that another pool owns. */
  protected async claimContainer(ds: string, props: Record<string, string>, input?: string): Promise<void> {
    const found = await properties(ds, [POOL_PROPERTY]);
    const mark = { volmode: 'dev', [POOL_PROPERTY]: this.name };
    if (found === undefined) {
      await zfsChange(zfsArgv.createFilesystem(ds, { ...props, ...mark }, true), input);
      return;
    }
    const owner = found[POOL_PROPERTY];
    if (owner !== '-' && owner !== this.name) {
      throw new StoragePoolException(`Dataset ${ds} belongs to qvol pool ${owner}: remove that pool first or choose another dataset.`, { path: ds });
    }
    if (owner === '-') await zfsChange(zfsArgv.set(ds, mark));
  }

  /** zpool create from block_devices, refusing a device in use or holding data unless forced. */
  private async createZpool(): Promise<void> {
    const existing = await zpool(['list', '-H', '-o', 'name', this.zpoolName]).then(() => true, () => false);
    if (existing) throw new StoragePoolException(`zpool ${this.zpoolName} already exists: drop block_devices to use it as it is.`, { path: this.zpoolName });
    await checkFreeDevices(this.blockDevices, this.force, 'a new zpool');
    await zpool(['create', ...(this.force ? ['-f'] : []), '-m', 'none', '-o', 'autotrim=on', '-O', 'compression=on', this.zpoolName, ...this.blockDevices]);
  }

  /** Destroys the pool's datasets; a zpool made from block_devices goes with them. */
  override async destroy(): Promise<void> {
    if (this.blockDevices.length > 0) {
      await zpool(['destroy', this.zpoolName]);
      return;
    }
    if (this.container !== this.zpoolName) {
      await destroyDataset(this.container);
      return;
    }
    for (const child of await descendants(this.container)) {
      if (child.split('/').length === 2) await destroyDataset(child);
    }
    await zfsChange(zfsArgv.inherit(this.container, POOL_PROPERTY));
  }

  initVolume(vm: VmRef, request: VolumeRequest): ZfsVolume {
    const vid = request.vid ?? `${this.vmRoot}/${vm.name}/${request.name}`;
    const volume = new ZfsVolume(this, { ...request, vid, vm: vm.name, revisionsToKeep: request.revisionsToKeep ?? this.revisionsToKeep });
    return this.register(volume);
  }

  override async usageDetails(): Promise<UsageDetails> {
    const [row] = rows(await zpool(['list', '-Hp', '-o', 'size,alloc', this.zpoolName]).catch(() => ''));
    if (!row) return {};
    return { data_size: Number(row[0]), data_usage: Number(row[1]) };
  }
}
