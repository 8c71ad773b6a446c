/**
 * Packed references (src/backup/blob-index.ts): sorted natively, one per id, found by
 * bisection; and the set a send reuses: the local index file, references adopted from an
 * interrupted send, and the blobs the send stored itself.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BlobIndex, RefList, findSorted } from '../../../src/backup/blob-index.js';
import { LocalIndex } from '../../../src/backup/local-index.js';
import type { BlobRef } from '../../../src/backup/refs.js';

const ref = (id: Buffer, offset: number): BlobRef => ({ id, pack: randomBytes(16), offset, stored: 100, plain: 200 });

describe('RefList and findSorted', () => {
  it('finds every reference of a shuffled list with duplicates, one per id, and nothing else', () => {
    const ids = Array.from({ length: 5000 }, () => randomBytes(32));
    const list = new RefList();
    ids.forEach((id, i) => list.push(ref(id, i)));
    ids.slice(0, 100).forEach((id) => list.push(ref(id, 999_999))); // a second place for some
    const sorted = list.sorted();
    expect(sorted.length).toBe(5000 * 64);
    ids.forEach((id, i) => {
      const found = findSorted(sorted, id)!;
      expect(found.id.equals(id)).toBe(true);
      if (i >= 100) expect(found.offset).toBe(i);
    });
    expect(findSorted(sorted, randomBytes(32))).toBeUndefined();
    expect(findSorted(new RefList().sorted(), randomBytes(32))).toBeUndefined();
  });
});

describe('BlobIndex', () => {
  it('finds adopted references and the blobs remembered, with no index file', () => {
    const adopted = new RefList();
    const a = ref(randomBytes(32), 1);
    adopted.push(a);
    const index = new BlobIndex(LocalIndex.empty(), adopted.sorted());
    expect(index.lookup(a.id)!.offset).toBe(1);
    expect(index.sealing.knownFile).toBeUndefined();
    const added = ref(randomBytes(32), 7);
    expect(index.lookup(added.id)).toBeUndefined();
    index.remember(added);
    expect(index.lookup(added.id)).toBe(added);
  });
});
