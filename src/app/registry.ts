/**
 * The registry: the pools, the VMs and their volumes, as one state file under QVOL_HOME
 * (state.ts) and as live Pool and Volume objects. It is the one source of truth: a VM's
 * persisted record is built from its Volume objects whenever it is saved.
 *
 * Locking, so that no command waits for another's data movement:
 * - the registry lock (`lock`) is held only while the state file is read, changed and
 *   replaced (`mutate`), never across a copy, import or clone;
 * - a VM lock (`locks/vm-<name>`) is held by every command that changes a VM's storage, for
 *   the whole command, so two processes never work on one VM at once. Taking it re-reads
 *   that VM's record, since another process may have changed it while we waited.
 * Reads need no lock: the state file is only ever replaced whole.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createPool } from '../drivers/registry.js';
import { QubesPoolInUseError, QvolError } from '../errors/index.js';
import { acquireFileLock, withFileLock, type HeldLock } from '../io/file-lock.js';
import type { DriverContext } from '../model/driver-context.js';
import { validateName } from '../model/names.js';
import type { Pool, VmRef } from '../model/pool.js';
import type { Volume } from '../model/volume.js';
import { loadState, record, saveState, type PendingWork, type PoolConfig, type State, type VmClass, type VmRecord } from './state.js';

export interface RegistryOptions {
  home: string;
  /**
   * Read the pools and VMs from Qubes' qubes.xml instead of the state file, and change
   * nothing: qubesd owns them (src/qubes/qubes-xml.ts).
   */
  qubesXml?: string;
  /** How long to wait for another command's registry or VM lock (default 60 s). */
  lockTimeoutMs?: number;
  /** What the drivers get from the caller: passphrases, the key-unload timer. */
  drivers?: DriverContext;
}

/** A VM as the registry holds it: its record's fields and its live volumes. */
interface VmEntry {
  name: string;
  class: VmClass;
  template?: string;
  pending?: VmRecord['pending'];
  volumes: Map<string, Volume>;
}

export class Registry {
  readonly pools = new Map<string, Pool>();
  private readonly vms = new Map<string, VmEntry>();

  /** What qubes.xml held that qvol left out, one line each (empty for qvol's own registry). */
  skipped: string[] = [];

  private constructor(
    readonly home: string,
    private readonly lockTimeoutMs: number | undefined,
    readonly drivers: DriverContext,
    /** Qubes' registry, read-only, when set. */
    readonly qubesXml: string | undefined,
  ) {}

  static async open(options: RegistryOptions): Promise<Registry> {
    await mkdir(options.home, { recursive: true, mode: 0o700 });
    const registry = new Registry(options.home, options.lockTimeoutMs, options.drivers ?? {}, options.qubesXml);
    await registry.load(await registry.readState());
    return registry;
  }

  /** The registry's state as it is now: the state file, or qubes.xml. */
  private async readState(): Promise<State> {
    if (this.qubesXml === undefined) return loadState(this.statePath);
    const { readQubesXml } = await import('../qubes/qubes-xml.js');
    const { state, skipped } = await readQubesXml(this.qubesXml);
    this.skipped = skipped;
    return state;
  }

  /** Refuses a change to what qubesd owns (before any side effect: callers check first). */
  requireOwnRegistry(what: string): void {
    if (this.qubesXml === undefined) return;
    throw new QvolError('QUBES_REGISTRY',
      `${what}: the pools and VMs come from ${this.qubesXml}, which qubesd owns; qvol reads it and changes nothing there. Use qvm-* tools (or qvol's qubesd bridge), or --qubes-xml none for qvol's own registry.`,
      { path: this.qubesXml });
  }

  private get statePath(): string {
    return join(this.home, 'state.json');
  }

  /** Builds the pools and VMs of `state` that are not built yet. */
  private async load(state: State): Promise<void> {
    for (const config of Object.values(state.pools)) {
      if (!this.pools.has(config.name)) this.pools.set(config.name, await createPool(config, this.drivers));
    }
    for (const name of Object.keys(state.vms)) this.build(state, name);
  }

  /** The VM's volume objects from its record, its template's first. */
  private build(state: State, name: string): VmEntry {
    const done = this.vms.get(name);
    if (done) return done;
    const rec = state.vms[name]!;
    if (rec.template && Object.hasOwn(state.vms, rec.template)) this.build(state, rec.template);
    const volumes = new Map<string, Volume>();
    for (const [volName, cfg] of Object.entries(rec.volumes)) {
      const pool = this.getPool(cfg.pool);
      const source = cfg.source === undefined ? undefined : pool.getVolume(cfg.source);
      volumes.set(volName, pool.initVolume(vmRef(rec.name, rec.class), {
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
    const entry: VmEntry = {
      name: rec.name, class: rec.class, volumes,
      ...(rec.template ? { template: rec.template } : {}), ...(rec.pending ? { pending: rec.pending } : {}),
    };
    this.vms.set(name, entry);
    return entry;
  }

  // -- reads ---------------------------------------------------------------------------------

  getPool(name: string): Pool {
    const pool = this.pools.get(name);
    if (!pool) throw new QvolError('POOL_NOT_FOUND', `Unknown storage pool ${name}: see qvol pool ls.`, { path: name });
    return pool;
  }

  hasVm(name: string): boolean {
    return this.vms.has(name);
  }

  /** The VM's record as it is persisted (volume configs from the live volumes). */
  getVm(name: string): VmRecord {
    return recordOf(this.entry(name));
  }

  listVms(): VmRecord[] {
    return [...this.vms.values()].map(recordOf);
  }

  volumesOf(name: string): Map<string, Volume> {
    return this.entry(name).volumes;
  }

  getVolume(vm: string, volume: string): Volume {
    const volumes = this.volumesOf(vm);
    const v = volumes.get(volume);
    if (!v) throw new QvolError('VOLUME_NOT_FOUND', `VM ${vm} has no volume ${volume}: it has ${[...volumes.keys()].join(', ')}.`, { path: `${vm}:${volume}` });
    return v;
  }

  private entry(name: string): VmEntry {
    const entry = this.vms.get(name);
    if (!entry) throw new QvolError('VM_NOT_FOUND', `Unknown VM ${name}: see qvol vm ls.`, { path: name });
    return entry;
  }

  // -- locks -----------------------------------------------------------------------------------

  /**
   * Takes the locks of the named VMs (in name order, so two commands never wait for each
   * other in a circle) and re-reads their records. Names of VMs that do not exist yet may be
   * locked too: a create or clone holds the name it makes.
   */
  async lockVms(names: string[]): Promise<HeldLock> {
    this.requireOwnRegistry(`Cannot change VM ${names.join(', ')}`);
    // A name reaches a path here: only valid names (no '/', no '..') get that far.
    for (const name of names) validateName('VM', name);
    const dir = join(this.home, 'locks');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const held: HeldLock[] = [];
    const release = async () => { for (const l of held.reverse()) await l.release(); };
    try {
      for (const name of [...new Set(names)].sort()) {
        held.push(await acquireFileLock(join(dir, `vm-${name}.lock`), { timeoutMs: this.lockTimeoutMs, what: `VM ${name}` }));
      }
      await this.refresh(names);
    } catch (err) {
      await release();
      throw err;
    }
    return { release };
  }

  /** Rebuilds the named VMs from the state file as it is now (and any pool added meanwhile). */
  private async refresh(names: string[]): Promise<void> {
    const state = await this.readState();
    for (const name of names) this.vms.delete(name);
    await this.load(state);
  }

  // -- changes: each one read-modify-write of the state file under the registry lock ------------

  /**
   * Applies `change` to the state file as it is on disk now and replaces it. `change` sees
   * every other command's latest changes and may refuse by throwing; then nothing is written.
   */
  private async mutate(change: (state: State) => void): Promise<void> {
    this.requireOwnRegistry('Cannot change the registry');
    await withFileLock(join(this.home, 'lock'), { timeoutMs: this.lockTimeoutMs, what: 'the registry' }, async () => {
      const state = await loadState(this.statePath);
      change(state);
      await saveState(this.statePath, state);
    });
  }

  async addPool(pool: Pool): Promise<void> {
    await this.mutate((state) => {
      if (Object.hasOwn(state.pools, pool.name)) throw new QvolError('POOL_EXISTS', `pool named ${pool.name} already exists`, { path: pool.name });
      state.pools[pool.name] = { ...pool.config, name: pool.name, driver: pool.driver } as PoolConfig;
    });
    this.pools.set(pool.name, pool);
  }

  /** Stores a registered pool's changed settings. */
  async savePool(pool: Pool): Promise<void> {
    this.getPool(pool.name);
    await this.mutate((state) => {
      state.pools[pool.name] = { ...pool.config, name: pool.name, driver: pool.driver } as PoolConfig;
    });
  }

  /** Forgets a pool that no volume uses. */
  async removePool(name: string): Promise<void> {
    this.getPool(name);
    await this.mutate((state) => {
      for (const vm of Object.values(state.vms)) {
        for (const [volName, cfg] of Object.entries(vm.volumes)) {
          if (cfg.pool === name) throw new QubesPoolInUseError(name, `Storage pool ${name} is in use by VM ${vm.name} (volume ${volName}): remove or clone that VM first.`);
        }
      }
      delete state.pools[name];
    });
    this.pools.delete(name);
  }

  /**
   * Records a new VM whose volumes are about to be made, marked `pending`, so that a crash
   * before they are whole leaves a record that recover finds; refuses a name in use.
   */
  async reserveVm(name: string, cls: VmClass, volumes: Map<string, Volume>, pending: PendingWork, template?: string): Promise<void> {
    const entry: VmEntry = { name, class: cls, volumes, pending, ...(template ? { template } : {}) };
    await this.mutate((state) => {
      if (Object.hasOwn(state.vms, name)) throw new QvolError('VM_EXISTS', `VM ${name} already exists: choose another name.`, { path: name });
      state.vms[name] = recordOf(entry);
    });
    this.vms.set(name, entry);
  }

  /** Saves the VM's record as its volumes are now, and clears `pending`. */
  async saveVm(name: string): Promise<void> {
    const entry = this.entry(name);
    delete entry.pending;
    await this.mutate((state) => { state.vms[name] = recordOf(entry); });
  }

  /** Forgets a VM; refuses while another VM names it as its template. */
  async deleteVm(name: string): Promise<void> {
    await this.mutate((state) => {
      const users = Object.values(state.vms).filter((vm) => vm.template === name).map((vm) => vm.name);
      if (users.length > 0) throw new QvolError('VM_IN_USE', `VM ${name} is the template of ${users.join(', ')}: remove those first.`, { path: name });
      delete state.vms[name];
    });
    this.vms.delete(name);
  }
}

/** What a pool needs to know of the VM a volume belongs to. */
export function vmRef(name: string, cls: VmClass): VmRef {
  return { name, dirPathPrefix: cls === 'template' ? 'vm-templates' : 'appvms' };
}

function recordOf(entry: VmEntry): VmRecord {
  const volumes = record<VmRecord['volumes'][string]>();
  for (const [n, v] of entry.volumes) volumes[n] = v.config;
  return {
    name: entry.name, class: entry.class, ...(entry.template ? { template: entry.template } : {}), volumes,
    ...(entry.pending ? { pending: entry.pending } : {}),
  };
}
