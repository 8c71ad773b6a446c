/**
 * The qvol application: the registry of pools and VMs (one state file under QVOL_HOME,
 * changed under an exclusive lock) and the per-VM storage orchestration of Qubes' Storage
 * class (spec §1.8, §1.11). Every command opens it, does its work, and closes it.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createPool, driverNames } from '../drivers/registry.js';
import { isReflinkSupported } from '../drivers/file-reflink/pool.js';
import { QubesPoolInUseError, QubesVMError, QubesVMNotHaltedError, QvolError } from '../model/errors.js';
import { validateName } from '../model/names.js';
import type { Pool, VmRef } from '../model/pool.js';
import type { BlockDevice, Volume } from '../model/volume.js';
import { acquireLock, type HeldLock } from './lock.js';
import { qvolHome } from './home.js';
import { RunningMarkers } from './running.js';
import { loadState, saveState, type State, type VmClass, type VmRecord } from './state.js';
import { VM_CLASSES, frontendName } from './vm-classes.js';

export interface OpenOptions {
  home?: string;
  lockTimeoutMs?: number;
  /** Told about things worth a line on stderr (the embedded pool falling back to copies). */
  warn?: (message: string) => void;
  /**
   * Read the registry without its lock, for work that changes no state (Qubes does not lock
   * export either): a stream export must not wait for, or block, the import it feeds. The
   * state file is replaced atomically, so a read sees one whole version. Such an app refuses
   * to save.
   */
  readOnly?: boolean;
}

export interface StartedDevice extends BlockDevice {
  volume: string;
  frontend: string;
}

const DEFAULT_POOL = 'default';

export class QvolApp {
  readonly pools = new Map<string, Pool>();
  private readonly volumes = new Map<string, Map<string, Volume>>();

  private constructor(
    readonly home: string,
    private state: State,
    private readonly lock: HeldLock,
    readonly markers: RunningMarkers,
    private readonly warn: (message: string) => void,
  ) {}

  /** Opens the registry at `home` (QVOL_HOME), holding its lock until close(). */
  static async open(options: OpenOptions = {}): Promise<QvolApp> {
    const home = options.home ?? qvolHome();
    await mkdir(home, { recursive: true, mode: 0o700 });
    const lock = options.readOnly ? { release: async () => undefined, readOnly: true } : await acquireLock(join(home, 'lock'), options.lockTimeoutMs);
    try {
      const state = await loadState(join(home, 'state.json'));
      const app = new QvolApp(home, state, lock, new RunningMarkers(join(home, 'run')), options.warn ?? (() => undefined));
      for (const config of Object.values(state.pools)) app.pools.set(config.name, createPool(config));
      for (const name of Object.keys(state.vms)) app.initVm(name);
      return app;
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /** Runs `fn` with the registry open, and closes it whatever happens. */
  static async with<T>(options: OpenOptions, fn: (app: QvolApp) => Promise<T>): Promise<T> {
    const app = await QvolApp.open(options);
    try {
      return await fn(app);
    } finally {
      await app.close();
    }
  }

  async close(): Promise<void> {
    await this.lock.release();
  }

  private async save(): Promise<void> {
    if ((this.lock as { readOnly?: boolean }).readOnly) throw new Error('qvol: internal error: a read-only registry cannot be saved');
    await saveState(join(this.home, 'state.json'), this.state);
  }

  // -- pools ---------------------------------------------------------------------------------

  getPool(name: string): Pool {
    const pool = this.pools.get(name);
    if (!pool) throw new QvolError('POOL_NOT_FOUND', `Unknown storage pool ${name}: see qvol pool ls.`, { path: name });
    return pool;
  }

  /** Creates, sets up and registers a pool; nothing is registered if setup fails. */
  async addPool(options: Record<string, string | number | boolean>): Promise<Pool> {
    const name = validateName('pool', String(options.name ?? ''));
    if (this.pools.has(name)) throw new QvolError('POOL_EXISTS', `pool named ${name} already exists`, { path: name });
    const pool = createPool(options);
    await pool.setup();
    this.pools.set(name, pool);
    this.state.pools[name] = { ...pool.config, name, driver: pool.driver };
    await this.save();
    return pool;
  }

  /** Forgets a pool no volume uses; its storage is left alone (Qubes 290ca713). */
  async removePool(name: string): Promise<void> {
    const pool = this.getPool(name);
    for (const [vm, volumes] of this.volumes) {
      for (const v of volumes.values()) {
        if (v.pool === pool) throw new QubesPoolInUseError(name, `Storage pool ${name} is in use by VM ${vm} (volume ${v.name}): remove or clone that VM first.`);
      }
    }
    this.pools.delete(name);
    delete this.state.pools[name];
    await this.save();
  }

  /** The pool named `default`, made under QVOL_HOME on first use. */
  async defaultPool(): Promise<Pool> {
    const existing = this.pools.get(DEFAULT_POOL);
    if (existing) return existing;
    const dir = join(this.home, 'pools', DEFAULT_POOL);
    await mkdir(join(this.home, 'pools'), { recursive: true });
    await mkdir(dir, { recursive: true });
    const reflinks = await isReflinkSupported(dir);
    if (!reflinks) this.warn(`the filesystem of ${dir} cannot share extents (reflink): volumes will be copied, sparse, instead of cloned`);
    return this.addPool({ name: DEFAULT_POOL, driver: 'file-reflink', dir_path: dir, setup_check: reflinks });
  }

  drivers(): string[] {
    return driverNames();
  }

  // -- VMs -----------------------------------------------------------------------------------

  getVm(name: string): VmRecord {
    const vm = this.state.vms[name];
    if (!vm) throw new QvolError('VM_NOT_FOUND', `Unknown VM ${name}: see qvol vm ls.`, { path: name });
    return vm;
  }

  listVms(): VmRecord[] {
    return Object.values(this.state.vms);
  }

  volumesOf(name: string): Map<string, Volume> {
    this.getVm(name);
    return this.volumes.get(name) ?? new Map();
  }

  getVolume(vm: string, volume: string): Volume {
    const v = this.volumesOf(vm).get(volume);
    if (!v) throw new QvolError('VOLUME_NOT_FOUND', `VM ${vm} has no volume ${volume}: it has ${[...this.volumesOf(vm).keys()].join(', ')}.`, { path: `${vm}:${volume}` });
    return v;
  }

  private vmRef(record: VmRecord): VmRef {
    return { name: record.name, dirPathPrefix: record.class === 'template' ? 'vm-templates' : 'appvms' };
  }

  /** Builds the volume objects of a VM from its record, its template's first. */
  private initVm(name: string): Map<string, Volume> {
    const done = this.volumes.get(name);
    if (done) return done;
    const record = this.getVm(name);
    if (record.template) this.initVm(record.template);
    const volumes = new Map<string, Volume>();
    for (const [volName, cfg] of Object.entries(record.volumes)) {
      const pool = this.getPool(cfg.pool);
      const source = cfg.source === undefined ? undefined : pool.getVolume(cfg.source);
      volumes.set(volName, pool.initVolume(this.vmRef(record), {
        name: volName,
        vid: cfg.vid,
        rw: cfg.rw,
        saveOnStop: cfg.save_on_stop,
        snapOnStart: cfg.snap_on_start,
        revisionsToKeep: cfg.revisions_to_keep,
        ...(cfg.size === undefined ? {} : { size: cfg.size }),
        ...(source === undefined ? {} : { source }),
        ...(cfg.ephemeral === undefined ? {} : { ephemeral: cfg.ephemeral }),
      }));
    }
    this.volumes.set(name, volumes);
    return volumes;
  }

  /** The volume a snapshot starts from: the template's, up the chain to an origin. */
  private snapshotSource(template: string, volume: string): Volume {
    let v = this.getVolume(template, volume);
    while (v.source) v = v.source;
    return v;
  }

  private recordVolumes(record: VmRecord): void {
    const volumes = this.volumes.get(record.name)!;
    record.volumes = Object.fromEntries([...volumes].map(([n, v]) => [n, v.config]));
  }

  /** Creates a VM of `cls` with the class's volumes, in `pool` (snapshots stay with their source). */
  async createVm(name: string, cls: VmClass, options: { template?: string; pool?: string } = {}): Promise<VmRecord> {
    validateName('VM', name);
    if (this.state.vms[name]) throw new QvolError('VM_EXISTS', `VM ${name} already exists: choose another name.`, { path: name });
    const spec = VM_CLASSES[cls];
    if (!spec) throw new QvolError('USAGE', `Unknown VM class ${String(cls)}: use template, app, standalone or disp.`);
    const a = (word: string) => `${/^[aeiou]/.test(word) ? 'an' : 'a'} ${word}`;
    const A = (word: string) => a(word).replace(/^a/, 'A');
    if (spec.needsTemplate.length > 0) {
      const wanted = `${a(spec.needsTemplate.join(' or '))} VM`;
      if (!options.template) throw new QvolError('USAGE', `${A(cls)} VM needs --template (${wanted}).`);
      const t = this.getVm(options.template);
      if (!spec.needsTemplate.includes(t.class)) {
        throw new QvolError('USAGE', `VM ${t.name} is ${a(t.class)} VM; ${a(cls)} VM needs ${wanted} as template.`);
      }
    } else if (options.template) {
      throw new QvolError('USAGE', `${A(cls)} VM has no template.`);
    }
    const pool = options.pool ? this.getPool(options.pool) : await this.defaultPool();
    const record: VmRecord = { name, class: cls, ...(options.template ? { template: options.template } : {}), volumes: {} };
    const volumes = new Map<string, Volume>();
    for (const t of spec.volumes) {
      const source = t.snapOnStart ? this.snapshotSource(options.template!, t.name) : undefined;
      const target = source ? source.pool : pool;
      volumes.set(t.name, target.initVolume(this.vmRef(record), {
        name: t.name,
        rw: t.rw,
        saveOnStop: t.saveOnStop,
        snapOnStart: t.snapOnStart,
        size: source ? source.size : t.size,
        ...(source ? { source } : {}),
      }));
    }
    await this.createVolumes(volumes);
    this.state.vms[name] = record;
    this.volumes.set(name, volumes);
    this.recordVolumes(record);
    await this.save();
    return record;
  }

  /** create() of every volume; on failure, those made are removed again (VmCreationManager). */
  private async createVolumes(volumes: Map<string, Volume>, fill?: (v: Volume) => Promise<void>): Promise<void> {
    const made: Volume[] = [];
    try {
      for (const v of volumes.values()) {
        await v.create();
        made.push(v);
        if (fill) await fill(v);
      }
    } catch (err) {
      for (const v of made) await v.remove().catch(() => undefined);
      throw err;
    }
  }

  async isRunning(name: string): Promise<boolean> {
    for (const v of this.volumesOf(name).values()) if (await this.markers.isRunning(v)) return true;
    return false;
  }

  /** Throws QubesVMNotHaltedError while the VM runs. */
  async requireHalted(name: string): Promise<void> {
    if (await this.isRunning(name)) throw new QubesVMNotHaltedError(name, `VM ${name} is running: stop it first.`);
  }

  /** Starts every volume of the VM and returns the devices to give it. */
  async startVm(name: string): Promise<StartedDevice[]> {
    const volumes = [...this.volumesOf(name).values()];
    if (await this.isRunning(name)) throw new QubesVMError(name, `VM ${name} is already running: stop it first.`);
    for (const v of volumes) {
      if (v.source?.snapshotsDisabled && (await this.markers.isRunning(v.source))) {
        throw new QubesVMError(name, `Volume ${v.source.vid} is running`);
      }
    }
    await Promise.all(volumes.map((v) => v.start()));
    await this.markers.mark(volumes);
    return volumes.map((v, i) => ({ ...v.blockDevice()!, volume: v.name, frontend: frontendName(v.name, i) }));
  }

  /** Stops every volume (commit or discard); also the way to commit what a crash left. */
  async stopVm(name: string): Promise<void> {
    const volumes = [...this.volumesOf(name).values()];
    await Promise.all(volumes.map((v) => v.stop()));
    await this.markers.clear(volumes);
    this.recordVolumes(this.getVm(name));
    await this.save();
  }

  async removeVm(name: string): Promise<void> {
    await this.requireHalted(name);
    const users = this.listVms().filter((vm) => vm.template === name).map((vm) => vm.name);
    if (users.length > 0) throw new QvolError('VM_IN_USE', `VM ${name} is the template of ${users.join(', ')}: remove those first.`, { path: name });
    const volumes = [...this.volumesOf(name).values()];
    for (const v of volumes) await v.stop().catch(() => undefined);
    for (const v of volumes) await v.remove();
    await this.markers.clear(volumes);
    this.volumes.delete(name);
    delete this.state.vms[name];
    await this.save();
  }

  /** A new VM `dst` with `src`'s class, template and data; origins go to `pool` if given. */
  async cloneVm(src: string, dst: string, options: { pool?: string } = {}): Promise<VmRecord> {
    validateName('VM', dst);
    const from = this.getVm(src);
    if (this.state.vms[dst]) throw new QvolError('VM_EXISTS', `VM ${dst} already exists: choose another name.`, { path: dst });
    const pool = options.pool ? this.getPool(options.pool) : undefined;
    const record: VmRecord = { name: dst, class: from.class, ...(from.template ? { template: from.template } : {}), volumes: {} };
    const volumes = new Map<string, Volume>();
    const sources = this.volumesOf(src);
    for (const [name, sv] of sources) {
      volumes.set(name, (sv.source ? sv.pool : pool ?? sv.pool).initVolume(this.vmRef(record), {
        name,
        rw: sv.rw,
        saveOnStop: sv.saveOnStop,
        snapOnStart: sv.snapOnStart,
        revisionsToKeep: sv.revisionsToKeep,
        size: sv.size,
        ...(sv.source ? { source: sv.source } : {}),
      }));
    }
    await this.createVolumes(volumes, async (v) => {
      const sv = sources.get(v.name)!;
      if (sv.snapshotsDisabled && (await this.markers.isRunning(sv))) {
        throw new QvolError('STORAGE_POOL', `Volume ${sv.vid} must be stopped before importing its data`);
      }
      if (v.saveOnStop) await v.importVolume(sv);
    });
    this.state.vms[dst] = record;
    this.volumes.set(dst, volumes);
    this.recordVolumes(record);
    await this.save();
    return record;
  }

  /**
   * Qubes' stop_storage at startup: every VM not running (no marker of this boot) is
   * stopped, which commits what a crash left uncommitted and removes stale snapshots.
   */
  async recover(): Promise<string[]> {
    const stopped: string[] = [];
    for (const vm of this.listVms()) {
      if (await this.isRunning(vm.name)) continue;
      const dirty = await Promise.all([...this.volumesOf(vm.name).values()].map((v) => v.isDirty()));
      await this.stopVm(vm.name);
      if (dirty.some(Boolean)) stopped.push(vm.name);
    }
    return stopped;
  }

  /** Persists a volume's changed settings (after resize, config, revert). */
  async saveVolume(vm: string): Promise<void> {
    this.recordVolumes(this.getVm(vm));
    await this.save();
  }
}
