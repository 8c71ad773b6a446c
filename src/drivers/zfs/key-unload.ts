/**
 * The timed key unload of an encrypted pool, in two kinds (src/model/driver-context.ts):
 * - for a command (the CLI), a small detached process (key-unload-main.js) armed by a stop
 *   and cancelled by a start, whatever process does them; its PID sits in a runtime file
 *   named after the encryption root;
 * - for a long-lived process (the qubesd bridge), a timer in that process.
 * When either fires it decides from the real state, never from a count (key-unload-check.ts):
 * the key stays while any zvol under the encryption root is open (it looks again one timeout
 * later), and goes when none is.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { atomicWriteFile } from '../../io/atomic.js';
import type { KeyUnloadTimer } from '../../model/driver-context.js';
import { hasCode } from '../../native/errors.js';
import { unloadIfIdle, type UnloadOutcome } from './key-unload-check.js';

/** Where timers leave their PID: /run/qvol as root, a per-user directory otherwise. */
export function timerDir(): string {
  if (process.env.QVOL_RUN_DIR) return process.env.QVOL_RUN_DIR;
  return process.getuid?.() === 0 ? '/run/qvol' : join(process.env.XDG_RUNTIME_DIR ?? tmpdir(), `qvol-${process.getuid?.() ?? 0}`);
}

export function timerFile(encryptionRoot: string): string {
  return join(timerDir(), `zfs-unload-${encryptionRoot.replaceAll('/', '%')}.pid`);
}

/** The compiled entry point, also when this module runs from its TypeScript source (tests). */
function mainScript(): string {
  const sibling = fileURLToPath(new URL('./key-unload-main.js', import.meta.url));
  if (existsSync(sibling)) return sibling;
  return fileURLToPath(new URL('../../../dist/drivers/zfs/key-unload-main.js', import.meta.url));
}

/** The PID in the timer file when it is still our timer process, else undefined. */
export async function runningTimer(encryptionRoot: string): Promise<number | undefined> {
  const pid = Number((await readFile(timerFile(encryptionRoot), 'utf8').catch(() => '')).trim());
  if (!(pid > 0)) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes('key-unload-main') && cmdline.includes(encryptionRoot) ? pid : undefined;
}

/** Stops a pending unload of `encryptionRoot`, if any. */
export async function cancelKeyUnload(encryptionRoot: string): Promise<void> {
  const pid = await runningTimer(encryptionRoot);
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch (err) {
      if (!hasCode(err, 'ESRCH')) throw err;
    }
  }
  await unlink(timerFile(encryptionRoot)).catch((err: unknown) => {
    if (!hasCode(err, 'ENOENT')) throw err;
  });
}

/** (Re)arms the unload of `encryptionRoot` `timeoutSeconds` from now. */
export async function armKeyUnload(encryptionRoot: string, timeoutSeconds: number): Promise<void> {
  await cancelKeyUnload(encryptionRoot);
  await mkdir(timerDir(), { recursive: true, mode: 0o700 });
  const file = timerFile(encryptionRoot);
  const child = spawn(process.execPath, [mainScript(), encryptionRoot, String(timeoutSeconds), file], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  await atomicWriteFile(file, `${child.pid}\n`);
}

/** The detached-process timer: what a one-shot command uses. */
export const detachedKeyUnloadTimer: KeyUnloadTimer = { arm: armKeyUnload, cancel: cancelKeyUnload };

/**
 * A timer in this process, for a long-lived one: arm() (re)starts the countdown, cancel()
 * stops it; a look that finds a zvol open looks again one timeout later. `check` is the
 * look (unloadIfIdle; tests give their own).
 */
export function inProcessKeyUnloadTimer(check: (root: string) => Promise<UnloadOutcome> = unloadIfIdle): KeyUnloadTimer {
  // The timer of each root, with a generation so that a look that ends after a re-arm or a
  // cancel does not schedule again.
  const pending = new Map<string, { timer: NodeJS.Timeout; generation: number }>();
  let generations = 0;
  const schedule = (root: string, seconds: number, generation: number): void => {
    const timer = setTimeout(() => {
      void check(root).catch((): UnloadOutcome => 'busy').then((outcome) => {
        if (pending.get(root)?.generation !== generation) return;
        if (outcome === 'busy') schedule(root, seconds, generation);
        else pending.delete(root);
      });
    }, seconds * 1000);
    timer.unref();
    pending.set(root, { timer, generation });
  };
  return {
    async arm(root, seconds) {
      clearTimeout(pending.get(root)?.timer);
      schedule(root, seconds, ++generations);
    },
    async cancel(root) {
      clearTimeout(pending.get(root)?.timer);
      pending.delete(root);
    },
  };
}
