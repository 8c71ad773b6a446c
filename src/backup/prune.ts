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
import { IndexWriter } from './index-objects.js';
import { LocalIndex } from './local-index.js';
import { lockArchive } from './lock.js';
import { ArchiveError } from '../errors/index.js';
import { PackWriter } from './pack-writer.js';
import { REF_BYTES, decodeRef, encodeRef, packName, type BlobRef } from './refs.js';
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

/** Calls `each(block, at)` for every live reference of `local` (its bit set in `live`), in id order. */
async function forEachLive(local: LocalIndex, live: Uint8Array, each: (block: Buffer, at: number) => Promise<void> | void): Promise<void> {
  let i = 0;
  for await (const block of local.blocks()) {
    for (let at = 0; at < block.length; at += REF_BYTES, i++) {
      if (live[i >> 3]! & (1 << (i & 7))) await each(block, at);
    }
  }
}

/**
 * Writes the index of the live blobs in one pass over the index in id order, copying those
 * of `sparse` packs into new packs on the way, each authenticated and hashed (nothing
 * damaged is carried over unnoticed), and listing them at their new places. Sessions keep
 * their references: the index gives a moved blob's new place. The index objects name packs
 * still being stored, but only the root written after this names them.
 */
async function writeLiveIndex(archive: Archive, local: LocalIndex, live: Uint8Array, sparse: Set<string>): Promise<NamedHash[]> {
  const writer = new PackWriter(archive);
  const out = new IndexWriter(archive);
  const moved = Buffer.alloc(REF_BYTES);
  try {
    await forEachLive(local, live, async (block, at) => {
      const ref = decodeRef(block, at, () => {})!;
      const pack = packName(ref.pack);
      if (!sparse.has(pack)) return out.push(block, at);
      const blob = await archive.store.read(pack, ref.offset, ref.stored);
      const type = blob[5];
      if (type !== 7 && type !== 8) throw new ArchiveError('ARCHIVE_CORRUPT', `The blob at byte ${ref.offset} of ${pack} is not a chunk or a page.`, { path: pack });
      checkRef(archive, ref, type);
      await openStoredBlob(archive, ref, type, blob); // checked, not carried over damaged
      encodeRef(await writer.add(type, ref.id, blob, ref.plain), moved, 0);
      await out.push(moved, 0);
    });
    await writer.finish();
  } finally {
    await writer.settle();
  }
  return out.finish();
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
  let local: LocalIndex | undefined;
  try {
    const current = await currentRoot(archive, options);
    const sessions = [];
    for (const ref of current.root.sessions) sessions.push({ ref, session: await readSession(archive, ref) });
    const keep = sessionsToKeep(sessions, policy);
    const kept = sessions.filter((s) => keep.has(s.ref.name));
    const removed = sessions.filter((s) => !keep.has(s.ref.name)).map((s) => s.ref.name);
    // Every blob a kept session reaches, marked in a bitmap over the index (one bit a
    // blob), at the place the index gives (a reference into a pack an earlier prune
    // repacked is found there too). A page seen once is not walked again: sessions share
    // most of their pages.
    local = await LocalIndex.sync(archive, current.root.indexes, options.cacheDir, { whole: true }); // one sequence to mark in
    const index = local;
    const present = new Set(await archive.store.list('packs/'));
    const live = new Uint8Array(Math.ceil(index.count / 8));
    const mark = (ref: BlobRef) => {
      const found = index.find(ref.id);
      // Pruning by an index that lacks a live blob, or places it in a pack that is gone
      // while the session's own reference is good, would delete what a kept session uses.
      if (!found || (!present.has(packName(found.ref.pack)) && present.has(packName(ref.pack)))) throw new ArchiveError('ARCHIVE_CORRUPT', `Blob ${ref.id.toString('hex').slice(0, 16)}…, which a kept session uses, is in none of the archive's index objects, or only in a pack that is gone: run \`qvol backup verify --repair-index\` before pruning.`, { path: packName(ref.pack) });
      live[found.at >> 3]! |= 1 << (found.at & 7);
    };
    const seenPages = new Set<string>();
    for (const { session } of kept) {
      for (const vm of session.vms) {
        for (const v of vm.volumes) {
          await walkTree(archive, v.tree, Math.ceil(v.size / archive.config.chunkSize), async (_i, ref) => { mark(ref); }, (ref) => {
            const id = ref.id.toString('hex');
            if (seenPages.has(id)) return false;
            seenPages.add(id);
            mark(ref);
            return true;
          });
        }
      }
    }
    const liveBytes = new Map<string, number>();
    await forEachLive(index, live, (block, at) => {
      const pack = packName(block.subarray(at + 32, at + 48));
      liveBytes.set(pack, (liveBytes.get(pack) ?? 0) + block.readUInt32LE(at + 56));
    });
    const sizes = new Map<string, number>();
    for (const p of present) sizes.set(p, (await archive.store.size(p)) ?? 0);
    const dead = [...present].filter((p) => !liveBytes.has(p));
    // Packs mostly garbage: their live blobs move to new packs, and the packs go.
    const sparse = [...liveBytes].filter(([pack, bytes]) => present.has(pack) && bytes < sizes.get(pack)! * REPACK_BELOW).map(([pack]) => pack);
    let bytesFreed = 0;
    for (const p of [...dead, ...sparse]) bytesFreed += sizes.get(p)!;
    const movedBytes = sparse.reduce((n, p) => n + liveBytes.get(p)!, 0);
    bytesFreed -= movedBytes;
    const result = { sessionsKept: kept.length, sessionsRemoved: removed, packsRemoved: dead.length + sparse.length, packsRepacked: sparse.length, bytesMoved: movedBytes, bytesFreed };
    if (options.dryRun) return { ...result, dryRun: true };
    const indexes = await writeLiveIndex(archive, index, live, new Set(sparse));
    // The new root first (it names only what stays), then the objects nothing names.
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
    await local?.close();
    await lock.release();
  }
}
