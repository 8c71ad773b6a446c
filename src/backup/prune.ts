/**
 * prune: drops the sessions a keep policy does not keep, then removes what nothing kept
 * references any more: packs none of whose blobs a kept session reaches (orphans of an
 * interrupted send included), and the index objects, rewritten to list only live blobs.
 * Its cost follows what it removes and the kept sessions' distinct pages; it holds the
 * live blobs' references packed, 64 bytes each. Packs still partly live are kept whole (a later version
 * rewrites those that are mostly garbage).
 */
import type { Archive } from './archive.js';
import { RefList } from './blob-index.js';
import { writeIndex } from './index-objects.js';
import { lockArchive } from './lock.js';
import { packName, type BlobRef } from './refs.js';
import { currentRoot, writeRoot, type NamedHash, type RootOptions } from './roots.js';
import { readSession, type Session } from './sessions.js';
import { walkTree } from './tree.js';

export interface KeepPolicy {
  last?: number | undefined;
  daily?: number | undefined;
  weekly?: number | undefined;
  monthly?: number | undefined;
}

export interface PruneResult {
  sessionsKept: number;
  sessionsRemoved: string[];
  packsRemoved: number;
  bytesFreed: number;
  dryRun: boolean;
}

/** The sessions a policy keeps, per VM: the newest `last`, and the newest of each of the last `daily` days, ... */
export function sessionsToKeep(sessions: Array<{ ref: NamedHash; session: Session }>, policy: KeepPolicy): Set<string> {
  const keep = new Set<string>();
  const vms = new Set(sessions.flatMap((s) => s.session.vms.map((v) => v.name)));
  const buckets: Array<[number | undefined, (d: Date) => string]> = [
    [policy.daily, (d) => d.toISOString().slice(0, 10)],
    [policy.weekly, (d) => { const t = new Date(d); t.setUTCDate(t.getUTCDate() - ((t.getUTCDay() + 6) % 7)); return t.toISOString().slice(0, 10); }],
    [policy.monthly, (d) => d.toISOString().slice(0, 7)],
  ];
  for (const vm of vms) {
    const mine = sessions.filter((s) => s.session.vms.some((v) => v.name === vm)).reverse(); // newest first
    mine.slice(0, policy.last ?? 0).forEach((s) => keep.add(s.ref.name));
    for (const [count, bucket] of buckets) {
      if (!count) continue;
      const seen = new Set<string>();
      for (const s of mine) {
        const b = bucket(new Date(s.session.time));
        if (seen.has(b)) continue;
        seen.add(b);
        if (seen.size > count) break;
        keep.add(s.ref.name);
      }
    }
  }
  return keep;
}

export async function pruneArchive(archive: Archive, policy: KeepPolicy, options: RootOptions & { dryRun?: boolean }): Promise<PruneResult> {
  const lock = await lockArchive(archive.store, 'backup prune');
  try {
    const current = await currentRoot(archive, options);
    const sessions = [];
    for (const ref of current.root.sessions) sessions.push({ ref, session: await readSession(archive, ref) });
    const keep = sessionsToKeep(sessions, policy);
    const kept = sessions.filter((s) => keep.has(s.ref.name));
    const removed = sessions.filter((s) => !keep.has(s.ref.name)).map((s) => s.ref.name);
    // Every blob a kept session reaches, as packed references (64 bytes each), and every
    // live pack. A page seen once is not walked again: sessions share most of their pages.
    const live = new RefList();
    const seenPages = new Set<string>();
    const livePacks = new Set<string>();
    const note = (ref: BlobRef) => {
      live.push(ref);
      livePacks.add(packName(ref.pack));
    };
    for (const { session } of kept) {
      for (const vm of session.vms) {
        for (const v of vm.volumes) {
          await walkTree(archive, v.tree, Math.ceil(v.size / archive.config.chunkSize), async (_i, ref) => { note(ref); }, (ref) => {
            const id = ref.id.toString('hex');
            if (seenPages.has(id)) return false;
            seenPages.add(id);
            note(ref);
            return true;
          });
        }
      }
    }
    const dead = (await archive.store.list('packs/')).filter((p) => !livePacks.has(p));
    let bytesFreed = 0;
    for (const p of dead) bytesFreed += (await archive.store.size(p)) ?? 0;
    if (options.dryRun) return { sessionsKept: kept.length, sessionsRemoved: removed, packsRemoved: dead.length, bytesFreed, dryRun: true };
    // The new root first (it names only what stays), then the objects nothing names.
    const indexes = await writeIndex(archive, live.sorted());
    const next = await writeRoot(archive, current, { sessions: kept.map((s) => s.ref), indexes }, options);
    for (const name of removed) await archive.store.delete(name);
    for (const old of current.root.indexes) await archive.store.delete(old.name);
    for (const p of dead) await archive.store.delete(p);
    // What no root names any more: older roots (each names its predecessor by hash only),
    // and the sessions and indexes a killed send or prune left, then partial writes.
    const named = new Set([next.self!.name, ...kept.map((s) => s.ref.name), ...indexes.map((i) => i.name)]);
    for (const prefix of ['roots/', 'sessions/', 'index/']) {
      for (const name of await archive.store.list(prefix)) if (!named.has(name)) await archive.store.delete(name);
    }
    await archive.store.clean?.();
    return { sessionsKept: kept.length, sessionsRemoved: removed, packsRemoved: dead.length, bytesFreed, dryRun: false };
  } finally {
    await lock.release();
  }
}
