/**
 * One backup operation in a fresh process, as `qvol backup send`/`restore` would run it
 * after start-up: prints {seconds, rss, ...} as JSON. The archive is opened (Argon2id
 * included) before the clock starts, so the time is the data path's.
 *   backup-child.js send ARCHIVE IMAGE SIZE CACHE     (volume 'v' of VM 'bench')
 *   backup-child.js restore ARCHIVE OUTPUT CACHE       (the newest session's 'bench:v')
 *   backup-child.js prune ARCHIVE - CACHE              (keeps the newest session)
 */
import { readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { committedIdentity } from '../src/app/backup.js';
import { openArchive } from '../src/backup/archive.js';
import { pruneArchive } from '../src/backup/prune.js';
import { restoreVolume } from '../src/backup/restore-volume.js';
import { listSessions, sendToArchive } from '../src/backup/send.js';
import { DirectoryStore } from '../src/backup/store.js';

const [op, dest, path, ...rest] = process.argv.slice(2);
const archive = await openArchive(new DirectoryStore(dest!), async () => 'bench');
const t0 = process.hrtime.bigint();
let detail: Record<string, unknown> = {};
if (op === 'send') {
  const [size, cacheDir] = rest;
  const r = await sendToArchive(archive, [{
    name: 'bench', class: 'standalone', template: null, properties: {},
    volumes: [{ name: 'v', size: Number(size), path: path!, identity: committedIdentity(statSync(path!)), pool: 'p', driver: 'file-reflink', config: { rw: true, save_on_stop: true, snap_on_start: false, revisions_to_keep: 1, source: null } }],
  }], { cacheDir: cacheDir! });
  detail = { stored: r.bytesStored, packs: r.packs, new: r.vms[0]!.volumes[0]!.new };
} else if (op === 'prune') {
  const [cacheDir] = rest;
  const r = await pruneArchive(archive, { last: 1 }, { cacheDir: cacheDir! });
  detail = { packsRemoved: r.packsRemoved, sessionsRemoved: r.sessionsRemoved.length };
} else {
  const [cacheDir] = rest;
  const sessions = await listSessions(archive, { cacheDir: cacheDir! });
  const volume = sessions.at(-1)!.session.vms[0]!.volumes[0]!;
  const fh = await open(path!, 'w');
  await fh.truncate(volume.size);
  await restoreVolume(archive, volume, async (offset, data) => { await fh.write(data, 0, data.length, offset); });
  await fh.sync();
  await fh.close();
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
// This process's own peak (VmHWM). getrusage's maxRSS is not: Linux carries the forked
// parent's resident size across exec into it, and the bench holds large buffers.
const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
process.stdout.write(JSON.stringify({ seconds, rss: hwm ? Number(hwm[1]) * 1024 : process.resourceUsage().maxRSS * 1024, ...detail }));
