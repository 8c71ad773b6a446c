/**
 * The archive's index kept in a local file (QVOL_HOME/backup/<archive id>-index) rather than
 * in memory, so that what a send, prune or restore holds does not grow with the archive:
 * 64-byte references sorted by id, found through a table of where each two-byte id prefix
 * starts, one pread per lookup (native/sys/sorted_refs.h; the native sealer searches it on
 * its own threads). It is a cache of the current root's index objects: it records which of
 * them it holds (their count and a digest of their names and hashes), takes in only those
 * a later root appended (held in memory beside it while they are few), and is rebuilt
 * when a prune rewrote them. It is read only after
 * its MAC (keyed by the archive's metadata key) checks: a damaged cache would make a send
 * reference blobs where they are not.
 *
 * Layout: header (64 bytes: magic `QVOLIDX1`, u64 count, u64 covered, 32-byte digest of
 * the covered index objects, 8 reserved), fan-out (65537 u32: references whose id's first
 * two bytes are below p), the references, then HMAC-SHA256(references || header || fan-out).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { constants, read, write } from 'node:fs';
import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { atomicReplace, tempPathFor } from '../io/atomic.js';
import { native, type SortedRefsFile } from '../native/binding.js';
import type { Archive } from './archive.js';
import { RefList, findSorted } from './blob-index.js';
import { readIndexObject } from './index-objects.js';
import { ID_BYTES, REF_BYTES, decodeRef, type BlobRef } from './refs.js';
import type { NamedHash } from './roots.js';

const MAGIC = Buffer.from('QVOLIDX1');
const HEADER = 64;
const FANOUT = 65537;
const REFS_AT = HEADER + FANOUT * 4;
const MAC_BYTES = 32;
/** Index objects a file does not hold are kept in memory up to this many references (16 MiB). */
const DELTA_REFS = 2 ** 18;
/** References read or written at a time while streaming (1 MiB). */
const BLOCK_REFS = 16384;

const preadAsync = promisify(read);
const pwriteAsync = promisify(write);

function digestOf(indexes: NamedHash[]): Buffer {
  const h = createHash('sha256');
  for (const { name, hash } of indexes) h.update(`${name} ${hash}\n`);
  return h.digest();
}

function macKey(archive: Archive): Buffer {
  return createHmac('sha256', archive.keys.meta).update('qvol local index 1').digest();
}

async function readExactly(fh: FileHandle, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  for (let done = 0; done < length;) {
    const { bytesRead } = await preadAsync(fh.fd, buf, done, length - done, position + done);
    if (bytesRead === 0) throw new Error('short');
    done += bytesRead;
  }
  return buf;
}

/** One index file, open for lookups; close() when done. */
export class LocalIndex {
  /**
   * `delta`: references of index objects the file does not hold yet, few enough to be kept
   * in memory (sorted by id) rather than worth rewriting the file for: a send on a large
   * archive then costs a read of the new objects, not a rewrite of the whole file.
   */
  private constructor(readonly fh: FileHandle | undefined, readonly count: number, private readonly fanout: Buffer, readonly delta: Buffer = Buffer.alloc(0)) {}

  /** An index of nothing (an archive with no index objects yet), without a file. */
  static empty(): LocalIndex {
    return new LocalIndex(undefined, 0, Buffer.alloc(FANOUT * 4));
  }

  /**
   * The index file for `indexes` (the current root's), made or brought up to date first:
   * a file holding a prefix of them takes in the rest (kept in memory as `delta` while
   * they list at most DELTA_REFS, unless `whole`); any other is rebuilt.
   */
  static async sync(archive: Archive, indexes: NamedHash[], dir: string, options: { whole?: boolean } = {}): Promise<LocalIndex> {
    if (indexes.length === 0) return LocalIndex.empty();
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, `${archive.config.id.toString('hex')}-index`);
    let have = await LocalIndex.openChecked(archive, path);
    const covered = have && have.covered <= indexes.length && have.digest.equals(digestOf(indexes.slice(0, have.covered))) ? have.covered : 0;
    if (covered === 0 && have) {
      await have.index.close();
      have = undefined;
    }
    if (have && covered === indexes.length) return have.index;
    try {
      if (have && !options.whole) {
        const delta = new RefList();
        for (let next = covered; next < indexes.length && delta.count <= DELTA_REFS; next++) delta.pushEncoded(await readIndexObject(archive, indexes[next]!));
        if (delta.count <= DELTA_REFS) {
          const index = new LocalIndex(have.index.fh, have.index.count, have.index.fanout, delta.sorted());
          have = undefined; // its file is the new index's now
          return index;
        }
      }
      return await LocalIndex.merge(archive, path, indexes, covered, have?.index);
    } finally {
      await have?.index.close();
    }
  }

  /**
   * Writes the index file for `indexes` from `base` (holding the first `covered`, or none)
   * and the rest. Each index object not held yet, sorted, is spilled to a run file, one
   * object in memory at a time; then one merge of the runs and `base` makes the new file.
   * (Merging batch by batch would rewrite the file once per batch.)
   */
  private static async merge(archive: Archive, path: string, indexes: NamedHash[], covered: number, base: LocalIndex | undefined): Promise<LocalIndex> {
    const spillPath = tempPathFor(path);
    const spill = await open(spillPath, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    await unlink(spillPath); // nameless from here on: a crash leaves nothing of it
    try {
      const runs: RunCursor[] = base ? [new RunCursor(base.fh!.fd, REFS_AT, base.count)] : [];
      let end = 0;
      for (const named of indexes.slice(covered)) {
        const body = await readIndexObject(archive, named);
        const refs = body.subarray(0, native.sortRefsSync(body) * REF_BYTES);
        await writeAllAt(spill.fd, refs, end);
        runs.push(new RunCursor(spill.fd, end, refs.length / REF_BYTES));
        end += refs.length;
      }
      let made: { count: number; fanout: Buffer } | undefined;
      await atomicReplace(path, async (fh) => { made = await writeMerged(archive, fh, runs, indexes.length, digestOf(indexes)); });
      // Just written and synced: opened without reading it all again for its MAC.
      return new LocalIndex(await open(path, constants.O_RDONLY | constants.O_NOFOLLOW), made!.count, made!.fanout);
    } finally {
      await spill.close();
    }
  }

  /** The file at `path` if it is whole and its MAC checks, else undefined (it is rebuilt). */
  private static async openChecked(archive: Archive, path: string): Promise<{ index: LocalIndex; covered: number; digest: Buffer } | undefined> {
    // No link followed, no wait on a FIFO: only a regular file qvol wrote is read.
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => undefined);
    if (!fh) return undefined;
    try {
      const st = await fh.stat();
      const size = st.size;
      if (!st.isFile() || size < REFS_AT + MAC_BYTES) throw new Error('not a whole index file');
      const head = await readExactly(fh, REFS_AT, 0);
      const count = Number(head.readBigUInt64LE(8));
      if (!head.subarray(0, 8).equals(MAGIC) || size !== REFS_AT + count * REF_BYTES + MAC_BYTES) throw new Error('not an index file');
      const mac = createHmac('sha256', macKey(archive));
      for (let at = 0; at < count; at += BLOCK_REFS) mac.update(await readExactly(fh, Math.min(BLOCK_REFS, count - at) * REF_BYTES, REFS_AT + at * REF_BYTES));
      mac.update(head);
      if (!timingSafeEqual(mac.digest(), await readExactly(fh, MAC_BYTES, size - MAC_BYTES))) throw new Error('MAC');
      const fanout = Buffer.from(head.subarray(HEADER));
      return { index: new LocalIndex(fh, count, fanout), covered: Number(head.readBigUInt64LE(16)), digest: Buffer.from(head.subarray(24, 56)) };
    } catch {
      await fh.close();
      return undefined;
    }
  }

  /** What the native sealer takes as `knownFile`; undefined for an empty index. */
  get file(): SortedRefsFile | undefined {
    return this.fh && { fd: this.fh.fd, fanout: this.fanout, base: REFS_AT };
  }

  /** The reference of `id` and its position in the file (not in `delta`), or undefined. */
  find(id: Buffer): { ref: BlobRef; at: number } | undefined {
    const file = this.file;
    if (!file) return undefined;
    const found = native.findRefSync(file, id);
    return found && { ref: decodeRef(found.ref, 0, () => {})!, at: found.at };
  }

  lookup(id: Buffer): BlobRef | undefined {
    return this.find(id)?.ref ?? findSorted(this.delta, id);
  }

  /**
   * The file's references in id order, BLOCK_REFS at a time (packed, 64 bytes each), then
   * `delta` (with `delta`: empty after a `whole` sync).
   */
  async *blocks(options: { delta?: boolean } = {}): AsyncGenerator<Buffer> {
    for (let at = 0; at < this.count; at += BLOCK_REFS) yield await readExactly(this.fh!, Math.min(BLOCK_REFS, this.count - at) * REF_BYTES, REFS_AT + at * REF_BYTES);
    if (options.delta && this.delta.length > 0) yield this.delta;
  }

  async close(): Promise<void> {
    await this.fh?.close();
  }
}

async function writeAllAt(fd: number, bytes: Buffer, position: number): Promise<void> {
  for (let done = 0; done < bytes.length;) done += (await pwriteAsync(fd, bytes, done, bytes.length - done, position + done)).bytesWritten;
}

/** Sorted references in a file, `count` from `start`, read a block at a time. */
class RunCursor {
  block = Buffer.alloc(0);
  at = 0;
  private read = 0;

  constructor(private readonly fd: number, private readonly start: number, private readonly count: number) {}

  /** Moves to the next reference; false when the run is done. */
  async advance(): Promise<boolean> {
    this.at += REF_BYTES;
    if (this.at < this.block.length) return true;
    if (this.read === this.count) return false;
    const n = Math.min(BLOCK_REFS, this.count - this.read);
    this.block = Buffer.allocUnsafe(n * REF_BYTES);
    for (let done = 0; done < this.block.length;) {
      const { bytesRead } = await preadAsync(this.fd, this.block, done, this.block.length - done, this.start + this.read * REF_BYTES + done);
      if (bytesRead === 0) throw new Error('a run of the local index ended early');
      done += bytesRead;
    }
    this.read += n;
    this.at = 0;
    return true;
  }

  /** Negative when this run's current id sorts before `other`'s. */
  compare(other: RunCursor): number {
    return this.block.compare(other.block, other.at, other.at + ID_BYTES, this.at, this.at + ID_BYTES);
  }
}

/**
 * Writes the runs' references merged in id order, one per id (a min-heap over the runs),
 * then the header, fan-out and MAC: a whole index file in `fh`.
 */
async function writeMerged(archive: Archive, fh: { fd: number }, runs: RunCursor[], covered: number, digest: Buffer): Promise<{ count: number; fanout: Buffer }> {
  const heap: RunCursor[] = [];
  const below = (i: number, j: number) => heap[i]!.compare(heap[j]!) < 0;
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && below(l, m)) m = l;
      if (r < heap.length && below(r, m)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (const run of runs) {
    run.at = -REF_BYTES;
    if (await run.advance()) heap.push(run);
  }
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(i);
  const fanout = Buffer.alloc(FANOUT * 4);
  const counts = new Uint32Array(65536);
  const mac = createHmac('sha256', macKey(archive));
  const out = Buffer.allocUnsafe(BLOCK_REFS * REF_BYTES);
  let used = 0;
  let count = 0;
  const flush = async () => {
    const bytes = out.subarray(0, used);
    mac.update(bytes);
    await writeAllAt(fh.fd, bytes, REFS_AT + count * REF_BYTES - used);
    used = 0;
  };
  const last = Buffer.alloc(ID_BYTES);
  while (heap.length > 0) {
    const top = heap[0]!;
    const { block, at } = top;
    // The same blob in two runs: one place is as good as another.
    if (count === 0 || block.compare(last, 0, ID_BYTES, at, at + ID_BYTES) !== 0) {
      block.copy(out, used, at, at + REF_BYTES);
      block.copy(last, 0, at, at + ID_BYTES);
      counts[(block[at]! << 8) | block[at + 1]!]!++;
      used += REF_BYTES;
      count++;
      if (used === out.length) await flush();
    }
    if (!(await top.advance())) {
      heap[0] = heap[heap.length - 1]!;
      heap.pop();
    }
    if (heap.length > 0) siftDown(0);
  }
  if (used > 0) await flush();
  let sum = 0;
  for (let p = 0; p < 65536; p++) {
    fanout.writeUInt32LE(sum, p * 4);
    sum += counts[p]!;
  }
  fanout.writeUInt32LE(sum, 65536 * 4);
  const head = Buffer.alloc(REFS_AT);
  MAGIC.copy(head, 0);
  head.writeBigUInt64LE(BigInt(count), 8);
  head.writeBigUInt64LE(BigInt(covered), 16);
  digest.copy(head, 24);
  fanout.copy(head, HEADER);
  mac.update(head);
  await writeAllAt(fh.fd, head, 0);
  await writeAllAt(fh.fd, mac.digest(), REFS_AT + count * REF_BYTES);
  return { count, fanout };
}
