/**
 * One writer at a time (docs/archive-format.md §9): a writer stores a lock object, and
 * gives way to any other lock that is alive: refreshed within 15 minutes, or held by a
 * live process of this host. A lock of this host whose process is gone is removed. A
 * writer goes ahead only if no other lock is there after its own is stored; two that
 * store theirs at the same moment both step back, and try again after a random pause.
 */
import { hostname } from 'node:os';
import { ArchiveError } from '../errors/index.js';
import { native } from '../native/binding.js';
import type { ObjectStore } from './store.js';

const STALE_MS = 15 * 60_000;
const REFRESH_MS = 60_000;
/** Times two writers that stored their locks at once both step back and try again. */
const ATTEMPTS = 5;

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
  // Put, then look: a writer goes ahead only if, once its own lock is stored, it sees no
  // other. Of two writers, the later to store its lock then sees the earlier one's, so
  // they never both go ahead. (Letting the smaller name win when both see each other was
  // not safe: the earlier may have looked before the later stored its lock, and gone
  // ahead.) Two that see each other both step back and try again after a random pause.
  let name = '';
  for (let attempt = 1; ; attempt++) {
    const before = await blockers(undefined);
    if (before.length > 0) refuse(before[0]!);
    name = `locks/${native.randomBytes(16).toString('hex')}`;
    await store.put(name, Buffer.from(JSON.stringify(body())));
    const after = await blockers(name);
    if (after.length === 0) break;
    await store.delete(name);
    if (attempt === ATTEMPTS) refuse(after[0]!);
    await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 100 * attempt));
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
