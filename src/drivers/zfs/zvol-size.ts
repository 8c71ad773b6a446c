/** Every zvol qvol makes has this block size, so sizes round the same way everywhere. */
export const VOLBLOCKSIZE = 16384;

/** Rounds up to the zvol block size: ZFS refuses a volsize that is not a multiple of it. */
export function zvolSize(bytes: number): number {
  return Math.max(VOLBLOCKSIZE, Math.ceil(bytes / VOLBLOCKSIZE) * VOLBLOCKSIZE);
}
