/**
 * prune: drops the sessions a keep policy does not keep, then removes what nothing kept
 * references any more: packs none of whose blobs a kept session reaches (orphans of an
 * interrupted send included), and the index objects, rewritten to list only live blobs.
 * A pack whose live blobs fill less than half of it is repacked: they are copied into new
 * packs and it goes, so space comes back without rewriting any session. Its cost follows
 * what it removes and moves and the kept sessions' distinct pages; it holds the live
 * blobs' references packed, 64 bytes each.
 */
import type { Archive } from './archive.js';
import { RefList } from './blob-index.js';
import { writeIndex } from './index-objects.js';
import { lockArchive } from './lock.js';
import { ArchiveError } from '../errors/index.js';
import { PackWriter } from './pack-writer.js';
import { placeOf } from './places.js';
import { REF_BYTES, decodeRef, packName, type BlobRef } from './refs.js';
import { currentRoot, writeRoot, type NamedHash, type RootOptions } from './roots.js';
import { readSession, type Session } from './sessions.js';
import { checkRef, openStoredBlob, walkTree } from './tree.js';

export interface KeepPolicy {
  last?: number | undefined;
  daily?: number | undefined;
  weekly?: number | undefined;
  monthly?: number | undefined;
}

export interface PruneResult {
  sessionsKept: number;
  sessionsRemoved: string[];
  /** Packs deleted: those nothing kept uses, and those repacked. */
  packsRemoved: number;
  /** Packs that were mostly garbage, whose live blobs were copied into new packs. */
  packsRepacked: number;
  bytesMoved: number;
  bytesFreed: number;
  dryRun: boolean;
}

/** A pack whose live blobs fill less than this share of it is repacked. */
const REPACK_BELOW = 0.5;

/**
 * Copies the live blobs of `sparse` packs into new packs, each authenticated on the way
 * (nothing damaged is carried over unnoticed), and returns the live references with their
 * new places, sorted by id. Sessions keep their references: the index gives the new place.
 */
async function repack(archive: Archive, liveRefs: Buffer, sparse: Set<string>): Promise<Buffer> {
  const writer = new PackWriter(archive);
  const staying = new RefList();
  try {
    for (let at = 0; at < liveRefs.length; at += REF_BYTES) {
      const ref = decodeRef(liveRefs, at, () => {})!;
      const pack = packName(ref.pack);
      if (!sparse.has(pack)) {
        staying.push(ref);
        continue;
      }
      const blob = await archive.store.read(pack, ref.offset, ref.stored);
      const type = blob[5];
      if (type !== 7 && type !== 8) throw new ArchiveError('ARCHIVE_CORRUPT', `The blob at byte ${ref.offset} of ${pack} is not a chunk or a page.`, { path: pack });
      checkRef(archive, ref, type);
      await openStoredBlob(archive, ref, type, blob); // checked, not carried over damaged
      await writer.add(type, ref.id, blob, ref.plain);
    }
    await writer.finish();
  } finally {
    await writer.settle();
  }
  staying.pushEncoded(writer.written.sorted());
  return staying.sorted();
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
    // Every blob a kept session reaches, as packed references (64 bytes each), at its place
    // now (a reference into a pack an earlier prune repacked resolves through the index).
    // A page seen once is not walked again: sessions share most of their pages.
    const present = new Set(await archive.store.list('packs/'));
    const exists = (name: string) => present.has(name);
    const live = new RefList();
    const seenPages = new Set<string>();
    const note = async (ref: BlobRef) => { live.push(await placeOf(archive, ref, exists)); };
    for (const { session } of kept) {
      for (const vm of session.vms) {
        for (const v of vm.volumes) {
          await walkTree(archive, v.tree, Math.ceil(v.size / archive.config.chunkSize), (_i, ref) => note(ref), async (ref) => {
            const id = ref.id.toString('hex');
            if (seenPages.has(id)) return false;
            seenPages.add(id);
            await note(ref);
            return true;
          });
        }
      }
    }
    const liveRefs = live.sorted();
    const liveBytes = new Map<string, number>();
    for (let at = 0; at < liveRefs.length; at += REF_BYTES) {
      const pack = packName(liveRefs.subarray(at + 32, at + 48));
      liveBytes.set(pack, (liveBytes.get(pack) ?? 0) + liveRefs.readUInt32LE(at + 56));
    }
    const sizes = new Map<string, number>();
    for (const p of present) sizes.set(p, (await archive.store.size(p)) ?? 0);
    const dead = [...present].filter((p) => !liveBytes.has(p));
    // Packs mostly garbage: their live blobs move to new packs, and the packs go.
    const sparse = [...liveBytes].filter(([pack, bytes]) => bytes < sizes.get(pack)! * REPACK_BELOW).map(([pack]) => pack);
    let bytesFreed = 0;
    for (const p of [...dead, ...sparse]) bytesFreed += sizes.get(p)!;
    const movedBytes = sparse.reduce((n, p) => n + liveBytes.get(p)!, 0);
    bytesFreed -= movedBytes;
    const result = { sessionsKept: kept.length, sessionsRemoved: removed, packsRemoved: dead.length + sparse.length, packsRepacked: sparse.length, bytesMoved: movedBytes, bytesFreed };
    if (options.dryRun) return { ...result, dryRun: true };
    const indexed = sparse.length === 0 ? liveRefs : await repack(archive, liveRefs, new Set(sparse));
    // The new root first (it names only what stays), then the objects nothing names.
    const indexes = await writeIndex(archive, indexed);
    const next = await writeRoot(archive, current, { sessions: kept.map((s) => s.ref), indexes }, options);
    for (const name of removed) await archive.store.delete(name);
    for (const old of current.root.indexes) await archive.store.delete(old.name);
    for (const p of [...dead, ...sparse]) await archive.store.delete(p);
    // What no root names any more: older roots (each names its predecessor by hash only),
    // and the sessions and indexes a killed send or prune left, then partial writes.
    const named = new Set([next.self!.name, ...kept.map((s) => s.ref.name), ...indexes.map((i) => i.name)]);
    for (const prefix of ['roots/', 'sessions/', 'index/']) {
      for (const name of await archive.store.list(prefix)) if (!named.has(name)) await archive.store.delete(name);
    }
    await archive.store.clean?.();
    return { ...result, dryRun: false };
  } finally {
    await lock.release();
  }
}
