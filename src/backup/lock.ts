/**
 * One writer at a time (docs/archive-format.md §9): a writer stores a lock object, and
 * gives way to any other lock that is alive: refreshed within 15 minutes, or held by a
 * live process of this host. A lock of this host whose process is gone is removed. Two
 * writers that store locks at the same moment both see both; the one with the larger name
 * gives way.
 */
import { hostname } from 'node:os';
import { ArchiveError } from '../errors/index.js';
import { native } from '../native/binding.js';
import type { ObjectStore } from './store.js';

const STALE_MS = 15 * 60_000;
const REFRESH_MS = 60_000;

interface LockBody {
  host: string;
  pid: number;
  started: string;
  refreshed: string;
  operation: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

async function readLock(store: ObjectStore, name: string): Promise<LockBody | undefined> {
  const bytes = await store.get(name, 4096).catch(() => undefined);
  if (!bytes) return undefined;
  try {
    const b = JSON.parse(bytes.toString('utf8')) as LockBody;
    return typeof b.host === 'string' && Number.isInteger(b.pid) && typeof b.refreshed === 'string' ? b : undefined;
  } catch {
    return undefined;
  }
}

export interface ArchiveLock {
  release(): Promise<void>;
}

/** Takes the archive's writer lock for `operation`, or fails naming who holds it. */
export async function lockArchive(store: ObjectStore, operation: string): Promise<ArchiveLock> {
  const host = hostname();
  const body = (): LockBody => ({ host, pid: process.pid, started, refreshed: new Date().toISOString(), operation });
  const started = new Date().toISOString();
  const blockers = async (own: string | undefined): Promise<Array<{ name: string; lock: LockBody | undefined }>> => {
    const out = [];
    for (const name of await store.list('locks/')) {
      if (name === own) continue;
      const lock = await readLock(store, name);
      const local = lock?.host === host;
      if (lock && local && !alive(lock.pid)) {
        await store.delete(name); // its process is gone: safe to clear
        continue;
      }
      const fresh = lock !== undefined && Date.now() - Date.parse(lock.refreshed) < STALE_MS;
      if (lock && ((local && alive(lock.pid)) || fresh)) out.push({ name, lock });
      else if (!lock) out.push({ name, lock }); // being written right now, or unreadable: not ours to judge
    }
    return out;
  };
  const refuse = (b: { name: string; lock: LockBody | undefined }): never => {
    const who = b.lock ? `${b.lock.operation} by pid ${b.lock.pid} on ${b.lock.host}, since ${b.lock.started}` : `a writer (${b.name})`;
    throw new ArchiveError('ARCHIVE_LOCKED', `The archive in ${store.location} is in use (${who}): wait for it to finish and try again.`, { path: store.location });
  };
  const before = await blockers(undefined);
  if (before.length > 0) refuse(before[0]!);
  let name = `locks/${native.randomBytes(16).toString('hex')}`;
  await store.put(name, Buffer.from(JSON.stringify(body())));
  const after = (await blockers(name)).filter((b) => b.name < name);
  if (after.length > 0) {
    await store.delete(name);
    refuse(after[0]!);
  }
  const timer = setInterval(() => {
    void (async () => {
      const fresh = `locks/${native.randomBytes(16).toString('hex')}`;
      await store.put(fresh, Buffer.from(JSON.stringify(body())));
      await store.delete(name);
      name = fresh;
    })().catch(() => undefined);
  }, REFRESH_MS);
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      await store.delete(name);
    },
  };
}
