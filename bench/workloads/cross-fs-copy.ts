/** Workload 4: workload 1's image from ext4 (the host) to XFS (a loop mount). */
import { cp, qemuImgConvert } from '../contenders.js';
import { qvolContender, type Workload } from '../harness.js';
import { hostToXfsPrepared } from './files.js';

export const crossFsCopy: Workload = {
  name: 'sparse file ext4 -> XFS',
  goal: 'qvol <= 0.9x qemu-img convert',
  limit: { ratio: 0.9, peer: 'qemu-img convert' },
  setup: (quick) => hostToXfsPrepared('cross', quick, 2, [qvolContender('qvol copy'), qemuImgConvert(), cp('--sparse=always')]),
};
