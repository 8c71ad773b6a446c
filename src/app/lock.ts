/**
 * The registry's lock: an exclusive flock on `<QVOL_HOME>/lock`, held for a whole command so
 * two qvol processes never interleave their read-modify-write of the state file. The kernel
 * drops it when the holder dies, so a crash never leaves it behind.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { QvolError } from '../model/errors.js';
import { native } from '../native/binding.js';

export class LockTimeoutError extends QvolError {
  constructor(path: string, holder: string) {
    super('LOCKED', `Another qvol command${holder ? ` (pid ${holder})` : ''} holds ${path}: wait for it to finish and try again.`, { path });
  }
}

export interface HeldLock {
  release(): Promise<void>;
}

/** Takes the lock at `path`, waiting up to `timeoutMs` for another holder to finish. */
export async function acquireLock(path: string, timeoutMs = 60_000): Promise<HeldLock> {
  const fh: FileHandle = await open(path, 'a+', 0o600);
  const deadline = Date.now() + timeoutMs;
  let pause = 5;
  try {
    while (!native.flockSync(fh.fd, 'exclusive')) {
      if (Date.now() >= deadline) {
        const holder = (await fh.readFile('utf8').catch(() => '')).trim();
        throw new LockTimeoutError(path, holder);
      }
      await sleep(pause);
      pause = Math.min(pause * 2, 100);
    }
    await fh.truncate(0);
    await fh.write(`${process.pid}\n`, 0);
  } catch (err) {
    await fh.close();
    throw err;
  }
  return {
    async release() {
      await fh.truncate(0).catch(() => undefined);
      native.flockSync(fh.fd, 'unlock');
      await fh.close();
    },
  };
}
