/**
 * The detached key-unload timer (see key-unload.ts): `node key-unload-main.js ENCROOT
 * SECONDS PIDFILE`. Sleeps, then unloads the key of ENCROOT unless a zvol under it is open;
 * while one is, it looks again every SECONDS. It gives up quietly when its PID file no
 * longer names it (a start cancelled it, or a later stop re-armed another timer).
 */
import { readFile, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { unloadIfIdle } from './key-unload-check.js';

const [encryptionRoot = '', seconds = '0', pidFile = ''] = process.argv.slice(2);

async function stillOurs(): Promise<boolean> {
  return (await readFile(pidFile, 'utf8').catch(() => '')).trim() === String(process.pid);
}

async function main(): Promise<void> {
  for (;;) {
    await sleep(Number(seconds) * 1000);
    if (!(await stillOurs())) return;
    if ((await unloadIfIdle(encryptionRoot)) !== 'busy') break;
  }
  if (await stillOurs()) await unlink(pidFile).catch(() => undefined);
}

process.on('SIGTERM', () => process.exit(0));
main().catch(() => process.exit(1));
