/**
 * Makes a range of a file or block device read back as zeros by the cheapest means it has:
 * punch a hole (a block device only accepts that when it guarantees zeroes after unmap),
 * BLKZEROOUT, fallocate ZERO_RANGE, or writing zeros. Returns the rung that worked.
 */
import { open } from 'node:fs/promises';
import { native, type ZeroRung, type DisableBits } from '../native/binding.js';
import { withCallerStack } from '../native/errors.js';
import { disableMask } from './capabilities.js';

export interface ZeroOutOptions {
  /** Allow deallocation (punch). Default true; false keeps the space allocated. */
  unmap?: boolean;
  /** Rungs to force off, for tests. */
  disable?: Array<keyof DisableBits>;
}

export async function zeroOut(path: string, offset: number, length: number, options: ZeroOutOptions = {}): Promise<ZeroRung> {
  const fh = await open(path, 'r+');
  try {
    const st = await fh.stat();
    const disable = disableMask(options.disable);
    return await withCallerStack(() => native.zeroOut(fh.fd, offset, length, {
      isBlockDevice: st.isBlockDevice(),
      unmap: options.unmap ?? true,
      disable,
    }));
  } finally {
    await fh.close();
  }
}
