/**
 * Packs (docs/archive-format.md §5): blobs appended into a buffer of about 32 MiB, then the
 * sealed pack header and the trailer, stored as one object. A reference is known as soon
 * as a blob is added (its pack's name is chosen when the pack starts), and is valid once
 * finish() has stored every pack: callers write the objects that reference blobs only after.
 * A full pack is stored while the next one fills; at most PUTS_IN_FLIGHT wait at once, so
 * memory stays a few packs whatever the volume.
 */
import { native } from '../native/binding.js';
import { ArchiveError } from '../errors/index.js';
import { BOUNDS, SEAL_OVERHEAD, corrupt, inflate, open, seal } from './envelope.js';
import type { Archive } from './archive.js';
import { PACK_ID_BYTES, packName, type BlobRef } from './refs.js';
import { RefList } from './blob-index.js';

export const PACK_TARGET = 32 * 2 ** 20;
const ENTRY_BYTES = 64;
const PUTS_IN_FLIGHT = 2;

export interface WrittenBlob extends BlobRef {
  type: 7 | 8;
}

export class PackWriter {
  private pack = native.randomBytes(PACK_ID_BYTES);
  private parts: Buffer[] = [];
  private size = 0;
  private entries: WrittenBlob[] = [];
  private puts: Array<Promise<void>> = [];
  /** Every blob stored by this writer, for the session's index objects. */
  readonly written = new RefList();
  packsWritten = 0;
  bytesWritten = 0;

  constructor(private readonly archive: Archive, private readonly target = PACK_TARGET) {}

  /** Adds a sealed blob; starts storing the pack first when this one would pass the target size. */
  async add(type: 7 | 8, id: Buffer, blob: Buffer, plain: number): Promise<BlobRef> {
    if (this.size > 0 && this.size + blob.length > this.target) await this.seal();
    const entry: WrittenBlob = { type, id, pack: this.pack, offset: this.size, stored: blob.length, plain };
    this.parts.push(blob);
    this.size += blob.length;
    this.entries.push(entry);
    return entry;
  }

  /** Stores the pack being filled, if it holds anything, and waits for every pack to be stored. */
  async finish(): Promise<void> {
    await this.seal();
    while (this.puts.length > 0) await this.puts.shift();
  }

  /** Waits for every put started, stored or failed (after a failure, before the lock goes). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.puts);
  }

  /** Closes the pack being filled and starts storing it; waits while too many are in flight. */
  private async seal(): Promise<void> {
    if (this.entries.length === 0) return;
    const entries = this.entries;
    const table = Buffer.alloc(4 + entries.length * ENTRY_BYTES);
    table.writeUInt32LE(entries.length, 0);
    entries.forEach((e, i) => {
      const at = 4 + i * ENTRY_BYTES;
      e.id.copy(table, at);
      table[at + 32] = e.type;
      table.writeBigUInt64LE(BigInt(e.offset), at + 36);
      table.writeUInt32LE(e.stored, at + 44);
      table.writeUInt32LE(e.plain, at + 48);
    });
    const name = packName(this.pack);
    const header = seal('packHeader', Buffer.from(name), native.zstdCompress(table, 3), this.archive.keys.meta);
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(header.length, 0);
    trailer.write('QVPK', 4, 'latin1');
    const parts = [...this.parts, header, trailer];
    const length = this.size + header.length + trailer.length;
    this.pack = native.randomBytes(PACK_ID_BYTES);
    this.parts = [];
    this.size = 0;
    this.entries = [];
    const put = this.archive.store.put(name, parts).then(() => {
      this.packsWritten++;
      this.bytesWritten += length;
      for (const e of entries) this.written.push(e);
    });
    put.catch(() => {}); // awaited below or in finish(); this only keeps a failure from going unheard meanwhile
    this.puts.push(put);
    while (this.puts.length > PUTS_IN_FLIGHT) await this.puts.shift();
  }
}

/** A pack's header (its blobs' places), read from the trailer back and authenticated. */
export async function readPackHeader(archive: Archive, name: string): Promise<WrittenBlob[]> {
  const size = await archive.store.size(name);
  if (size === undefined) throw new ArchiveError('ARCHIVE_CORRUPT', `Pack ${name} is missing.`, { path: name });
  if (size < 8 + SEAL_OVERHEAD) throw corrupt(name, 'is too short to be a pack');
  const trailer = await archive.store.read(name, size - 8, 8);
  const headerLength = trailer.readUInt32LE(0);
  if (trailer.toString('latin1', 4) !== 'QVPK' || headerLength > BOUNDS.packHeader.stored || headerLength > size - 8) throw corrupt(name, 'has no valid trailer');
  const sealed = await archive.store.read(name, size - 8 - headerLength, headerLength);
  const table = inflate(open('packHeader', Buffer.from(name), sealed, archive.keys.meta, name, BOUNDS.packHeader.stored), BOUNDS.packHeader.plain, name);
  const count = table.length >= 4 ? table.readUInt32LE(0) : -1;
  if (count < 0 || table.length !== 4 + count * ENTRY_BYTES) throw corrupt(name, 'has a malformed header');
  const pack = Buffer.from(name.slice(-32), 'hex');
  const out: WrittenBlob[] = [];
  for (let i = 0; i < count; i++) {
    const at = 4 + i * ENTRY_BYTES;
    const type = table[at + 32];
    const entry = { type: type as 7 | 8, id: Buffer.from(table.subarray(at, at + 32)), pack, offset: Number(table.readBigUInt64LE(at + 36)), stored: table.readUInt32LE(at + 44), plain: table.readUInt32LE(at + 48) };
    if ((type !== 7 && type !== 8) || entry.offset + entry.stored > size - 8 - headerLength) throw corrupt(name, `lists a blob outside its data (entry ${i})`);
    out.push(entry);
  }
  return out;
}
