/**
 * Waiting for a device node (or any path) to appear or go away, without sleeping: an
 * inotify watch (fs.watch) on the nearest existing ancestor, moved down as directories
 * appear, and a re-check after every event. udev makes /dev/zvol/<pool>/<name> links a
 * few milliseconds after `zfs create`; this returns within an event of that, where
 * Qubes polls every 10 ms and Proxmox every second.
 */
import { constants, watch, type FSWatcher } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { QvolError, UsageError } from '../errors/index.js';
import { hasCode } from '../native/errors.js';

export interface WaitOptions {
  /** Required: a wait that never ends would hold a command forever. */
  timeoutMs: number;
  /** Wait for the path to disappear instead. */
  gone?: boolean;
  signal?: AbortSignal;
}

/** True when `path` resolves (through symlinks) and, for a device, opens. */
async function present(path: string): Promise<boolean> {
  try {
    const st = await stat(path);
    if (st.isBlockDevice()) await (await open(path, 'r')).close();
    return true;
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'ENOTDIR', 'ENXIO', 'ENODEV')) return false;
    throw err;
  }
}

async function nearestExisting(path: string): Promise<string> {
  let dir = dirname(path);
  while (!(await present(dir)) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

export async function waitForPath(path: string, options: WaitOptions): Promise<void> {
  if (!(options.timeoutMs > 0)) throw new UsageError(`waitForPath needs a positive timeoutMs, not ${options.timeoutMs}.`);
  const done = async () => (await present(path)) !== (options.gone === true);
  if (await done()) return;
  await new Promise<void>((resolve, reject) => {
    let watcher: FSWatcher | undefined;
    let watched = '';
    let settled = false;
    const finish = (err?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      watcher?.close();
      options.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    // Re-arm on the deepest existing directory, then look again: what appeared between
    // the last look and the new watch is not missed.
    const check = async () => {
      try {
        const dir = options.gone ? dirname(path) : await nearestExisting(path);
        if (dir !== watched && !settled) {
          watcher?.close();
          watched = dir;
          watcher = watch(dir, { persistent: false }, () => void check());
          watcher.on('error', () => void check());
        }
        if (await done()) finish();
      } catch (err) {
        finish(err);
      }
    };
    const onAbort = () => finish(new QvolError('CANCELLED', `Waiting for ${path} was cancelled.`, { path }));
    const timer = setTimeout(() => finish(new QvolError('DEVICE_TIMEOUT',
      `${path} did not ${options.gone ? 'go away' : 'appear'} within ${options.timeoutMs} ms: check that the device was created and udev is running.`,
      { path })), options.timeoutMs);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    void check();
  });
}

/** Waits until the block device node at `path` exists and opens. */
export function waitForDevice(path: string, options: WaitOptions): Promise<void> {
  return waitForPath(path, options);
}

/**
 * True when something holds the block device: a mount, a device-mapper or md user, or a
 * process with an exclusive open (QEMU, Xen's blkback). An exclusive open of our own fails
 * with EBUSY exactly then; a plain open by another process does not count.
 */
export async function isDeviceInUse(path: string): Promise<boolean> {
  try {
    const fh = await open(path, constants.O_RDONLY | constants.O_EXCL);
    await fh.close();
    return false;
  } catch (err) {
    if (hasCode(err, 'EBUSY')) return true;
    throw err;
  }
}
