/**
 * Exclusive flock(2) locks on files, as qvol's registry and per-VM locks use them. The kernel
 * drops a lock when its holder dies, so a crash never leaves one behind; the holder writes
 * its pid into the file so that a waiter can say who it waits for.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { QvolError } from '../errors/index.js';
import { native } from '../native/binding.js';

export class LockTimeoutError extends QvolError {
  constructor(path: string, holder: string, what: string) {
    super('LOCKED', `Another qvol command${holder ? ` (pid ${holder})` : ''} is using ${what} (${path}): wait for it to finish and try again.`, { path });
  }
}

export interface HeldLock {
  release(): Promise<void>;
}

export interface LockOptions {
  timeoutMs?: number;
  /** Names the locked thing in the error ("the registry", "VM work"). */
  what: string;
  /** 'shared' lets other shared holders in and keeps an exclusive one out (default 'exclusive'). */
  mode?: 'exclusive' | 'shared';
}

/**
 * Takes the lock at `path`, waiting up to `timeoutMs` for another holder to finish. The lock
 * file is opened with O_NOFOLLOW: a link planted at its name is refused, never followed.
 */
export async function acquireFileLock(path: string, options: LockOptions): Promise<HeldLock> {
  const fh: FileHandle = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const mode = options.mode ?? 'exclusive';
  let pause = 5;
  try {
    while (!native.flockSync(fh.fd, mode)) {
      if (Date.now() >= deadline) {
        const holder = (await fh.readFile('utf8').catch(() => '')).trim();
        throw new LockTimeoutError(path, holder, options.what);
      }
      await sleep(pause);
      pause = Math.min(pause * 2, 100);
    }
    // A shared lock has several holders: only an exclusive one says who it is.
    if (mode === 'exclusive') {
      await fh.truncate(0);
      await fh.write(`${process.pid}\n`, 0);
    }
  } catch (err) {
    await fh.close();
    throw err;
  }
  return {
    async release() {
      if (mode === 'exclusive') await fh.truncate(0).catch(() => undefined);
      native.flockSync(fh.fd, 'unlock');
      await fh.close();
    },
  };
}

/** Runs `fn` holding the lock at `path`. */
export async function withFileLock<T>(path: string, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireFileLock(path, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
