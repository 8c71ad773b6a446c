/** Workload 1: a 4 GiB image with 10 % data, copied within ext4 (the host filesystem). */
import { join } from 'node:path';
import { cp, ddSparse, qemuImgConvert } from '../contenders.js';
import { GiB, MiB, makeSparseImage, scratchDir } from '../fixtures.js';
import { qvolContender, type Workload } from '../harness.js';
import { filePrepared } from './files.js';

export const sparseCopy: Workload = {
  name: 'sparse file -> same ext4',
  goal: 'qvol <= 0.9x the fastest peer; allocation = source data',
  setup(quick) {
    const scratch = scratchDir('sparse');
    const src = join(scratch.dir, 'src.img');
    makeSparseImage(src, quick ? 512 * MiB : 4 * GiB, 0.1);
    return filePrepared(src, scratch.dir, [
      qvolContender('qvol copy'),
      cp(),
      cp('--sparse=always'),
      qemuImgConvert(),
      ddSparse(),
    ], scratch.remove);
  },
};
