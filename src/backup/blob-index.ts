/**
 * References held packed, 64 bytes each (the index objects' own layout,
 * docs/archive-format.md §6), rather than an object per blob, sorted natively and searched
 * by bisection; and the set of blobs a send may reuse.
 */
import { native } from '../native/binding.js';
import type { LocalIndex } from './local-index.js';
import { ID_BYTES, REF_BYTES, decodeRef, encodeRef, type BlobRef } from './refs.js';

/** A growing list of references, in the order added. */
export class RefList {
  private buf = Buffer.alloc(REF_BYTES * 1024);
  count = 0;

  push(ref: BlobRef): void {
    if ((this.count + 1) * REF_BYTES > this.buf.length) {
      const bigger = Buffer.alloc(this.buf.length * 2);
      this.buf.copy(bigger);
      this.buf = bigger;
    }
    encodeRef(ref, this.buf, this.count * REF_BYTES);
    this.count++;
  }

  /** Appends references already encoded (an index object's body). */
  pushEncoded(refs: Buffer): void {
    const need = this.count * REF_BYTES + refs.length;
    if (need > this.buf.length) {
      const bigger = Buffer.alloc(Math.max(need, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, this.count * REF_BYTES);
      this.buf = bigger;
    }
    refs.copy(this.buf, this.count * REF_BYTES);
    this.count += refs.length / REF_BYTES;
  }

  /** The references sorted by id, one per id; the list is consumed. */
  sorted(): Buffer {
    const used = this.buf.subarray(0, this.count * REF_BYTES);
    const unique = native.sortRefsSync(used);
    this.buf = Buffer.alloc(0);
    this.count = 0;
    return used.subarray(0, unique * REF_BYTES);
  }
}

/**
 * The blobs a send may reuse: the archive's index (a local file, src/backup/local-index.ts),
 * `extra` references held in memory (sorted by id, one per id: the index's delta and an
 * interrupted send's packs this send adopts), and the blobs this send stored.
 */
export class BlobIndex {
  private readonly fresh = new Map<string, BlobRef>();

  constructor(readonly local: LocalIndex, readonly extra: Buffer = Buffer.alloc(0)) {}

  /** What the native sealer takes to skip blobs the archive holds: `known` and `knownFile`. */
  get sealing(): { known: Buffer; knownFile: LocalIndex['file'] } {
    return { known: this.extra, knownFile: this.local.file };
  }

  lookup(id: Buffer): BlobRef | undefined {
    // The file, then `extra` (which holds the local index's delta too), then this send's.
    return this.local.find(id)?.ref ?? findSorted(this.extra, id) ?? this.fresh.get(id.toString('hex'));
  }

  remember(ref: BlobRef): void {
    this.fresh.set(ref.id.toString('hex'), ref);
  }
}

/** The reference of `id` in packed references sorted by id, by bisection. */
export function findSorted(sorted: Buffer, id: Buffer): BlobRef | undefined {
  let lo = 0;
  let hi = sorted.length / REF_BYTES;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = sorted.compare(id, 0, ID_BYTES, mid * REF_BYTES, mid * REF_BYTES + ID_BYTES);
    if (c === 0) return decodeRef(sorted, mid * REF_BYTES, () => {});
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return undefined;
}
