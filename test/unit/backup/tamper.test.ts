/**
 * Tampering is detected and named, never parsed: a flipped byte in every object type, a
 * truncated, deleted or swapped pack, a forged root, and a deleted newest root (which
 * looks like a rollback) each stop the operation that meets them with ARCHIVE_CORRUPT or
 * ARCHIVE_ROLLBACK naming the object.
 */
import { closeSync, ftruncateSync, openSync, readFileSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { initArchive, openArchive, type Archive } from '../../../src/backup/archive.js';
import { closePlaces } from '../../../src/backup/places.js';
import { restoreVolume } from '../../../src/backup/restore-volume.js';
import { listSessions, sendToArchive } from '../../../src/backup/send.js';
import { DirectoryStore } from '../../../src/backup/store.js';
import { verifyArchive } from '../../../src/backup/verify.js';
import { scratchDir } from '../../helpers/scratch.js';

const MiB = 2 ** 20;
const pass = async () => 'pw';
let dest: string;
let cacheDir: string;

async function makeArchive(): Promise<void> {
  const dir = scratchDir('tamper');
  dest = join(dir, 'archive');
  cacheDir = join(dir, 'cache');
  const img = join(dir, 'v.img');
  const fd = openSync(img, 'w');
  ftruncateSync(fd, 8 * MiB);
  for (let i = 0; i < 3; i++) writeSync(fd, randomBytes(MiB), 0, MiB, i * 2 * MiB); // incompressible: several packs
  closeSync(fd);
  const store = new DirectoryStore(dest);
  await initArchive(store, { chunkSize: 64 * 1024, compression: { codec: 'zstd', level: 3 }, encrypt: true, passphrase: pass, kdf: { opslimit: 1, memlimit: 8 * MiB } });
  const archive = await openArchive(store, pass);
  // Two packs: a small pack target splits the data.
  await sendToArchive(archive, [{ name: 'vm', class: 'standalone', template: null, properties: {}, volumes: [{ name: 'private', size: 8 * MiB, path: img, pool: 'p', driver: 'file-reflink', config: { rw: true, save_on_stop: true, snap_on_start: false, revisions_to_keep: 1, source: null } }] }], { cacheDir, packTarget: 2 * MiB });
}

/** Every way in: list, verify --data, restore the volume. Resolves to the first refusal, or undefined. */
async function tryEverything(): Promise<unknown> {
  let archive: Archive | undefined;
  try {
    archive = await openArchive(new DirectoryStore(dest), pass);
    const sessions = await listSessions(archive, { cacheDir });
    const v = await verifyArchive(archive, { cacheDir, data: true });
    if (v.problems.length > 0) return Object.assign(new Error(v.problems[0]!.message), { code: 'ARCHIVE_CORRUPT', path: v.problems[0]!.object });
    await restoreVolume(archive, sessions[0]!.session.vms[0]!.volumes[0]!, async () => undefined);
    return undefined;
  } catch (err) {
    return err;
  } finally {
    if (archive) await closePlaces(archive); // as the app layer does after every verb
  }
}

const files = (prefix: string) => readdirSync(join(dest, prefix), { recursive: true }).map(String).filter((f) => /[0-9a-f]{16}$/.test(f)).map((f) => join(dest, prefix, f));

function flip(path: string, at: number): void {
  const b = readFileSync(path);
  b[at < 0 ? b.length + at : at]! ^= 1;
  writeFileSync(path, b);
}

beforeEach(makeArchive);

describe('tampering', () => {
  it('the untouched archive passes', async () => {
    expect(await tryEverything()).toBeUndefined();
  });

  for (const [what, prefix, at] of [
    ['root', 'roots', 40], ['session', 'sessions', 40], ['index', 'index', 40],
    ['chunk in a pack', 'packs', 100], ['pack header', 'packs', -20], ['pack trailer', 'packs', -3],
  ] as const) {
    it(`a flipped byte in a ${what} is named`, async () => {
      flip(files(prefix)[0]!, at);
      const err = await tryEverything();
      expect(err, what).toMatchObject({ code: 'ARCHIVE_CORRUPT' });
      expect(String((err as { path?: string }).path ?? (err as Error).message), what).toContain(prefix === 'packs' ? 'packs/' : `${prefix}/`);
    });
  }

  it('a truncated pack, a deleted pack and two packs swapped are each refused', async () => {
    const [a, b] = files('packs');
    const [ba, bb] = [readFileSync(a!), readFileSync(b!)];
    truncateSync(a!, 1000);
    expect(await tryEverything()).toMatchObject({ code: 'ARCHIVE_CORRUPT' });
    rmSync(a!);
    expect(await tryEverything()).toMatchObject({ code: 'ARCHIVE_CORRUPT' });
    writeFileSync(a!, bb);
    writeFileSync(b!, ba);
    expect(await tryEverything()).toMatchObject({ code: 'ARCHIVE_CORRUPT' });
  });

  it('a forged root of a higher generation is refused; a deleted newest root looks like the rollback it is', async () => {
    const [root] = files('roots');
    const forged = join(dest, 'roots', `${'f'.repeat(16)}-${'0'.repeat(16)}`);
    writeFileSync(forged, readFileSync(root!));
    expect(await tryEverything()).toMatchObject({ code: 'ARCHIVE_CORRUPT' });
    rmSync(forged);
    renameSync(root!, `${root}.gone`);
    expect(await tryEverything()).toMatchObject({ code: 'ARCHIVE_ROLLBACK' });
  });
});
