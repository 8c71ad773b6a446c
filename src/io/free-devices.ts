/**
 * The check before a pool makes its storage on whole devices (a zpool, an LVM volume group):
 * each must be a block device that nothing holds, and, unless forced, one that carries no
 * filesystem, partition table or volume signature blkid can see.
 */
import { stat } from 'node:fs/promises';
import { StoragePoolException } from '../errors/index.js';
import { hasCode } from '../native/errors.js';
import { run } from '../util/exec.js';
import { isDeviceInUse } from './wait.js';

/** Throws, naming the device, for the first of `devices` that may not become `what`. */
export async function checkFreeDevices(devices: readonly string[], force: boolean, what: string): Promise<void> {
  for (const dev of devices) {
    const st = await stat(dev).catch((err: unknown) => {
      if (hasCode(err, 'ENOENT')) throw new StoragePoolException(`Block device ${dev} does not exist.`, { path: dev });
      throw err;
    });
    if (!st.isBlockDevice()) throw new StoragePoolException(`${dev} is not a block device: block_devices takes disks or partitions.`, { path: dev });
    if (await isDeviceInUse(dev)) throw new StoragePoolException(`Block device ${dev} is in use (mounted, or held by another device or program): free it first.`, { path: dev });
    const signature = await contentSignature(dev);
    if (signature && !force) throw new StoragePoolException(`Block device ${dev} holds ${signature}: pass force=True to overwrite it with ${what}.`, { path: dev });
  }
}

/** What blkid finds on a device (a filesystem, a partition table), or undefined. */
async function contentSignature(dev: string): Promise<string | undefined> {
  const out = await run('blkid', ['-p', '-o', 'export', dev]).catch(() => '');
  const fields = Object.fromEntries(out.split('\n').map((l) => l.split('=')).filter((kv) => kv.length === 2) as Array<[string, string]>);
  if (fields.TYPE) return `a ${fields.TYPE} ${fields.USAGE === 'raid' ? 'member' : 'filesystem'}`;
  if (fields.PTTYPE) return `a ${fields.PTTYPE} partition table`;
  return undefined;
}
