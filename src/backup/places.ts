/**
 * Where a blob is now. A reference names the place its blob was stored when the reference
 * was made; prune may later move a live blob out of a pack that is mostly garbage into a
 * new one (docs/archive-format.md §10). The blob's bytes move as they are (their seal binds
 * the blob's type and id, not its place), and from then on the index, which the root names
 * by hash, gives its place. So a reader whose reference points into a pack that is gone
 * looks the id up in the current root's index.
 */
import { ArchiveError } from '../errors/index.js';
import type { Archive } from './archive.js';
import { LocalIndex } from './local-index.js';
import { packName, type BlobRef } from './refs.js';
import type { NamedHash } from './roots.js';

const rootIndexes = new WeakMap<Archive, { indexes: NamedHash[]; cacheDir: string }>();
const loaded = new WeakMap<Archive, Promise<LocalIndex>>();

/** Called for each root read: its index is the one that gives moved blobs' places. */
export function noteRootIndexes(archive: Archive, indexes: NamedHash[], cacheDir: string): void {
  if (rootIndexes.get(archive)?.indexes === indexes) return;
  rootIndexes.set(archive, { indexes, cacheDir });
  void closePlaces(archive);
}

/** Closes the index file a moved blob's lookup opened, if one did. */
export async function closePlaces(archive: Archive): Promise<void> {
  const index = loaded.get(archive);
  loaded.delete(archive);
  await (await index?.catch(() => undefined))?.close();
}

/** The current root's index (the local file, brought up to date), opened once per root and only when a moved blob is met. */
function currentIndex(archive: Archive): Promise<LocalIndex> {
  let index = loaded.get(archive);
  if (!index) {
    const root = rootIndexes.get(archive);
    index = root ? LocalIndex.sync(archive, root.indexes, root.cacheDir) : Promise.resolve(LocalIndex.empty());
    loaded.set(archive, index);
  }
  return index;
}

/**
 * `ref` itself while its pack is there (`packExists`), else the place the index gives its
 * id; an ArchiveError naming the pack when the index has none elsewhere.
 */
export async function placeOf(archive: Archive, ref: BlobRef, packExists: (name: string) => boolean): Promise<BlobRef> {
  const name = packName(ref.pack);
  if (packExists(name)) return ref;
  const moved = (await currentIndex(archive)).lookup(ref.id);
  if (!moved || moved.pack.equals(ref.pack) || moved.plain !== ref.plain) {
    throw new ArchiveError('ARCHIVE_CORRUPT', `Pack ${name} is missing, and the archive's index has no other place for blob ${ref.id.toString('hex').slice(0, 16)}…: it was deleted.`, { path: name });
  }
  return moved;
}
