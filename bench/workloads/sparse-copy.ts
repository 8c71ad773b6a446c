/** Workload 1: a 4 GiB image with 10 % data, copied within ext4 (the host filesystem). */
import { cp, ddSparse, qemuImgConvert } from '../contenders.js';
import { GiB, MiB, makeSparseImage } from '../fixtures.js';
import { qvolContender } from '../harness.js';
import { hostFileWorkload } from './files.js';

export const sparseCopy = hostFileWorkload({
  name: 'sparse file -> same ext4',
  goal: 'qvol <= 0.9x the fastest peer; allocation = source data',
  limit: { ratio: 0.9 },
  make: (path, quick) => makeSparseImage(path, quick ? 512 * MiB : 4 * GiB, 0.1),
  contenders: [qvolContender('qvol copy'), cp(), cp('--sparse=always'), qemuImgConvert(), ddSparse()],
});
