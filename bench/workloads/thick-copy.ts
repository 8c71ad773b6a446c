/** Workload 2: a 2 GiB fully written image, 90 % of it zeros, copied to a thin file. */
import { join } from 'node:path';
import { cp } from '../contenders.js';
import { GiB, MiB, makeThickImage, scratchDir } from '../fixtures.js';
import { qvolContender, type Workload } from '../harness.js';
import { filePrepared } from './files.js';

export const thickCopy: Workload = {
  name: 'thick file (90 % zeros) -> thin, same ext4',
  goal: 'qvol <= 0.9x cp --sparse=always; allocation = data',
  setup(quick) {
    const scratch = scratchDir('thick');
    const src = join(scratch.dir, 'src.img');
    makeThickImage(src, quick ? 256 * MiB : 2 * GiB, 0.1);
    return filePrepared(src, scratch.dir, [
      qvolContender('qvol copy --sparse always', { sparse: 'always' }),
      cp('--sparse=always'),
    ], scratch.remove);
  },
};
