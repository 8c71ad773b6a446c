/**
 * Where the archive's blobs are, by id, held as packed 64-byte references (the index
 * objects' own layout, docs/archive-format.md §6) rather than an object per blob: 64 bytes
 * a blob, so an archive of ten million chunks is 640 MB on disk and its index a fraction of
 * that in memory, sorted natively and searched by bisection.
 */
import { native } from '../native/binding.js';
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

/** The blobs an archive holds (sorted references) and those this operation added. */
export class BlobIndex {
  private readonly fresh = new Map<string, BlobRef>();

  /** `known`: references sorted by id, one per id, as the native sealer searches them too. */
  constructor(readonly known: Buffer) {}

  get size(): number {
    return this.known.length / REF_BYTES + this.fresh.size;
  }

  lookup(id: Buffer): BlobRef | undefined {
    let lo = 0;
    let hi = this.known.length / REF_BYTES;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.known.compare(id, 0, ID_BYTES, mid * REF_BYTES, mid * REF_BYTES + ID_BYTES);
      if (c === 0) return decodeRef(this.known, mid * REF_BYTES, () => {});
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return this.fresh.get(id.toString('hex'));
  }

  remember(ref: BlobRef): void {
    this.fresh.set(ref.id.toString('hex'), ref);
  }
}
