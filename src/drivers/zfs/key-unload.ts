/**
 * The timed key unload of an encrypted pool. qvol is a command, not a daemon, so the timer
 * is a small detached process (key-unload-main.js) armed by a stop and cancelled by a
 * start; its PID sits in a runtime file named after the encryption root. When it fires it
 * decides from the real state, never from a count: the key stays while any zvol under the
 * encryption root is open (it looks again one timeout later), and goes when none is.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { atomicWriteFile } from '../../io/atomic.js';
import { hasCode } from '../../native/errors.js';

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
