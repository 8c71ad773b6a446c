/**
 * The archive's index as a local file (src/backup/local-index.ts): made from the root's
 * index objects, brought up to date by holding those appended since in memory while they
 * are few or merging only them, rebuilt when
 * they were rewritten or the file was damaged; found by native lookups (both the one-read
 * stretch and the bisection by single reads), streamed in id order, and searched by the
 * native sealer so a known chunk is not sealed again.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, lstatSync, openSync, readFileSync, readdirSync, readSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initArchive, type Archive } from '../../../src/backup/archive.js';
import { RefList } from '../../../src/backup/blob-index.js';
import { writeIndex } from '../../../src/backup/index-objects.js';
import { LocalIndex } from '../../../src/backup/local-index.js';
import { decodeRef, encodeRef, type BlobRef } from '../../../src/backup/refs.js';
import type { NamedHash } from '../../../src/backup/roots.js';
import { DirectoryStore } from '../../../src/backup/store.js';
import { native } from '../../../src/native/binding.js';
import { scratchDir } from '../../helpers/scratch.js';

const ref = (id: Buffer, offset: number): BlobRef => ({ id, pack: randomBytes(16), offset, stored: 100, plain: 200 });

async function newArchive(): Promise<Archive> {
  return initArchive(new DirectoryStore(join(scratchDir('lix'), 'a')), {
    chunkSize: 2 ** 20, compression: { codec: 'zstd', level: 3 }, encrypt: true, passphrase: async () => 'pw', kdf: { opslimit: 1, memlimit: 8 * 2 ** 20 },
  });
}

/** Index objects for `refs`, as a send writes them. */
async function indexObjects(archive: Archive, refs: BlobRef[]): Promise<NamedHash[]> {
  const list = new RefList();
  refs.forEach((r) => list.push(r));
  return writeIndex(archive, list.sorted());
}

async function all(index: LocalIndex): Promise<Buffer[]> {
  const ids: Buffer[] = [];
  for await (const block of index.blocks()) for (let at = 0; at < block.length; at += 64) ids.push(Buffer.from(block.subarray(at, at + 32)));
  return ids;
}

describe('LocalIndex', () => {
  it('holds the index objects\' references, one per id, found where they are and streamed in order', async () => {
    const archive = await newArchive();
    const dir = scratchDir('lix-cache');
    const crowded = Array.from({ length: 5000 }, () => { const id = randomBytes(32); id[0] = 0xab; id[1] = 0xcd; return ref(id, 1); });
    const spread = Array.from({ length: 3000 }, (_, i) => ref(randomBytes(32), i));
    const first = await indexObjects(archive, [...crowded.slice(0, 2500), ...spread]);
    const second = await indexObjects(archive, [...crowded.slice(2500), ...spread.slice(0, 10).map((r) => ({ ...r, offset: 9 }))]);
    const index = await LocalIndex.sync(archive, [...first, ...second], dir);
    try {
      expect(index.count).toBe(8000);
      // More than 4096 ids under one two-byte prefix: found by bisection with single reads.
      for (const r of crowded) expect(index.find(r.id)!.ref.id.equals(r.id)).toBe(true);
      for (const r of spread.slice(10)) expect(index.lookup(r.id)!.offset).toBe(r.offset);
      expect(index.lookup(randomBytes(32))).toBeUndefined();
      const ids = await all(index);
      expect(ids.length).toBe(8000);
      for (let i = 1; i < ids.length; i++) expect(Buffer.compare(ids[i - 1]!, ids[i]!)).toBe(-1);
      const some = spread[1234]!;
      expect(ids[index.find(some.id)!.at]!.equals(some.id)).toBe(true);
    } finally {
      await index.close();
    }
  });

  it('takes in only the index objects appended since; rebuilds after a rewrite or damage; the sealer skips what it holds', async () => {
    const archive = await newArchive();
    const dir = scratchDir('lix-cache');
    const data = randomBytes(65536);
    const keys = { type: 7 as const, idKey: archive.keys['chunk-id'], dataKey: archive.keys.data, level: 3 };
    const { id } = await native.sealBlob(data, keys);
    const old = await indexObjects(archive, Array.from({ length: 100 }, (_, i) => ref(randomBytes(32), i)));
    let index = await LocalIndex.sync(archive, old, dir);
    expect(index.count).toBe(100);
    expect((await native.sealBlob(data, { ...keys, knownFile: index.file })).blob).toBeDefined();
    await index.close();
    const file = join(dir, readdirSync(dir).find((n) => n.endsWith('-index'))!);
    const inode = statSync(file).ino;

    const known = ref(id, 77);
    const appended = [...old, ...(await indexObjects(archive, [known]))];
    // A few references more: held in memory beside the file, which is not rewritten.
    index = await LocalIndex.sync(archive, appended, dir);
    expect(index.count).toBe(100);
    expect(index.delta.length).toBe(64);
    expect(index.lookup(id)!.offset).toBe(77);
    expect(statSync(file).ino).toBe(inode);
    expect((await native.sealBlob(data, { ...keys, known: index.delta, knownFile: index.file })).blob).toBeUndefined();
    await index.close();
    // Asked whole (a prune), they are merged into a new file, published whole.
    index = await LocalIndex.sync(archive, appended, dir, { whole: true });
    expect(index.count).toBe(101);
    expect(index.delta.length).toBe(0);
    expect(index.lookup(id)!.offset).toBe(77);
    expect(statSync(file).ino).not.toBe(inode);
    expect((await native.sealBlob(data, { ...keys, knownFile: index.file })).blob).toBeUndefined();
    await index.close();

    // The same list again: the file is used as it is.
    const again = statSync(file).ino;
    index = await LocalIndex.sync(archive, appended, dir);
    await index.close();
    expect(statSync(file).ino).toBe(again);

    // One flipped byte in the file: its MAC fails, it is rebuilt, and lookups are right.
    const fd = openSync(file, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, statSync(file).size - 100);
    b[0]! ^= 1;
    writeSync(fd, b, 0, 1, statSync(file).size - 100);
    closeSync(fd);
    index = await LocalIndex.sync(archive, appended, dir);
    expect(index.lookup(id)!.offset).toBe(77);
    expect(index.count).toBe(101);
    await index.close();

    // A prune rewrote the objects: the list is no longer an extension of the file's.
    const rewritten = await indexObjects(archive, [known]);
    index = await LocalIndex.sync(archive, rewritten, dir);
    expect(index.count).toBe(1);
    const buf = Buffer.alloc(64);
    encodeRef(known, buf, 0);
    expect(decodeRef(buf, 0, () => {})!.offset).toBe(index.lookup(id)!.offset);
    await index.close();
  });

  it('a link or a FIFO planted at the file\'s name is neither followed nor waited on: the file is made anew in its place', async () => {
    const archive = await newArchive();
    const dir = scratchDir('lix-cache');
    const objects = await indexObjects(archive, [ref(randomBytes(32), 5)]);
    const path = join(dir, `${archive.config.id.toString('hex')}-index`);
    const elsewhere = join(scratchDir('lix-elsewhere'), 'target');
    writeFileSync(elsewhere, 'not ours');
    symlinkSync(elsewhere, path);
    let index = await LocalIndex.sync(archive, objects, dir);
    expect(index.count).toBe(1);
    await index.close();
    expect(readFileSync(elsewhere, 'utf8')).toBe('not ours');
    expect(lstatSync(path).isFile()).toBe(true);
    rmSync(path);
    execFileSync('mkfifo', [path]);
    index = await LocalIndex.sync(archive, objects, dir);
    expect(index.count).toBe(1);
    await index.close();
    expect(lstatSync(path).isFile()).toBe(true);
  });
});

