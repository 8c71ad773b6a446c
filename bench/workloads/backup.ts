/**
 * Backup of a volume holding data half random, half about 3x compressible (full: 4 GiB
 * with 2 GiB of data; quick: 512 MiB with 256 MiB), against zstd itself: a full send
 * against `zstd -3 -T0` reading the image to /dev/null (the floor of read + compress), a
 * restore against `zstd -d -T0` of that output into a sparse file; then a send of the
 * unchanged volume, and one after 1 % of it changed. Ours runs in a fresh process each
 * time (bench/backup-child.ts), timed after the archive is opened.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readdirSync, statSync, writeSync, ftruncateSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { initArchive } from '../../src/backup/archive.js';
import { writeIndex } from '../../src/backup/index-objects.js';
import { currentRoot, writeRoot } from '../../src/backup/roots.js';
import { native } from '../../src/native/binding.js';
import { DirectoryStore } from '../../src/backup/store.js';
import { GiB, MiB, scratchDir } from '../fixtures.js';

export interface BackupBenchResult {
  size: number;
  data: number;
  seconds: Record<string, number>;
  rss: Record<string, number>;
  archiveBytes: number;
  zstdBytes: number;
  objects: number;
  /**
   * An archive whose index lists many blobs (full: ten million, as ten TiB of data at
   * 1 MiB chunks would; quick: one million): a small volume's send, the first one on this
   * host (which builds the local index file) and the next, and a prune: memory must not
   * follow the archive's size.
   */
  bigIndex: { refs: number; seconds: { firstSend: number; send: number; prune: number }; rss: { firstSend: number; send: number; prune: number } };
  /** A large sparse volume (full: 1 TiB holding 1 GiB; quick: 64 GiB holding 64 MiB): memory must not follow its size. */
  sparse: { size: number; data: number; seconds: { send: number; restore: number }; rss: { send: number; restore: number } };
}

/** Writes `data` bytes in 1 MiB pieces spread over `size`: even pieces random, odd ones text-like (about 3x). */
function makeImage(path: string, size: number, data: number): void {
  const fd = openSync(path, 'w', 0o644);
  ftruncateSync(fd, size);
  const pieces = data / MiB;
  const stride = Math.floor(size / MiB / pieces) * MiB;
  const words = ['volume', 'chunk', 'qvol', 'backup', 'archive', 'session', 'template', 'private', 'root', 'zstd'];
  for (let i = 0; i < pieces; i++) {
    let buf: Buffer;
    if (i % 2 === 0) buf = randomBytes(MiB);
    else {
      const text: string[] = [];
      let n = 0;
      while (n < MiB) {
        const w = `${words[Math.floor(Math.random() * words.length)]} ${Math.floor(Math.random() * 100000)} `;
        text.push(w);
        n += w.length;
      }
      buf = Buffer.from(text.join('')).subarray(0, MiB);
    }
    writeSync(fd, buf, 0, MiB, i * stride);
  }
  closeSync(fd);
  execFileSync('sync', [path]);
}

function timed(cmd: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function child(args: string[]): { seconds: number; rss: number } {
  const out = execFileSync(process.execPath, [join(import.meta.dirname, '..', 'backup-child.js'), ...args], { encoding: 'utf8' });
  return JSON.parse(out) as { seconds: number; rss: number };
}

function dirBytes(dir: string): { bytes: number; objects: number } {
  let bytes = 0;
  let objects = 0;
  for (const f of readdirSync(dir, { recursive: true }).map(String)) {
    const st = statSync(join(dir, f));
    if (st.isFile()) { bytes += st.size; objects++; }
  }
  return { bytes, objects };
}

export async function backupBench(quick: boolean, rounds: number): Promise<BackupBenchResult> {
  const size = quick ? 512 * MiB : 4 * GiB;
  const data = size / 2;
  const scratch = scratchDir('backup');
  try {
    const img = join(scratch.dir, 'volume.img');
    makeImage(img, size, data);
    const zst = join(scratch.dir, 'volume.zst');
    const min = (xs: number[]) => Math.min(...xs);
    const seconds: Record<string, number[]> = { 'zstd -3 -T0 > /dev/null': [], 'qvol send (full)': [], 'zstd -d -T0 into a sparse file': [], 'qvol restore': [], 'qvol send (unchanged)': [], 'qvol send (1 % changed)': [], 'qvol prune (keep the last)': [] };
    const rss: Record<string, number> = {};
    let archiveBytes = 0;
    let objects = 0;
    for (let r = 0; r < rounds; r++) {
      const dest = join(scratch.dir, `archive-${r}`);
      const cache = join(scratch.dir, `cache-${r}`);
      await initArchive(new DirectoryStore(dest), { chunkSize: MiB, compression: { codec: 'zstd', level: 3 }, encrypt: true, passphrase: async () => 'bench', kdf: { opslimit: 1, memlimit: 8 * MiB } });
      execFileSync('sync');
      spawnSync('sh', ['-c', `cat "${img}" > /dev/null`]);
      seconds['zstd -3 -T0 > /dev/null']!.push(timed(`zstd -q -3 -T0 -c "${img}" > /dev/null`));
      const full = child(['send', dest, img, String(size), cache]);
      seconds['qvol send (full)']!.push(full.seconds);
      rss.send = Math.max(rss.send ?? 0, full.rss);
      const d = dirBytes(dest);
      archiveBytes = d.bytes;
      objects = d.objects;
      execFileSync('sh', ['-c', `zstd -q -3 -T0 -f -o "${zst}" "${img}"`]);
      const out = join(scratch.dir, 'restored.img');
      rmSync(out, { force: true });
      seconds['zstd -d -T0 into a sparse file']!.push(timed(`zstd -q -d -T0 --sparse -f -o "${out}" "${zst}" && sync "${out}"`));
      rmSync(out, { force: true });
      const restore = child(['restore', dest, out, cache]);
      seconds['qvol restore']!.push(restore.seconds);
      rss.restore = Math.max(rss.restore ?? 0, restore.rss);
      seconds['qvol send (unchanged)']!.push(child(['send', dest, img, String(size), cache]).seconds);
      // 1 %: spread 4 KiB writes over the volume's data.
      const fd = openSync(img, 'r+');
      const changes = Math.round((size * 0.01) / (256 * 1024));
      for (let i = 0; i < changes; i++) writeSync(fd, randomBytes(4096), 0, 4096, Math.floor(Math.random() * (size / 4096)) * 4096);
      closeSync(fd);
      seconds['qvol send (1 % changed)']!.push(child(['send', dest, img, String(size), cache]).seconds);
      const prune = child(['prune', dest, '-', cache]);
      seconds['qvol prune (keep the last)']!.push(prune.seconds);
      rss.prune = Math.max(rss.prune ?? 0, prune.rss);
      rmSync(dest, { recursive: true, force: true });
    }
    const zstdBytes = statSync(zst).size;
    rmSync(img);
    rmSync(zst);
    const sparse = await sparseCase(scratch.dir, quick);
    const bigIndex = await bigIndexCase(scratch.dir, quick);
    return { size, data, seconds: Object.fromEntries(Object.entries(seconds).map(([k, v]) => [k, min(v)])), rss, archiveBytes, zstdBytes, objects, sparse, bigIndex };
  } finally {
    scratch.remove();
  }
}

/** One send and one restore of a large sparse volume, for their time and peak memory. */
async function sparseCase(dir: string, quick: boolean): Promise<BackupBenchResult['sparse']> {
  const size = quick ? 64 * GiB : 1024 * GiB;
  const data = quick ? 64 * MiB : GiB;
  const img = join(dir, 'sparse.img');
  makeImage(img, size, data);
  const dest = join(dir, 'sparse-archive');
  const cache = join(dir, 'sparse-cache');
  await initArchive(new DirectoryStore(dest), { chunkSize: MiB, compression: { codec: 'zstd', level: 3 }, encrypt: true, passphrase: async () => 'bench', kdf: { opslimit: 1, memlimit: 8 * MiB } });
  const send = child(['send', dest, img, String(size), cache]);
  const out = join(dir, 'sparse-restored.img');
  const restore = child(['restore', dest, out, cache]);
  rmSync(out);
  rmSync(img);
  rmSync(dest, { recursive: true, force: true });
  return { size, data, seconds: { send: send.seconds, restore: restore.seconds }, rss: { send: send.rss, restore: restore.rss } };
}

/**
 * An archive whose root names index objects listing `refs` blobs (random ids, 32 to a pack,
 * in packs that are not there: only their number matters here), then a 64 MiB volume sent twice and a
 * prune that keeps its last session.
 */
async function bigIndexCase(dir: string, quick: boolean): Promise<BackupBenchResult['bigIndex']> {
  const refs = quick ? 1_000_000 : 10_000_000;
  const dest = join(dir, 'big-index-archive');
  const cache = join(dir, 'big-index-cache');
  const archive = await initArchive(new DirectoryStore(dest), { chunkSize: MiB, compression: { codec: 'zstd', level: 3 }, encrypt: true, passphrase: async () => 'bench', kdf: { opslimit: 1, memlimit: 8 * MiB } });
  const fake = randomBytes(refs * 64);
  const packs = randomBytes((refs / 32) * 16); // 32 blobs a pack, as 32 MiB packs of 1 MiB chunks
  for (let at = 0, i = 0; at < fake.length; at += 64, i++) {
    packs.copy(fake, at + 32, (i % (refs / 32)) * 16, (i % (refs / 32)) * 16 + 16);
    fake.writeUInt32LE(MiB / 2, at + 56);
    fake.writeUInt32LE(MiB, at + 60);
  }
  const current = await currentRoot(archive, { cacheDir: join(dir, 'big-index-writer') });
  const indexes = await writeIndex(archive, fake.subarray(0, native.sortRefsSync(fake) * 64));
  await writeRoot(archive, current, { sessions: [], indexes }, { cacheDir: join(dir, 'big-index-writer') });
  const img = join(dir, 'big-index.img');
  makeImage(img, 64 * MiB, 32 * MiB);
  const first = child(['send', dest, img, String(64 * MiB), cache]);
  const fd = openSync(img, 'r+');
  writeSync(fd, randomBytes(4096), 0, 4096, 0);
  closeSync(fd);
  const second = child(['send', dest, img, String(64 * MiB), cache]);
  const prune = child(['prune', dest, '-', cache]);
  rmSync(img);
  rmSync(dest, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
  return { refs, seconds: { firstSend: first.seconds, send: second.seconds, prune: prune.seconds }, rss: { firstSend: first.rss, send: second.rss, prune: prune.rss } };
}
