/**
 * The index rebuilt from the packs themselves (docs/archive-format.md §5, §6): each pack
 * carries its own sealed header listing its blobs, so what the index says can always be
 * found again. Two users: a send adopts the packs an interrupted send stored but never
 * indexed (so their chunks are not uploaded twice), and `verify --repair-index` rebuilds
 * the whole index after an index object was lost or damaged.
 */
import { ArchiveError } from '../errors/index.js';
import type { Archive } from './archive.js';
import { RefList } from './blob-index.js';
import type { LocalIndex } from './local-index.js';
import { writeIndex } from './index-objects.js';
import { lockArchive } from './lock.js';
import { readPackHeader } from './pack-writer.js';
import { REF_BYTES } from './refs.js';
import { currentRoot, writeRoot, type RootOptions } from './roots.js';
import { checkRef, readBlob } from './tree.js';

/** The packs of the archive that no reference in `index` is in. */
export async function packsOutside(archive: Archive, index: LocalIndex): Promise<string[]> {
  // The store's packs by the first six bytes of their ids, struck off as the index names
  // them: one number a reference, no string (an archive's index lists millions). Two packs
  // sharing six bytes would make one look indexed: it is then only not adopted.
  const outside = new Map<number, string>();
  for (const name of await archive.store.list('packs/')) outside.set(Number.parseInt(name.slice(-32, -20), 16), name);
  for await (const block of index.blocks({ delta: true })) {
    for (let at = 0; at < block.length; at += REF_BYTES) outside.delete(block.readUIntBE(at + 32, 6));
    if (outside.size === 0) break;
  }
  return [...outside.values()];
}

export interface PackReading {
  refs: RefList;
  packs: number;
  /** Packs whose header could not be read or authenticated (a write cut short, damage): left alone. */
  unreadable: Array<{ pack: string; message: string }>;
}

/**
 * Every blob the named packs' headers list, the headers read and authenticated. With
 * `blobs`, each blob is read and opened too, and a pack with one bad blob is left out
 * whole: a send adopting an interrupted send's packs relies on their contents from then on.
 */
export async function readPacks(archive: Archive, packs: string[], options: { blobs?: boolean } = {}): Promise<PackReading> {
  const out: PackReading = { refs: new RefList(), packs: 0, unreadable: [] };
  for (const pack of packs) {
    try {
      const listed = await readPackHeader(archive, pack);
      if (options.blobs) {
        for (const blob of listed) {
          checkRef(archive, blob, blob.type);
          await readBlob(archive, blob, blob.type);
        }
      }
      for (const blob of listed) out.refs.push(blob);
      out.packs++;
    } catch (err) {
      if (!(err instanceof ArchiveError)) throw err;
      out.unreadable.push({ pack, message: err.message });
    }
  }
  return out;
}

export interface RepairResult {
  packs: number;
  blobs: number;
  indexObjects: number;
  unreadable: PackReading['unreadable'];
  generation: number;
}

/**
 * Rebuilds the index from every pack's header: new index objects, then a root naming them
 * with the same sessions, then the old index objects removed. A crash between leaves the
 * old root (and index) or the new one, each whole.
 */
export async function repairIndex(archive: Archive, options: RootOptions): Promise<RepairResult> {
  const lock = await lockArchive(archive.store, 'backup verify --repair-index');
  try {
    const current = await currentRoot(archive, options);
    const read = await readPacks(archive, await archive.store.list('packs/'));
    const sorted = read.refs.sorted();
    const indexes = await writeIndex(archive, sorted);
    const next = await writeRoot(archive, current, { sessions: current.root.sessions, indexes }, options);
    for (const old of current.root.indexes) await archive.store.delete(old.name);
    return { packs: read.packs, blobs: sorted.length / REF_BYTES, indexObjects: indexes.length, unreadable: read.unreadable, generation: next.root.generation };
  } finally {
    await lock.release();
  }
}
