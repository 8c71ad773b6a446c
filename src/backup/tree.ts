/**
 * A volume's chunk list as a tree of pages (docs/archive-format.md §7). Building takes the
 * chunks' references in order and keeps one page per level in memory; walking visits the
 * non-zero chunks in order, a page at a time. A page whose entries are all zero is not
 * stored: its reference is zero, and so is a whole zero subtree.
 */
import { ArchiveError } from '../errors/index.js';
import { native, type SortedRefsFile } from '../native/binding.js';
import type { Archive } from './archive.js';
import type { PackWriter } from './pack-writer.js';
import { placeOf } from './places.js';
import { REF_BYTES, decodeRef, encodeRef, packName, type BlobRef } from './refs.js';

export const PAGE_ENTRIES = 4096;
const PAGE_MAX = PAGE_ENTRIES * REF_BYTES;

export interface Tree {
  /** Page levels; 0 for a volume of no chunks. */
  depth: number;
  /** The top page's reference; undefined when every chunk is zero. */
  root: BlobRef | undefined;
}

/** Where new pages go, and which pages the archive already holds. */
export interface PageSink {
  packs: PackWriter;
  /** A blob the archive (or this session) holds already. */
  lookup(id: Buffer): BlobRef | undefined;
  remember(ref: BlobRef): void;
  /** What the native sealer takes to skip blobs the archive holds (BlobIndex.sealing). */
  sealing: { known: Buffer; knownFile: SortedRefsFile | undefined };
}

async function storePage(archive: Archive, sink: PageSink, page: Buffer): Promise<BlobRef | undefined> {
  if (page.every((b) => b === 0)) return undefined;
  const { id, blob } = await native.sealBlob(page, { type: 8, idKey: archive.keys['chunk-id'], dataKey: archive.keys.data, level: 3, ...sink.sealing });
  const had = sink.lookup(id);
  if (had) return had;
  if (!blob) throw new ArchiveError('ARCHIVE_CORRUPT', `Page ${id.toString('hex')} is listed as stored but has no reference: run \`qvol backup verify --repair-index\`.`);
  const ref = await sink.packs.add(8, id, blob, page.length);
  sink.remember(ref);
  return ref;
}

/** Builds a tree from chunk references given in order. */
export class TreeBuilder {
  private levels: Array<{ page: Buffer; count: number }> = [];
  private chunks = 0;

  constructor(private readonly archive: Archive, private readonly sink: PageSink) {}

  private level(n: number): { page: Buffer; count: number } {
    while (this.levels.length <= n) this.levels.push({ page: Buffer.alloc(PAGE_MAX), count: 0 });
    return this.levels[n]!;
  }

  private async put(n: number, ref: BlobRef | undefined): Promise<void> {
    const l = this.level(n);
    encodeRef(ref, l.page, l.count * REF_BYTES);
    l.count++;
    if (l.count === PAGE_ENTRIES) {
      const pageRef = await storePage(this.archive, this.sink, l.page);
      l.page = Buffer.alloc(PAGE_MAX);
      l.count = 0;
      await this.put(n + 1, pageRef);
    }
  }

  /** The next chunk's reference (undefined: a zero chunk). */
  async add(ref: BlobRef | undefined): Promise<void> {
    this.chunks++;
    await this.put(0, ref);
  }

  /** Closes every level, partial pages included; the tree's depth follows the number of chunks. */
  async finish(): Promise<Tree> {
    const depth = depthFor(this.chunks);
    if (depth === 0) return { depth: 0, root: undefined };
    for (let n = 0; n < depth; n++) {
      const l = this.level(n);
      if (l.count === 0) continue;
      const ref = await storePage(this.archive, this.sink, l.page.subarray(0, l.count * REF_BYTES));
      l.count = 0;
      if (n === depth - 1) return { depth, root: ref };
      await this.put(n + 1, ref);
    }
    // The top page filled exactly and went up a level: that one entry is the root.
    return { depth, root: decodeRef(this.level(depth).page, 0, () => undefined) };
  }
}

/** Levels of pages for `chunks` chunks: 1 up to 4096, 2 up to 4096², ... */
export function depthFor(chunks: number): number {
  let depth = 0;
  for (let span = 1; span < chunks || (depth === 0 && chunks > 0); span *= PAGE_ENTRIES) depth++;
  return depth;
}

/**
 * Visits every non-zero chunk of a tree in order: `visit(index, ref)`, and every stored
 * page to `onPage` (prune notes them as live), which may return false to skip the page's
 * subtree (one prune has seen already: sessions share most pages). Each page is read,
 * authenticated and bounded before its entries are used.
 */
export async function walkTree(archive: Archive, tree: Tree, chunks: number, visit: (index: number, ref: BlobRef) => Promise<void>, onPage?: (ref: BlobRef) => boolean | void | Promise<boolean | void>): Promise<void> {
  if (tree.root === undefined) return;
  if (tree.depth !== depthFor(chunks)) throw new ArchiveError('ARCHIVE_CORRUPT', `A chunk list has ${tree.depth} levels where ${chunks} chunks need ${depthFor(chunks)}.`);
  const span = (level: number) => PAGE_ENTRIES ** level; // chunks under one entry of a page at `level` (0: leaf)
  const walk = async (ref: BlobRef, level: number, first: number): Promise<void> => {
    if ((await onPage?.(ref)) === false) return;
    const page = await readPage(archive, ref);
    const entries = page.length / REF_BYTES;
    if (first + (entries - 1) * span(level) >= chunks) throw new ArchiveError('ARCHIVE_CORRUPT', `Page ${ref.id.toString('hex')} lists more chunks than its volume has.`);
    for (let i = 0; i < entries; i++) {
      const child = decodeRef(page, i * REF_BYTES, (r) => checkRef(archive, r, level === 0 ? 7 : 8));
      if (!child) continue;
      if (level === 0) await visit(first + i, child);
      else await walk(child, level - 1, first + i * span(level));
    }
  };
  await walk(tree.root, tree.depth - 1, 0);
}

/** Refuses a reference whose lengths no blob of its kind can have. */
/** The largest plaintext a blob of `type` can have: a chunk, or a full page. */
export function maxPlainOf(archive: Archive, type: 7 | 8): number {
  return type === 7 ? archive.config.chunkSize : PAGE_MAX;
}

export function checkRef(archive: Archive, ref: BlobRef, type: 7 | 8): void {
  const maxPlain = maxPlainOf(archive, type);
  if (ref.plain === 0 || ref.plain > maxPlain || ref.stored > maxPlain + 1024 + 1 + 48 || ref.stored < 49) {
    throw new ArchiveError('ARCHIVE_CORRUPT', `A reference to ${ref.id.toString('hex')} gives impossible lengths (${ref.stored} stored, ${ref.plain} plain).`);
  }
}

/** Reads, authenticates and checks one page. */
export async function readPage(archive: Archive, ref: BlobRef): Promise<Buffer> {
  const page = await readBlob(archive, ref, 8);
  if (page.length % REF_BYTES !== 0) throw new ArchiveError('ARCHIVE_CORRUPT', `Page ${ref.id.toString('hex')} is not a whole number of references.`);
  return page;
}

/**
 * Reads one blob from its pack and opens it: authenticated, bounded, and hashed to its id
 * unless `checkId` is false (a restore: the tag binds the id already, see native/blob.cc;
 * `verify --data` always hashes).
 */
export async function readBlob(archive: Archive, ref: BlobRef, type: 7 | 8, options: { checkId?: boolean } = {}): Promise<Buffer> {
  let blob: Buffer;
  try {
    blob = await archive.store.read(packName(ref.pack), ref.offset, ref.stored);
  } catch (err) {
    if (!(err instanceof ArchiveError) || (await archive.store.size(packName(ref.pack))) !== undefined) throw err;
    ref = await placeOf(archive, ref, () => false); // its pack is gone: prune moved the blob
    blob = await archive.store.read(packName(ref.pack), ref.offset, ref.stored);
  }
  return openStoredBlob(archive, ref, type, blob, { inPlace: true, checkId: options.checkId ?? true });
}

/**
 * Opens a blob's stored bytes, read from `ref`'s place: authenticated, bounded, hashed to
 * its id (unless `checkId` is false). `inPlace`: the caller gives `blob` up, and it is
 * decrypted where it lies.
 */
export async function openStoredBlob(archive: Archive, ref: BlobRef, type: 7 | 8, blob: Buffer, options: { inPlace?: boolean; checkId?: boolean } = {}): Promise<Buffer> {
  const name = packName(ref.pack);
  try {
    const plain = await native.openBlob(blob, { type, id: ref.id, idKey: archive.keys['chunk-id'], dataKey: archive.keys.data, maxPlain: maxPlainOf(archive, type), inPlace: options.inPlace ?? false, checkId: options.checkId ?? true });
    if (plain.length !== ref.plain) throw Object.assign(new Error('length'), { code: 'EFORMAT' });
    return plain;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EAUTH' || code === 'EFORMAT' || code === 'EID') {
      throw new ArchiveError('ARCHIVE_CORRUPT', `The ${type === 7 ? 'chunk' : 'page'} ${ref.id.toString('hex').slice(0, 16)}… at byte ${ref.offset} of ${name} ${code === 'EAUTH' ? 'failed authentication' : code === 'EID' ? 'does not hash to its id' : 'is malformed'}: it was damaged or changed; nothing of it was used.`, { path: name, cause: err });
    }
    throw err;
  }
}
