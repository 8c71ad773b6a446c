/**
 * Index objects (docs/archive-format.md §6): where each stored blob is, by id, written by
 * every send for the blobs it stored. They let a send find duplicates; pages, not the
 * index, are the record of where a volume's data is.
 */
import { ArchiveError } from '../errors/index.js';
import { native } from '../native/binding.js';
import type { Archive } from './archive.js';
import { BlobIndex, RefList } from './blob-index.js';
import { BOUNDS, objectHash, openMetadata, sealMetadata } from './envelope.js';
import { REF_BYTES } from './refs.js';
import type { NamedHash } from './roots.js';

/** At most this many references in one index object (32 MiB), whatever a send stored. */
const REFS_PER_OBJECT = 2 ** 19;

/** Writes references sorted by id as index objects of at most REFS_PER_OBJECT each. */
export async function writeIndex(archive: Archive, sorted: Buffer): Promise<NamedHash[]> {
  const out: NamedHash[] = [];
  for (let at = 0; at < sorted.length; at += REFS_PER_OBJECT * REF_BYTES) {
    const refs = sorted.subarray(at, at + REFS_PER_OBJECT * REF_BYTES);
    const body = Buffer.alloc(4 + refs.length);
    body.writeUInt32LE(refs.length / REF_BYTES, 0);
    refs.copy(body, 4);
    const name = `index/${native.randomBytes(16).toString('hex')}`;
    const bytes = sealMetadata('index', name, body, archive.keys.meta);
    await archive.store.put(name, bytes);
    out.push({ name, hash: objectHash(bytes) });
  }
  return out;
}

/** The blobs the named index objects list, each object checked against its hash and bounds. */
export async function readIndexes(archive: Archive, indexes: NamedHash[]): Promise<BlobIndex> {
  const all = new RefList();
  for (const { name, hash } of indexes) {
    const bytes = await archive.store.get(name, BOUNDS.index.stored);
    if (!bytes) throw new ArchiveError('ARCHIVE_CORRUPT', `Index object ${name} is missing: run \`qvol backup verify --repair-index\`.`, { path: name });
    if (objectHash(bytes) !== hash) throw new ArchiveError('ARCHIVE_CORRUPT', `Index object ${name} is not the one its root names: it was replaced.`, { path: name });
    const body = openMetadata('index', name, bytes, archive.keys.meta);
    const count = body.length >= 4 ? body.readUInt32LE(0) : -1;
    if (count < 0 || body.length !== 4 + count * REF_BYTES) throw new ArchiveError('ARCHIVE_CORRUPT', `Index object ${name} is malformed.`, { path: name });
    // Authenticated, so written by a holder of the key; each reference is still checked
    // where it is used (a page's entries, a blob's lengths) before anything is read by it.
    all.pushEncoded(body.subarray(4));
  }
  return new BlobIndex(all.sorted());
}
