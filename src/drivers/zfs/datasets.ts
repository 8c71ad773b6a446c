/**
 * Dataset-level operations the ZFS volumes share: existence and properties, snapshots in
 * creation order, and a destroy that survives what ZFS throws at it (a busy zvol, clones
 * that depend on the snapshots going away).
 */
import { randomBytes } from 'node:crypto';
import { isZfsFailure, rows, zfsArgv, zfsChange, zfsRead } from './zfs-command.js';

/** Our property on the pool container (inherited by every dataset under it): whose it is. */
export const POOL_PROPERTY = 'org.qvol:pool';
/** `on` while a save_on_stop volume holds uncommitted data (started, not stopped). */
export const DIRTY_PROPERTY = 'org.qvol:dirty';

export interface SnapshotInfo {
  /** The part after `@`. */
  name: string;
  /** Seconds since the epoch. */
  creation: number;
  /** The snapshot waits for its last clone to go (`zfs destroy -d`). */
  deferred: boolean;
  /** Datasets cloned from it. */
  clones: string[];
}

export function devicePath(ds: string): string {
  return `/dev/zvol/${ds}`;
}

export function randomSuffix(): string {
  return randomBytes(4).toString('hex');
}

/** The named properties of `ds` or a snapshot (zfs's `-` for unset), or undefined when it does not exist. */
export async function properties(ds: string, props: string[]): Promise<Record<string, string> | undefined> {
  try {
    const [row] = rows(await zfsRead(zfsArgv.list(ds, props, ds.includes('@') ? 'snapshot' : 'filesystem,volume')));
    if (!row) return undefined;
    return Object.fromEntries(props.map((p, i) => [p, row[i + 1] ?? '-']));
  } catch (err) {
    if (isZfsFailure(err, 'missing')) return undefined;
    throw err;
  }
}

export async function exists(ds: string): Promise<boolean> {
  return (await properties(ds, ['type'])) !== undefined;
}

/** Creates the parents of `ds` that are missing: `zfs receive`, unlike clone, needs them. */
export async function ensureParent(ds: string): Promise<void> {
  const parent = ds.slice(0, ds.lastIndexOf('/'));
  if (parent && !(await exists(parent))) await zfsChange(zfsArgv.createFilesystem(parent, {}, true));
}

/** The snapshots of `ds`, oldest first; none when `ds` does not exist. */
export async function snapshots(ds: string): Promise<SnapshotInfo[]> {
  let out: string;
  try {
    out = await zfsRead(['list', '-Hp', '-t', 'snapshot', '-s', 'createtxg', '-o', 'name,creation,defer_destroy,clones', '-d', '1', ds]);
  } catch (err) {
    if (isZfsFailure(err, 'missing')) return [];
    throw err;
  }
  return rows(out).map(([full = '', creation = '0', deferred = 'off', clones = '']) => ({
    name: full.slice(full.indexOf('@') + 1),
    creation: Number(creation),
    deferred: deferred === 'on',
    clones: clones === '' || clones === '-' ? [] : clones.split(','),
  }));
}

/** Descendant datasets (not snapshots) of `root`, `root` itself excluded; none if it is missing. */
export async function descendants(root: string): Promise<string[]> {
  try {
    return rows(await zfsRead(zfsArgv.listRecursive(root, [], 'filesystem,volume'))).map(([name = '']) => name).filter((n) => n !== root);
  } catch (err) {
    if (isZfsFailure(err, 'missing')) return [];
    throw err;
  }
}

/**
 * Destroys `ds` and its snapshots; false when there was nothing. Clones of those snapshots
 * (a running VM's root, an export) are promoted first, each once, so they live on and own
 * the snapshots they need. Promotion stays within the parent's encryption root, since every
 * clone of ours lives under the same container as its origin (OpenZFS #9267 lost the root
 * only when a clone was promoted across roots).
 */
export async function destroyDataset(ds: string, recursive = true): Promise<boolean> {
  const promoted = new Set<string>();
  for (;;) {
    try {
      await zfsChange(zfsArgv.destroy(ds, recursive));
      return true;
    } catch (err) {
      if (isZfsFailure(err, 'missing')) return false;
      if (!isZfsFailure(err, 'dependent-clones')) throw err;
      const pending = (await snapshots(ds)).flatMap((s) => s.clones.slice(0, 1)).filter((c) => !promoted.has(c));
      if (pending.length === 0) throw err;
      for (const clone of pending) {
        await zfsChange(zfsArgv.promote(clone));
        promoted.add(clone);
      }
    }
  }
}

/** Destroys an empty parent dataset (a VM's), leaving it when it still has children. */
export async function destroyIfEmpty(ds: string): Promise<void> {
  try {
    await zfsChange(zfsArgv.destroy(ds, false));
  } catch (err) {
    if (!isZfsFailure(err, 'missing', 'has-children', 'exists')) throw err;
  }
}
