/**
 * The per-VM storage orchestration of Qubes' `Storage` class (docs/qubes-contract.md,
 * "VMs"): create, start, stop, remove and clone a VM's volumes together, with the VM's lock
 * held and the registry changed only at the edges. A start that fails half-way stops what
 * it started; a create or clone that fails removes what it made; recover goes past a VM
 * that fails and reports every failure. An ephemeral volume starts behind a dm-crypt
 * mapping with a throw-away key, and every stop closes a mapping it finds, whether or not
 * the volume is ephemeral now (io/dm-crypt.ts).
 */
import { QubesVMError, QubesVMNotHaltedError, QvolError, UsageError } from '../errors/index.js';
import { validateName } from '../model/names.js';
import type { Pool, VolumeRequest } from '../model/pool.js';
import type { BlockDevice, Volume } from '../model/volume.js';
import { vmRef, type Registry } from './registry.js';
import type { RunningMarkers } from './running.js';
import type { PendingWork, VmClass, VmRecord } from './state.js';
import { VM_CLASSES, checkTemplate, frontendName } from './vm-classes.js';

export interface StartedDevice extends BlockDevice {
  volume: string;
  frontend: string;
  /** Behind a dm-crypt mapping with a throw-away key: `path` is the mapping. */
  ephemeral: boolean;
}

/** A cloned VM, and how each of its volumes' data came over (reflink, zfs clone, ...). */
export interface CloneResult {
  record: VmRecord;
  copied: Record<string, string>;
}

export interface RecoverResult {
  /** VMs whose uncommitted data a crash had left, now committed. */
  committed: string[];
  /** VMs a crashed create or clone had left half made, now removed. */
  removed: string[];
  failed: Array<{ vm: string; error: unknown }>;
}

export class VmStorage {
  constructor(private readonly registry: Registry, private readonly markers: RunningMarkers) {}

  /** Runs `fn` holding the named VMs' locks. */
  async withVms<T>(names: string[], fn: () => Promise<T>): Promise<T> {
    const lock = await this.registry.lockVms(names);
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  async isRunning(name: string): Promise<boolean> {
    for (const v of this.registry.volumesOf(name).values()) if (await this.markers.isRunning(v)) return true;
    return false;
  }

  /** Throws QubesVMNotHaltedError while the VM runs. */
  async requireHalted(name: string): Promise<void> {
    if (await this.isRunning(name)) throw new QubesVMNotHaltedError(name, `VM ${name} is running: stop it first.`);
  }

  /** Refuses a VM that a create or clone is still making, or that a crash left half made. */
  private requireWhole(name: string): void {
    const pending = this.registry.getVm(name).pending;
    if (pending) throw new QubesVMError(name, `VM ${name} is not whole: a ${pending} did not finish; run qvol recover to remove it.`);
  }

  /**
   * Creates a VM of `cls` with the class's volumes, in `pool` or the one `volumePools`
   * gives a volume (snapshots stay with their source). With `fill`, each volume is filled
   * once made (a restore), and the VM is whole only after the last: until then it is
   * pending, so a crash leaves it for recover.
   */
  async createVm(name: string, cls: VmClass, options: { template?: string; pool: () => Promise<Pool>; volumePools?: Record<string, Pool>; fill?: { as: PendingWork; volume: (v: Volume) => Promise<void> } }): Promise<VmRecord> {
    validateName('VM', name);
    const spec = Object.hasOwn(VM_CLASSES, cls) ? VM_CLASSES[cls] : undefined;
    if (!spec) throw new UsageError(`Unknown VM class ${String(cls)}: use template, app, standalone or disp.`);
    for (const volume of Object.keys(options.volumePools ?? {})) {
      const t = spec.volumes.find((v) => v.name === volume);
      if (!t) throw new UsageError(`${cls === 'app' || cls === 'disp' ? 'An' : 'A'} ${cls} VM has no volume ${volume}: its volumes are ${spec.volumes.map((v) => v.name).join(', ')}.`);
      if (t.snapOnStart) throw new UsageError(`The ${volume} volume of ${cls === 'app' ? 'an app' : 'a disp'} VM is a snapshot of its template's and lives in that volume's pool; give a pool for ${spec.volumes.filter((v) => !v.snapOnStart).map((v) => v.name).join(' or ')}.`);
    }
    return this.withVms([name], async () => {
      const template = checkTemplate(cls, options.template, options.template === undefined ? undefined : this.registry.getVm(options.template).class);
      const pool = await options.pool();
      const volumes = new Map<string, Volume>();
      // A disposable takes `ephemeral` from its template's volume only where that was set
      // explicitly (Qubes' DispVM); unset, it follows its own pool.
      const inherited = cls === 'disp' ? this.registry.volumesOf(template!) : undefined;
      for (const t of spec.volumes) {
        const source = t.snapOnStart ? this.snapshotSource(template!, t.name) : undefined;
        const ephemeral = inherited?.get(t.name)?.config.ephemeral;
        volumes.set(t.name, this.initVolume(source ? source.pool : options.volumePools?.[t.name] ?? pool, name, cls, {
          name: t.name, rw: t.rw, saveOnStop: t.saveOnStop, snapOnStart: t.snapOnStart,
          size: source ? source.size : t.size, ...(source ? { source } : {}), ...(ephemeral === undefined ? {} : { ephemeral }),
        }));
      }
      await this.makeVm(name, cls, volumes, options.fill?.as ?? 'create', template, options.fill?.volume);
      return this.registry.getVm(name);
    });
  }

  /** A new VM `dst` with `src`'s class, template and data; origins go to `pool` if given. */
  async cloneVm(src: string, dst: string, options: { pool?: string; signal?: AbortSignal } = {}): Promise<CloneResult> {
    validateName('VM', dst);
    return this.withVms([src, dst], async () => {
      const from = this.registry.getVm(src);
      this.requireWhole(src);
      const pool = options.pool === undefined ? undefined : this.registry.getPool(options.pool);
      const sources = this.registry.volumesOf(src);
      const volumes = new Map<string, Volume>();
      for (const [name, sv] of sources) {
        volumes.set(name, this.initVolume(sv.source ? sv.pool : pool ?? sv.pool, dst, from.class, {
          name, rw: sv.rw, saveOnStop: sv.saveOnStop, snapOnStart: sv.snapOnStart, revisionsToKeep: sv.revisionsToKeep,
          size: sv.size, ...(sv.source ? { source: sv.source } : {}),
        }));
      }
      const copied: Record<string, string> = {};
      await this.makeVm(dst, from.class, volumes, 'clone', from.template, async (v) => {
        if (!v.saveOnStop) return;
        const sv = sources.get(v.name)!;
        if (sv.snapshotsDisabled && (await this.markers.isRunning(sv))) {
          throw new QvolError('STORAGE_POOL', `Volume ${sv.vid} must be stopped before importing its data`, { path: sv.vid });
        }
        copied[v.name] = (await v.importVolume(sv, { signal: options.signal })).method;
      });
      return { record: this.registry.getVm(dst), copied };
    });
  }

  private initVolume(pool: Pool, vm: string, cls: VmClass, request: VolumeRequest): Volume {
    return pool.initVolume(vmRef(vm, cls), request);
  }

  /** The volume a snapshot starts from: the template's, up the chain to an origin. */
  private snapshotSource(template: string, volume: string): Volume {
    let v = this.registry.getVolume(template, volume);
    while (v.source) v = v.source;
    return v;
  }

  /**
   * Reserves the VM in the registry, creates (and fills) every volume, then records it whole.
   * On failure the volumes made are removed again and the reservation dropped
   * (Qubes' VmCreationManager); after a crash, recover does the same.
   */
  private async makeVm(name: string, cls: VmClass, volumes: Map<string, Volume>, pending: PendingWork, template: string | undefined, fill?: (v: Volume) => Promise<void>): Promise<void> {
    try {
      await this.registry.reserveVm(name, cls, volumes, pending, template);
    } catch (err) {
      for (const v of volumes.values()) v.pool.forget(v.vid);
      throw err;
    }
    try {
      for (const v of volumes.values()) {
        await v.create();
        if (fill) await fill(v);
      }
    } catch (err) {
      await this.discardVm(name).catch(() => undefined);
      throw err;
    }
    await this.registry.saveVm(name);
  }

  /** Removes every volume of a VM and its record, whatever state they are in. */
  private async discardVm(name: string): Promise<void> {
    const volumes = [...this.registry.volumesOf(name).values()];
    for (const v of volumes) await v.remove().catch(() => undefined);
    await this.markers.clear(volumes);
    await this.registry.deleteVm(name);
  }

  /** Starts every volume of the VM and returns the devices to give it. */
  async startVm(name: string): Promise<StartedDevice[]> {
    return this.withVms([name], async () => {
      this.requireWhole(name);
      const volumes = [...this.registry.volumesOf(name).values()];
      if (await this.isRunning(name)) throw new QubesVMError(name, `VM ${name} is already running: stop it first.`);
      for (const v of volumes) {
        if (v.source?.snapshotsDisabled && (await this.markers.isRunning(v.source))) {
          throw new QubesVMError(name, `Volume ${v.source.vid} is running`);
        }
      }
      const results = await Promise.allSettled(volumes.map((v) => startVolume(v)));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) {
        // Undo the volumes that did start, so the VM is halted as it was.
        const started = volumes.filter((_, i) => results[i]!.status === 'fulfilled');
        await Promise.allSettled(started.map((v) => stopVolume(v)));
        throw failed.reason;
      }
      await this.markers.mark(volumes);
      return volumes.map((v, i) => {
        const device = results[i]!.status === 'fulfilled' ? (results[i] as PromiseFulfilledResult<BlockDevice | undefined>).value : undefined;
        return { ...(device ?? v.blockDevice()!), volume: v.name, frontend: frontendName(v.name, i), ephemeral: device !== undefined };
      });
    });
  }

  /** Stops every volume (commit or discard); also the way to commit what a crash left. */
  async stopVm(name: string): Promise<void> {
    await this.withVms([name], () => this.stopLocked(name));
  }

  /**
   * Stops every volume even when one fails, so that a stop commits or discards all it can
   * and says exactly which volumes it did not stop (those stay marked running).
   */
  private async stopLocked(name: string): Promise<void> {
    const volumes = [...this.registry.volumesOf(name).values()];
    const results = await Promise.allSettled(volumes.map((v) => stopVolume(v)));
    const stopped = volumes.filter((_, i) => results[i]!.status === 'fulfilled');
    await this.markers.clear(stopped);
    await this.registry.saveVm(name);
    const failures = volumes.flatMap((v, i) => {
      const r = results[i]!;
      return r.status === 'rejected' ? [{ volume: v.name, error: r.reason as unknown }] : [];
    });
    if (failures.length === 0) return;
    if (failures.length === volumes.length && failures.length === 1) throw failures[0]!.error;
    const why = failures.map((f) => `${f.volume}: ${(f.error instanceof Error ? f.error.message : String(f.error)).replace(/\.$/, '')}`).join('; ');
    const done = stopped.length > 0 ? ` ${stopped.map((v) => v.name).join(', ')} stopped (committed or discarded).` : '';
    throw new QubesVMError(name, `VM ${name} did not stop whole: ${why}.${done} Fix that and run qvol vm stop ${name} again.`, { cause: failures[0]!.error });
  }

  async removeVm(name: string): Promise<void> {
    await this.withVms([name], async () => {
      await this.requireHalted(name);
      const users = this.registry.listVms().filter((vm) => vm.template === name).map((vm) => vm.name);
      if (users.length > 0) throw new QvolError('VM_IN_USE', `VM ${name} is the template of ${users.join(', ')}: remove those first.`, { path: name });
      const volumes = [...this.registry.volumesOf(name).values()];
      for (const v of volumes) await stopVolume(v).catch(() => undefined);
      for (const v of volumes) await v.remove();
      await this.markers.clear(volumes);
      await this.registry.deleteVm(name);
    });
  }

  /**
   * Qubes' stop_storage at startup: every VM not running (no marker of this boot) is
   * stopped, which commits what a crash left uncommitted; a VM a crashed create or clone
   * left half made is removed. A VM that fails does not stop the others.
   */
  async recover(): Promise<RecoverResult> {
    // qubesd stops (and so commits) every halted VM's storage itself when it starts.
    this.registry.requireOwnRegistry('Cannot recover the Qubes VMs (qubesd does that when it starts)');
    const result: RecoverResult = { committed: [], removed: [], failed: [] };
    for (const { name } of this.registry.listVms()) {
      try {
        await this.withVms([name], async () => {
          if (!this.registry.hasVm(name)) return; // removed while we waited
          if (this.registry.getVm(name).pending) {
            await this.discardVm(name);
            result.removed.push(name);
            return;
          }
          if (await this.isRunning(name)) return;
          const dirty = await Promise.all([...this.registry.volumesOf(name).values()].map((v) => v.isDirty()));
          await this.stopLocked(name);
          if (dirty.some(Boolean)) result.committed.push(name);
        });
      } catch (error) {
        result.failed.push({ vm: name, error });
      }
    }
    return result;
  }
}

/**
 * Starts one volume: an ephemeral one behind its mapping, whose device is then
 * the one the VM gets (Qubes' make_encrypted_device); undefined means the volume's own.
 */
async function startVolume(v: Volume): Promise<BlockDevice | undefined> {
  if (!v.ephemeral) {
    await v.start();
    return undefined;
  }
  const { path } = await v.startEncrypted(v.encryptedPath(v.name));
  return { path, name: v.name, rw: true, devtype: 'disk' };
}

/** Stops one volume, closing a mapping at its encrypted path first if there is one. */
function stopVolume(v: Volume): Promise<void> {
  return v.stopEncrypted(v.encryptedPath(v.name));
}
