/**
 * The driver objects a daemon keeps between calls. In Qubes the registry is qubes.xml, so
 * every call brings its pool's config and its volume's: the daemon keeps one Pool per pool
 * name (rebuilt when its config changes) and one Volume per vid, so a volume's lock, a
 * pool's caches and a zfs_encrypted pool's unlocked key outlive the call, and it hands each
 * call's live settings (rw, revisions_to_keep, ephemeral, size) to the object it keeps.
 */
import { QubesValueError, UsageError } from '../errors/index.js';
import { createPool } from '../drivers/registry.js';
import type { DriverContext } from '../model/driver-context.js';
import type { Pool, VmRef } from '../model/pool.js';
import type { Volume } from '../model/volume.js';

type PoolConfig = Record<string, string | number | boolean>;

/** The volume config a call carries: Qubes' volume config, its vid included. */
export interface VolumeSpec {
  name: string;
  vid: string;
  vm?: string;
  rw: boolean;
  snap_on_start: boolean;
  save_on_stop: boolean;
  revisions_to_keep: number;
  size: number;
  ephemeral?: boolean;
  /** The snap_on_start source's own spec, in the same pool. */
  source?: VolumeSpec;
}

function bad(what: string): UsageError {
  return new UsageError(`The call's ${what}.`);
}

/** A pool config: an object of scalars with a string name and driver. */
export function checkPoolConfig(value: unknown): PoolConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('pool is not an object');
  const config = value as Record<string, unknown>;
  for (const [key, v] of Object.entries(config)) {
    if (!/^[a-z_]{1,64}$/.test(key)) throw bad(`pool has an option named ${JSON.stringify(key)}`);
    if (!['string', 'number', 'boolean'].includes(typeof v)) throw bad(`pool option ${key} is not a string, number or boolean`);
  }
  if (typeof config.name !== 'string' || typeof config.driver !== 'string') throw bad('pool has no name or driver');
  return config as PoolConfig;
}

/** A volume spec, every field checked; `depth` bounds the source chain (a source has none). */
export function checkVolumeSpec(value: unknown, depth = 0): VolumeSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('volume is not an object');
  const v = value as Record<string, unknown>;
  const str = (key: string) => {
    if (typeof v[key] !== 'string' || (v[key] as string).length === 0 || (v[key] as string).length > 1024) throw bad(`volume has no ${key}`);
    return v[key] as string;
  };
  const bool = (key: string, fallback: boolean) => {
    if (v[key] === undefined) return fallback;
    if (typeof v[key] !== 'boolean') throw bad(`volume's ${key} is not true or false`);
    return v[key] as boolean;
  };
  const int = (key: string, fallback: number) => {
    if (v[key] === undefined) return fallback;
    if (!Number.isSafeInteger(v[key])) throw bad(`volume's ${key} is not a whole number`);
    return v[key] as number;
  };
  const spec: VolumeSpec = {
    name: str('name'), vid: str('vid'),
    rw: bool('rw', false), snap_on_start: bool('snap_on_start', false), save_on_stop: bool('save_on_stop', false),
    revisions_to_keep: int('revisions_to_keep', 1), size: int('size', 0),
  };
  if (v.vm !== undefined) spec.vm = str('vm');
  if (v.ephemeral !== undefined && v.ephemeral !== null) spec.ephemeral = bool('ephemeral', false);
  if (spec.size < 0) throw new QubesValueError(`Invalid size ${spec.size} for volume ${spec.vid}.`);
  if (v.source !== undefined && v.source !== null) {
    if (depth > 0) throw bad('volume\'s source has a source of its own');
    spec.source = checkVolumeSpec(v.source, depth + 1);
  }
  return spec;
}

export class DriverSession {
  private readonly pools = new Map<string, { key: string; pool: Promise<Pool> }>();
  private readonly volumes = new Map<string, { key: string; volume: Volume }>();

  constructor(private readonly context: DriverContext = {}) {}

  /** The pool of this config, kept while its config is the same. */
  pool(value: unknown): Promise<Pool> {
    const config = checkPoolConfig(value);
    const key = JSON.stringify(Object.entries(config).sort(([a], [b]) => a.localeCompare(b)));
    const kept = this.pools.get(config.name as string);
    if (kept && kept.key === key) return kept.pool;
    const pool = createPool(config, this.context);
    this.pools.set(config.name as string, { key, pool });
    pool.catch(() => { if (this.pools.get(config.name as string)?.pool === pool) this.pools.delete(config.name as string); });
    return pool;
  }

  /** The one volume object of `spec.vid` in `pool`, with the call's live settings. */
  volume(pool: Pool, value: unknown): Volume {
    return this.volumeOf(pool, checkVolumeSpec(value));
  }

  private volumeOf(pool: Pool, spec: VolumeSpec): Volume {
    const source = spec.source ? this.volumeOf(pool, spec.source) : undefined;
    // What a volume object is built from and cannot change in place: a change makes a new one.
    const key = JSON.stringify([pool.name, spec.name, spec.vm, spec.snap_on_start, spec.save_on_stop, spec.source?.vid]);
    const id = `${pool.name}\0${spec.vid}`;
    const kept = this.volumes.get(id);
    let volume = kept && kept.key === key && kept.volume.pool === pool && kept.volume.source === source ? kept.volume : undefined;
    if (!volume) {
      const vm: VmRef = { name: spec.vm ?? spec.vid, dirPathPrefix: 'appvms' };
      volume = pool.initVolume(vm, {
        name: spec.name, vid: spec.vid, rw: spec.rw, snapOnStart: spec.snap_on_start, saveOnStop: spec.save_on_stop,
        revisionsToKeep: spec.revisions_to_keep, size: spec.size, ...(source ? { source } : {}),
        ...(spec.ephemeral !== undefined ? { ephemeral: spec.ephemeral } : {}),
      });
      this.volumes.set(id, { key, volume });
    }
    volume.applyLiveSettings({ rw: spec.rw, revisionsToKeep: spec.revisions_to_keep, size: spec.size, ephemeral: spec.ephemeral });
    return volume;
  }

  /** A volume removed: its object goes too. */
  forget(pool: Pool, vid: string): void {
    this.volumes.delete(`${pool.name}\0${vid}`);
  }
}
