/**
 * Index objects (docs/archive-format.md §6): where each stored blob is, by id, written by
 * every send for the blobs it stored. They let a send find duplicates; pages, not the
 * index, are the record of where a volume's data is.
 */
import { ArchiveError } from '../errors/index.js';
import { native } from '../native/binding.js';
import type { Archive } from './archive.js';
import { objectHash, openMetadata, sealMetadata } from './envelope.js';
import type { WrittenBlob } from './pack-writer.js';
import { REF_BYTES, type BlobRef } from './refs.js';
import type { NamedHash } from './roots.js';

export async function writeIndex(archive: Archive, blobs: WrittenBlob[]): Promise<NamedHash | undefined> {
  if (blobs.length === 0) return undefined;
  const sorted = [...blobs].sort((a, b) => Buffer.compare(a.id, b.id));
  const body = Buffer.alloc(4 + sorted.length * REF_BYTES);
  body.writeUInt32LE(sorted.length, 0);
  sorted.forEach((b, i) => {
    const at = 4 + i * REF_BYTES;
    b.id.copy(body, at);
    b.pack.copy(body, at + 32);
    body.writeBigUInt64LE(BigInt(b.offset), at + 48);
    body.writeUInt32LE(b.stored, at + 56);
    body.writeUInt32LE(b.plain, at + 60);
  });
  const name = `index/${native.randomBytes(16).toString('hex')}`;
  const bytes = sealMetadata('index', name, body, archive.keys.meta);
  await archive.store.put(name, bytes);
  return { name, hash: objectHash(bytes) };
}

/** Every blob the named index objects list, by id hex; each object checked against its hash. */
export async function readIndexes(archive: Archive, indexes: NamedHash[]): Promise<Map<string, BlobRef>> {
  const known = new Map<string, BlobRef>();
  for (const { name, hash } of indexes) {
    const bytes = await archive.store.get(name, 64 * 2 ** 20);
    if (!bytes) throw new ArchiveError('ARCHIVE_CORRUPT', `Index object ${name} is missing: run \`qvol backup verify --repair-index\`.`, { path: name });
    if (objectHash(bytes) !== hash) throw new ArchiveError('ARCHIVE_CORRUPT', `Index object ${name} is not the one its root names: it was replaced.`, { path: name });
    const body = openMetadata('index', name, bytes, archive.keys.meta);
    const count = body.length >= 4 ? body.readUInt32LE(0) : -1;
    if (count < 0 || body.length !== 4 + count * REF_BYTES) throw new ArchiveError('ARCHIVE_CORRUPT', `Index object ${name} is malformed.`, { path: name });
    for (let i = 0; i < count; i++) {
      const at = 4 + i * REF_BYTES;
      const id = Buffer.from(body.subarray(at, at + 32));
      known.set(id.toString('hex'), {
        id, pack: Buffer.from(body.subarray(at + 32, at + 48)),
        offset: Number(body.readBigUInt64LE(at + 48)), stored: body.readUInt32LE(at + 56), plain: body.readUInt32LE(at + 60),
      });
    }
  }
  return known;
}

/** The known ids as the native dedup check takes them: sorted 32-byte ids. */
export function knownIds(known: Map<string, BlobRef>): Buffer {
  return Buffer.concat([...known.keys()].sort().map((hex) => Buffer.from(hex, 'hex')));
}
