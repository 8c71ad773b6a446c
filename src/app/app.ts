/**
 * The qvol library's front door: the registry of pools and VMs under QVOL_HOME (registry.ts),
 * the per-VM storage orchestration (storage.ts) and the volume operations (volume-ops.ts,
 * transfer.ts), as one object. Opening it takes no lock: each operation takes the locks it
 * needs for as long as it needs them.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createPool, driverNames, driverParameters, embeddedPoolOptions } from '../drivers/registry.js';
import type { DriverContext } from '../model/driver-context.js';
import { QubesValueError, UsageError } from '../errors/index.js';
import { validateName } from '../model/names.js';
import { parseBool } from '../model/parse-bool.js';
import { parseRevisionsToKeep } from '../model/revisions.js';
import type { Pool } from '../model/pool.js';
import type { Volume } from '../model/volume.js';
import { qvolHome } from './home.js';
import { checkPoolDirectory } from './pool-placement.js';
import { Registry } from './registry.js';
import { RunningMarkers } from './running.js';
import type { VmClass, VmRecord } from './state.js';
import { VmStorage, type CloneResult, type RecoverResult, type StartedDevice } from './storage.js';
import type { ExportOptions, ImportOptions, TransferSummary } from './transfer.js';
import { VolumeOps, volumeInfo, type VolumeInfo } from './volume-ops.js';

export interface OpenOptions {
  home?: string;
  /** How long to wait for another command's lock on the registry or a VM (default 60 s). */
  lockTimeoutMs?: number;
  /** Told about things worth a line on stderr (the embedded pool falling back to copies). */
  warn?: (message: string) => void;
  /**
   * What the drivers get from the caller (src/model/driver-context.ts): how to ask for an
   * encrypted pool's passphrase when the pool has no passphrase_command, and the key-unload
   * timer (by default a detached process; a long-lived caller gives inProcessKeyUnloadTimer()).
   */
  drivers?: DriverContext;
  /**
   * Qubes' qubes.xml to read the pools and VMs from, read-only, instead of QVOL_HOME's
   * state file (src/qubes/qubes-xml.ts): listing, export and backup see the Qubes VMs.
   */
  qubesXml?: string;
}

const DEFAULT_POOL = 'default';
/** The settings `setPoolConfig` takes (Qubes' admin.pool.Set.*). */
export const POOL_SETTINGS = ['revisions_to_keep', 'ephemeral_volatile'] as const;

export class QvolApp {
  private readonly storage: VmStorage;
  private readonly volumeOps: VolumeOps;

  private constructor(
    readonly registry: Registry,
    readonly markers: RunningMarkers,
    private readonly warn: (message: string) => void,
  ) {
    this.storage = new VmStorage(registry, markers);
    this.volumeOps = new VolumeOps(registry, this.storage);
  }

  /** Opens the registry at `home` (QVOL_HOME). */
  static async open(options: OpenOptions = {}): Promise<QvolApp> {
    const home = options.home ?? qvolHome();
    const registry = await Registry.open({
      home,
      ...(options.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: options.lockTimeoutMs }),
      ...(options.drivers === undefined ? {} : { drivers: options.drivers }),
      ...(options.qubesXml === undefined ? {} : { qubesXml: options.qubesXml }),
    });
    for (const line of registry.skipped) options.warn?.(`${options.qubesXml}: left out ${line}`);
    return new QvolApp(registry, new RunningMarkers(join(home, 'run')), options.warn ?? (() => undefined));
  }

  /** Runs `fn` with the registry open. */
  static async with<T>(options: OpenOptions, fn: (app: QvolApp) => Promise<T>): Promise<T> {
    return fn(await QvolApp.open(options));
  }

  get home(): string {
    return this.registry.home;
  }

  get pools(): Map<string, Pool> {
    return this.registry.pools;
  }

  // -- pools -----------------------------------------------------------------------------------

  getPool(name: string): Pool {
    return this.registry.getPool(name);
  }

  /** Creates, sets up and registers a pool; nothing is registered if setup fails. */
  async addPool(options: Record<string, string | number | boolean>): Promise<Pool> {
    this.registry.requireOwnRegistry(`Cannot add pool ${String(options.name ?? '')}`);
    validateName('pool', String(options.name ?? ''));
    const pool = await createPool(options, this.registry.drivers);
    const dir = pool.config.dir_path;
    if (typeof dir === 'string') {
      const others = [...this.pools.values()].flatMap((p) => (typeof p.config.dir_path === 'string' ? [{ name: p.name, dir: p.config.dir_path }] : []));
      await checkPoolDirectory(pool.name, dir, others);
    }
    await pool.locks.pool(() => pool.setup());
    await this.registry.addPool(pool);
    return pool;
  }

  /**
   * Changes a pool's `revisions_to_keep` or `ephemeral_volatile` (Qubes' admin.pool.Set.*),
   * and stores it. Volumes with no value of their own follow at once: a running VM's
   * volatile volume takes the new `ephemeral` default at its next start.
   */
  async setPoolConfig(name: string, key: string, value: string): Promise<Pool> {
    const pool = this.getPool(name);
    switch (key) {
      case 'revisions_to_keep': {
        const n = parseRevisionsToKeep(value);
        if (n === undefined) throw new QubesValueError(`Invalid revisions_to_keep '${value}' for pool ${name}: use a whole number, -1 (no snapshots) or more.`);
        pool.revisionsToKeep = n;
        break;
      }
      case 'ephemeral_volatile':
        pool.ephemeralVolatile = parseBool(value);
        break;
      default:
        throw new UsageError(`Unknown pool setting '${key}': use ${POOL_SETTINGS.join(' or ')}.`);
    }
    await this.registry.savePool(pool);
    return pool;
  }

  /** Forgets a pool no volume uses; its storage is left alone (Qubes 290ca713). */
  removePool(name: string): Promise<void> {
    return this.registry.removePool(name);
  }

  /** The pool named `default`, made under QVOL_HOME on first use. */
  async defaultPool(): Promise<Pool> {
    const existing = this.registry.pools.get(DEFAULT_POOL);
    if (existing) return existing;
    const dir = join(this.home, 'pools', DEFAULT_POOL);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const { options, note } = await embeddedPoolOptions(DEFAULT_POOL, dir);
    if (note) this.warn(note);
    return this.addPool(options);
  }

  drivers(): string[] {
    return driverNames();
  }

  /** Each driver and its options (name -> required?), as `qvol pool drivers` lists them. */
  driverOptions(): Array<{ driver: string; options: Record<string, boolean> }> {
    return driverNames().map((driver) => ({ driver, options: driverParameters(driver) }));
  }

  // -- VMs -------------------------------------------------------------------------------------

  getVm(name: string): VmRecord {
    return this.registry.getVm(name);
  }

  listVms(): VmRecord[] {
    return this.registry.listVms();
  }

  volumesOf(name: string): Map<string, Volume> {
    return this.registry.volumesOf(name);
  }

  getVolume(vm: string, volume: string): Volume {
    return this.registry.getVolume(vm, volume);
  }

  isRunning(name: string): Promise<boolean> {
    return this.storage.isRunning(name);
  }

  /** Throws QubesVMNotHaltedError while the VM runs. */
  requireHalted(name: string): Promise<void> {
    return this.storage.requireHalted(name);
  }

  /**
   * Creates a VM of `cls` with the class's volumes, in `pool` (default: the pool `default`),
   * a volume in the pool `volumePools` names for it (its volatile in a faster pool, say).
   * A disposable's volatile goes where its template's does, unless a pool is given
   * (Qubes' DispVM takes its template's volume pools).
   */
  createVm(name: string, cls: VmClass, options: { template?: string; pool?: string; volumePools?: Record<string, string> } = {}): Promise<VmRecord> {
    const volumePools: Record<string, Pool> = {};
    for (const [volume, pool] of Object.entries(options.volumePools ?? {})) volumePools[volume] = this.getPool(pool);
    if (cls === 'disp' && options.template !== undefined && options.pool === undefined && !volumePools.volatile) {
      const inherited = this.registry.volumesOf(options.template).get('volatile');
      if (inherited) volumePools.volatile = inherited.pool;
    }
    return this.storage.createVm(name, cls, {
      ...(options.template === undefined ? {} : { template: options.template }),
      pool: async () => (options.pool === undefined ? this.defaultPool() : this.getPool(options.pool)),
      volumePools,
    });
  }

  /** Starts every volume of the VM and returns the devices to give it. */
  startVm(name: string): Promise<StartedDevice[]> {
    return this.storage.startVm(name);
  }

  /** Stops every volume (commit or discard); also the way to commit what a crash left. */
  stopVm(name: string): Promise<void> {
    return this.storage.stopVm(name);
  }

  removeVm(name: string): Promise<void> {
    return this.storage.removeVm(name);
  }

  /** A new VM `dst` with `src`'s class, template and data, and how each volume's data came over. */
  /** `signal` ends the copies early: the clone fails as CANCELLED and nothing of `dst` is left. */
  cloneVm(src: string, dst: string, options: { pool?: string; signal?: AbortSignal } = {}): Promise<CloneResult> {
    return this.storage.cloneVm(src, dst, options);
  }

  /** Commits what crashes left, removes half-made VMs, and reports every VM that failed. */
  recover(): Promise<RecoverResult> {
    return this.storage.recover();
  }

  // -- volumes ---------------------------------------------------------------------------------

  volumeInfo(vm: string, volume: string): Promise<VolumeInfo> {
    return volumeInfo(this.getVolume(vm, volume));
  }

  revertVolume(vm: string, volume: string, revision?: string): Promise<void> {
    return this.volumeOps.revert(vm, volume, revision);
  }

  resizeVolume(vm: string, volume: string, size: number): Promise<number> {
    return this.volumeOps.resize(vm, volume, size);
  }

  setVolumeConfig(vm: string, volume: string, key: string, value: string): Promise<void> {
    return this.volumeOps.setConfig(vm, volume, key, value);
  }

  /** Writes a volume's committed data (or a revision) to a path or an fd. Takes no lock, as Qubes. */
  async exportVolume(vm: string, volume: string, options: ExportOptions): Promise<TransferSummary> {
    const v = this.getVolume(vm, volume);
    const { exportVolume } = await import('./transfer.js'); // the data path, loaded by the verbs that move data
    return exportVolume(v, options);
  }

  /**
   * Creates a VM as createVm does and fills its volumes (`fill` gets each volume's name and
   * an import target to write, sized `size`; undefined leaves the volume as made). The VM
   * is pending until every volume is whole: a crash midway leaves it for `qvol recover` to
   * remove, and no command uses it meanwhile.
   */
  async restoreVm(name: string, cls: VmClass, options: { template?: string; pool?: string }, fill: (volume: string) => { size: number; write: (target: string) => Promise<void> } | undefined): Promise<VmRecord> {
    const { intoImportTarget } = await import('./transfer.js');
    return this.storage.createVm(name, cls, {
      ...(options.template === undefined ? {} : { template: options.template }),
      pool: async () => (options.pool === undefined ? this.defaultPool() : this.getPool(options.pool)),
      fill: {
        as: 'restore',
        volume: async (v) => {
          const how = fill(v.name);
          if (how) await intoImportTarget(v, how.size, how.write);
        },
      },
    });
  }

  /**
   * Replaces a halted VM's volume data by what `write` puts into the import target (an
   * image or device of `size` bytes that reads as zeros), committed only when `write`
   * resolves, as an import: the former data becomes a revision where the volume keeps them.
   * A backup's `restore --replace` writes its chunks so.
   */
  async replaceVolumeData(vm: string, volume: string, size: number, write: (target: string) => Promise<void>): Promise<void> {
    const { intoImportTarget } = await import('./transfer.js');
    await this.volumeOps.importInto(vm, volume, (v) => intoImportTarget(v, size, write));
  }

  /** Replaces a halted VM's volume data from a path or an fd, and records its new size. */
  async importVolume(vm: string, volume: string, options: ImportOptions): Promise<TransferSummary> {
    const { importVolume } = await import('./transfer.js');
    return this.volumeOps.importInto(vm, volume, (v) => importVolume(v, options));
  }
}

export type { CloneResult, RecoverResult, StartedDevice, VolumeInfo };
