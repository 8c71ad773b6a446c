/**
 * One look at an encryption root whose key unload is due, decided from the real state: the
 * key stays while any zvol under the root is open (a VM's disk, an export), and goes when
 * none is. Shared by the detached timer process and the in-process timer.
 */
import { isDeviceOpen } from '../../io/device-users.js';
import { devicePath } from './datasets.js';
import { rows, zfsArgv, zfsChange, zfsRead } from './zfs-command.js';

export type UnloadOutcome = 'unloaded' | 'busy' | 'not-loaded';

async function anyZvolOpen(encryptionRoot: string): Promise<boolean> {
  const zvols = rows(await zfsRead(zfsArgv.listRecursive(encryptionRoot, [], 'volume'))).map(([name = '']) => name);
  for (const zvol of zvols) if (await isDeviceOpen(devicePath(zvol))) return true;
  return false;
}

/** Unloads the key of `encryptionRoot` unless a zvol under it is open ('busy': look again later). */
export async function unloadIfIdle(encryptionRoot: string): Promise<UnloadOutcome> {
  const [status] = rows(await zfsRead(zfsArgv.get(encryptionRoot, ['keystatus']))).flat();
  if (status !== 'available') return 'not-loaded';
  if (await anyZvolOpen(encryptionRoot)) return 'busy';
  try {
    await zfsChange(zfsArgv.unloadKey(encryptionRoot));
    return 'unloaded';
  } catch {
    return 'busy'; // opened between our look and the unload (ZFS refuses then)
  }
}
