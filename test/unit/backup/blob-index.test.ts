/**
 * The archive's index in memory (src/backup/blob-index.ts): packed references sorted
 * natively, one per id, found by bisection; blobs added during an operation found too.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BlobIndex, RefList } from '../../../src/backup/blob-index.js';
import type { BlobRef } from '../../../src/backup/refs.js';

const ref = (id: Buffer, offset: number): BlobRef => ({ id, pack: randomBytes(16), offset, stored: 100, plain: 200 });

describe('BlobIndex', () => {
  it('finds every reference of a shuffled list with duplicates, and nothing else', () => {
    const ids = Array.from({ length: 5000 }, () => randomBytes(32));
    const list = new RefList();
    ids.forEach((id, i) => list.push(ref(id, i)));
    ids.slice(0, 100).forEach((id) => list.push(ref(id, 999_999))); // a second place for some
    const index = new BlobIndex(list.sorted());
    expect(index.size).toBe(5000);
    ids.forEach((id, i) => {
      const found = index.lookup(id)!;
      expect(found.id.equals(id)).toBe(true);
      if (i >= 100) expect(found.offset).toBe(i);
    });
    expect(index.lookup(randomBytes(32))).toBeUndefined();
    const added = ref(randomBytes(32), 7);
    index.remember(added);
    expect(index.lookup(added.id)).toBe(added);
  });

  it('an empty index finds nothing', () => {
    expect(new BlobIndex(new RefList().sorted()).lookup(randomBytes(32))).toBeUndefined();
  });
});
