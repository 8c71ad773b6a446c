/**
 * Build beside, swap in: how a ZFS volume's data is replaced whole (an import, a clone from
 * another volume, a received stream). The new data is made under a helper name; the swap
 * renames the old volume to `.trash`, the new one into place, and destroys the old. A crash
 * at any point leaves either the old volume or the new one, and repairSwap() finishes or
 * undoes what it interrupted. (LVM thin's import has the same shape with -import/-back.)
 */
import { fsyncPath } from '../../io/atomic.js';
import { destroyDataset, devicePath, exists } from './datasets.js';
import { zfsArgv, zfsChange } from './zfs-command.js';

export interface SwapNames {
  /** The volume's dataset. */
  vid: string;
  /** Where the old volume waits while the new one is renamed in. */
  trash: string;
}

/** The volume back from `.trash` when the new one never arrived; the old one destroyed when it did. */
export async function repairSwap({ vid, trash }: SwapNames): Promise<void> {
  if (!(await exists(trash))) return;
  if (await exists(vid)) await destroyDataset(trash);
  else await zfsChange(zfsArgv.rename(trash, vid));
}

/** Puts `replacement` in the volume's place; the old volume and its snapshots go. */
export async function swapIn({ vid, trash }: SwapNames, replacement: string): Promise<void> {
  await flushDevice(replacement);
  const old = await exists(vid);
  if (old) await zfsChange(zfsArgv.rename(vid, trash));
  await zfsChange(zfsArgv.rename(replacement, vid));
  if (old) await destroyDataset(trash);
}

/**
 * Writes what the kernel still holds for the zvol in its page cache: a snapshot takes what
 * ZFS has, and buffered writes to /dev/zdN are not there until flushed. A device that is
 * not there (its key unloaded, never started) has nothing to flush.
 */
export async function flushDevice(ds: string): Promise<void> {
  await fsyncPath(devicePath(ds)).catch((err: unknown) => {
    if (!['ENOENT', 'ENXIO', 'ENODEV'].includes(String((err as NodeJS.ErrnoException).code))) throw err;
  });
}
