/**
 * A volume into an archive and back: equal bytes, holes kept (zero chunks are not stored
 * or written), identical chunks stored once, and a second send of unchanged data stores
 * nothing but its metadata.
 */
import { closeSync, openSync, readFileSync, statSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initArchive, openArchive } from '../../../src/backup/archive.js';
import { restoreVolume } from '../../../src/backup/restore-volume.js';
import { listSessions, sendToArchive, type VmToSend } from '../../../src/backup/send.js';
import { DirectoryStore } from '../../../src/backup/store.js';
import { scratchDir } from '../../helpers/scratch.js';

const MiB = 2 ** 20;
const pass = async () => 'pw';
const FAST_KDF = { opslimit: 1, memlimit: 8 * MiB };

/** A sparse image: `size` bytes with data at a few places, one block repeated. */
function makeImage(path: string, size: number, seed: number): void {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, size);
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31 + seed) & 0xff;
  for (const at of [0, 5 * MiB, 9 * MiB + 4096]) writeSync(fd, block, 0, block.length, at);
  writeSync(fd, Buffer.from('tail'), 0, 4, size - 4);
  closeSync(fd);
}

function vm(name: string, path: string, size: number): VmToSend {
  return {
    name, class: 'standalone', template: null, properties: {},
    volumes: [{ name: 'private', size, path, pool: 'default', driver: 'file-reflink', config: { rw: true, save_on_stop: true, snap_on_start: false, revisions_to_keep: 1, source: null } }],
  };
}

describe('send and restore', () => {
  it('restores equal bytes, keeps holes, and stores unchanged data once', async () => {
    const dir = scratchDir('backup');
    const dest = join(dir, 'archive');
    const cacheDir = join(dir, 'cache');
    const size = 16 * MiB + 12345;
    const img = join(dir, 'a.img');
    makeImage(img, size, 1);
    const store = new DirectoryStore(dest);
    await initArchive(store, { chunkSize: MiB, compression: { codec: 'zstd', level: 3 }, encrypt: true, passphrase: pass, kdf: FAST_KDF });
    const archive = await openArchive(store, pass);
    const first = await sendToArchive(archive, [vm('a', img, size)], { cacheDir });
    const stats = first.vms[0]!.volumes[0]!;
    expect(stats.chunks).toBe(17);
    expect(stats.new).toBeGreaterThanOrEqual(4);
    expect(stats.zero).toBe(17 - 5); // data in chunks 0, 5, 9, 10 and the tail's chunk 16

    const again = await sendToArchive(archive, [vm('a', img, size)], { cacheDir });
    expect(again.vms[0]!.volumes[0]!.new).toBe(0);
    expect(again.packs).toBe(0);

    const sessions = await listSessions(archive, { cacheDir });
    expect(sessions.map((s) => s.session.vms[0]!.parent?.name ?? null)).toEqual([null, sessions[0]!.ref.name]);
    const out = join(dir, 'restored.img');
    const fh = await open(out, 'w');
    await fh.truncate(size);
    const volume = sessions[1]!.session.vms[0]!.volumes[0]!;
    const written = await restoreVolume(archive, volume, async (offset, data) => { await fh.write(data, 0, data.length, offset); });
    await fh.close();
    expect(readFileSync(out).equals(readFileSync(img))).toBe(true);
    expect(written).toBe(5 * MiB - (MiB - (size - 16 * MiB)));
    expect(statSync(out).blocks * 512).toBeLessThan(6 * MiB);
  });

  it('a send cut short leaves packs that the next send finds in the packs themselves and does not upload again', async () => {
    const dir = scratchDir('backup-adopt');
    const dest = join(dir, 'archive');
    const cacheDir = join(dir, 'cache');
    const size = 16 * MiB;
    const img = join(dir, 'a.img');
    const fd = openSync(img, 'w');
    for (let i = 0; i < 16; i++) writeSync(fd, Buffer.alloc(MiB, i + 1), 0, MiB, i * MiB);
    closeSync(fd);
    const store = new DirectoryStore(dest);
    await initArchive(store, { chunkSize: MiB, compression: { codec: 'none' }, encrypt: true, passphrase: pass, kdf: FAST_KDF });
    const archive = await openArchive(store, pass);
    const stop = new AbortController();
    const cut = await sendToArchive(archive, [vm('a', img, size)], {
      cacheDir, packTarget: 2 * MiB, signal: stop.signal,
      onProgress: (_vm, _v, done) => { if (done >= 10 * MiB) stop.abort(); },
    }).catch((e: unknown) => e);
    expect(cut).toMatchObject({ code: 'CANCELLED' });
    const left = (await store.list('packs/')).length;
    expect(left).toBeGreaterThanOrEqual(3);
    expect(await store.list('roots/')).toEqual([]); // no session yet: nothing references the packs

    // One of them damaged (a byte of its first blob): that pack is not relied on, the rest are.
    const damaged = join(dest, (await store.list('packs/'))[0]!);
    const bytes = readFileSync(damaged);
    bytes[100]! ^= 1;
    writeFileSync(damaged, bytes);
    const next = await sendToArchive(archive, [vm('a', img, size)], { cacheDir, packTarget: 2 * MiB });
    expect(next.adoptedPacks).toBe(left - 1);
    expect(next.vms[0]!.volumes[0]!.new).toBeLessThanOrEqual(16 - (left - 1)); // each adopted pack holds a chunk
    const after = await sendToArchive(archive, [vm('a', img, size)], { cacheDir: join(dir, 'other-cache') });
    expect(after.adoptedPacks).toBe(0); // now indexed
    expect(after.vms[0]!.volumes[0]!.new).toBe(0);
  });
});

