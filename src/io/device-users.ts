/**
 * Whether anything has a block device open, from the kernel's own state: an exclusive
 * holder (a mount, device-mapper, Xen's blkback: our O_EXCL open fails with EBUSY), a
 * stacked device in /sys/block/X/holders, or any process with a descriptor on it, found as
 * fuser finds it, through /proc/PID/fd. Nothing is counted in memory or in a file of ours.
 */
import { readdir, readlink, realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import { hasCode } from '../native/errors.js';
import { isDeviceInUse } from './wait.js';

/** PIDs of the processes (not this one) with a descriptor on the device at `path`. */
export async function deviceOpeners(path: string): Promise<number[]> {
  const dev = await realpath(path);
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const fds = await readdir(`/proc/${entry}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => '');
      if (target === dev) {
        pids.push(Number(entry));
        break;
      }
    }
  }
  return pids;
}

/** True when the device at `path` is held or open anywhere; false when it does not exist. */
export async function isDeviceOpen(path: string): Promise<boolean> {
  let dev: string;
  try {
    dev = await realpath(path);
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return false;
    throw err;
  }
  const holders = await readdir(`/sys/class/block/${basename(dev)}/holders`).catch(() => [] as string[]);
  if (holders.length > 0) return true;
  if (await isDeviceInUse(dev).catch((err: unknown) => { if (hasCode(err, 'ENOENT', 'ENXIO')) return false; throw err; })) return true;
  return (await deviceOpeners(dev)).length > 0;
}
