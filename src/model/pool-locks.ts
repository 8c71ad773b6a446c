/**
 * The lock below the registry. qvol's registry locks a VM for one command, but a pool's
 * storage can be reached by more than one registry: the CLI's state file, and qubes.xml
 * through the qubesd bridge. So every volume operation also takes an flock(2) named after
 * the pool's storage (its directory or dataset, not its name) in a runtime directory all
 * of them share: exclusive on the volume, shared on the pool, while setting a pool up or
 * tearing it down takes the pool's exclusively. The kernel drops the locks of a process
 * that dies, so a crash leaves none behind.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireFileLock, type HeldLock } from '../io/file-lock.js';
import { unsafePath } from '../io/open-beneath.js';
import { lstatOrUndefined } from '../io/stat.js';

/** Where the locks live: QVOL_RUN_DIR, else /run/qvol for root, else the user's runtime directory. */
export function runtimeDir(): string {
  if (process.env.QVOL_RUN_DIR) return process.env.QVOL_RUN_DIR;
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return '/run/qvol';
  return join(process.env.XDG_RUNTIME_DIR ?? tmpdir(), `qvol-${uid}`);
}

const short = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 20);

export class PoolLocks {
  /** How long an operation waits for another process's, before LOCKED. */
  timeoutMs = 60_000;

  /** `identity` names the pool's storage ("file-reflink:/var/lib/qubes"); `name` is for errors. */
  constructor(private readonly identity: string, private readonly name: string) {}

  /** The pool's lock directory, made 0700 and checked to be a directory (never a planted link). */
  private async dir(): Promise<string> {
    const dir = join(runtimeDir(), 'pools', short(this.identity));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const d of [runtimeDir(), join(runtimeDir(), 'pools'), dir]) {
      const st = await lstatOrUndefined(d);
      if (!st?.isDirectory()) throw unsafePath(d, 'it is not a directory');
    }
    return dir;
  }

  private async take(locks: Array<[string, 'shared' | 'exclusive', string]>): Promise<HeldLock[]> {
    const held: HeldLock[] = [];
    try {
      for (const [path, mode, what] of locks) held.push(await acquireFileLock(path, { timeoutMs: this.timeoutMs, what, mode }));
      return held;
    } catch (err) {
      for (const l of held.reverse()) await l.release();
      throw err;
    }
  }

  private async holding<T>(locks: Array<[string, 'shared' | 'exclusive', string]>, fn: () => Promise<T>): Promise<T> {
    const held = await this.take(locks);
    try {
      return await fn();
    } finally {
      for (const l of held.reverse()) await l.release();
    }
  }

  /** Runs `fn` as the only process changing volume `vid` (and with the pool not being set up or removed). */
  async volume<T>(vid: string, fn: () => Promise<T>): Promise<T> {
    const dir = await this.dir();
    return this.holding([
      [join(dir, 'pool.lock'), 'shared', `pool ${this.name}`],
      [join(dir, `volume-${short(vid)}.lock`), 'exclusive', `volume ${vid}`],
    ], fn);
  }

  /** Runs `fn` as the only process using the pool at all (setup, removal). */
  async pool<T>(fn: () => Promise<T>): Promise<T> {
    return this.holding([[join(await this.dir(), 'pool.lock'), 'exclusive', `pool ${this.name}`]], fn);
  }
}
