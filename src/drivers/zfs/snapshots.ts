/**
 * The snapshot policy of a ZFS volume, as pure functions over its snapshots (oldest first),
 * so it is tested without ZFS:
 *   vid@qubes:<cause>:<ts>   a revision (cause before-start; ts seconds with microseconds)
 *   vid@qubes-clean-<R>      the committed state: what export() and snapshots of this volume
 *                            read while it runs (only the newest is kept)
 *   vid@qvol-export-<R>      made to read a volume that keeps no snapshots, deferred-destroyed
 * A snapshot marked for deferred destroy (waiting for its last clone) no longer counts.
 */
import { isodate } from '../../model/isodate.js';
import type { SnapshotInfo } from './datasets.js';

const REVISION = /^qubes:([a-z-]+):(\d+(?:\.\d+)?)$/;
const CLEAN_PREFIX = 'qubes-clean-';
const EXPORT_PREFIX = 'qvol-export-';

export function isRevision(s: SnapshotInfo): boolean {
  return REVISION.test(s.name) && !s.deferred;
}

export function isClean(s: SnapshotInfo): boolean {
  return s.name.startsWith(CLEAN_PREFIX) && !s.deferred;
}

/** The snapshot holding the committed state: the newest clean one, else the newest revision. */
export function latestCommitted(all: readonly SnapshotInfo[]): SnapshotInfo | undefined {
  return all.filter(isClean).at(-1) ?? all.filter(isRevision).at(-1);
}

/** Revision id (the snapshot name) -> isodate of its timestamp, oldest first. */
export function revisionMap(all: readonly SnapshotInfo[]): Map<string, string> {
  return new Map(all.filter(isRevision).map((s) => [s.name, isodate(Number(REVISION.exec(s.name)![2]))]));
}

/** The clean snapshots that a newer one replaced. */
export function staleClean(all: readonly SnapshotInfo[]): string[] {
  return all.filter(isClean).map((s) => s.name).slice(0, -1);
}

/** Snapshots that still count (not waiting for a deferred destroy). */
export function live(all: readonly SnapshotInfo[]): string[] {
  return all.filter((s) => !s.deferred).map((s) => s.name);
}

export function revisionName(epochMs: number): string {
  return `qubes:before-start:${(epochMs / 1000).toFixed(6)}`;
}

export function cleanName(random: string): string {
  return `${CLEAN_PREFIX}${random}`;
}

export function exportName(random: string): string {
  return `${EXPORT_PREFIX}${random}`;
}

/** The bare snapshot name a revision id or `ds@name` stands for. */
export function bareName(name: string): string {
  return name.includes('@') ? name.slice(name.indexOf('@') + 1) : name;
}
