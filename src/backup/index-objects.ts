/**
 * Index objects (docs/archive-format.md §6): where each stored blob is, by id, written by
 * every send for the blobs it stored. They let a send find duplicates; pages, not the
 * index, are the record of where a volume's data is.
 */
import { ArchiveError } from '../errors/index.js';
import { native } from '../native/binding.js';
import type { Archive } from './archive.js';
import { BOUNDS, objectHash, openMetadata, sealMetadata } from './envelope.js';
import { RefList } from './blob-index.js';
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

/**
 * Index objects written as references stream in, in id order: each object is written once
 * it holds REFS_PER_OBJECT, so a prune never holds more than one object's worth.
 */
export class IndexWriter {
  private refs = new RefList();
  private readonly written: NamedHash[] = [];

  constructor(private readonly archive: Archive) {}

  /** The reference at `at` of `from`; references must come in id order. */
  async push(from: Buffer, at: number): Promise<void> {
    this.refs.pushEncoded(from.subarray(at, at + REF_BYTES));
    if (this.refs.count === REFS_PER_OBJECT) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.refs.count === 0) return;
    this.written.push(...(await writeIndex(this.archive, this.refs.sorted())));
    this.refs = new RefList();
  }

  /** Writes what is left; the objects written, in order. */
  async finish(): Promise<NamedHash[]> {
    await this.flush();
    return this.written;
  }
}

/** The references one index object lists (sorted by id), the object checked against its hash and bounds. */
export async function readIndexObject(archive: Archive, { name, hash }: NamedHash): Promise<Buffer> {
  const bytes = await archive.store.get(name, BOUNDS.index.stored);
  if (!bytes) throw new ArchiveError('ARCHIVE_CORRUPT', `Index object ${name} is missing: run \`qvol backup verify --repair-index\`.`, { path: name });
  if (objectHash(bytes) !== hash) throw new ArchiveError('ARCHIVE_CORRUPT', `Index object ${name} is not the one its root names: it was replaced.`, { path: name });
  const body = openMetadata('index', name, bytes, archive.keys.meta);
  const count = body.length >= 4 ? body.readUInt32LE(0) : -1;
  if (count < 0 || body.length !== 4 + count * REF_BYTES) throw new ArchiveError('ARCHIVE_CORRUPT', `Index object ${name} is malformed.`, { path: name });
  // Authenticated, so written by a holder of the key; each reference is still checked
  // where it is used (a page's entries, a blob's lengths) before anything is read by it.
  return body.subarray(4);
}
