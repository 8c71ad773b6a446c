/** Workload 4: workload 1's image from ext4 (the host) to XFS (a loop mount). */
import { join } from 'node:path';
import { mountLoopFs } from '../../test/helpers/loopfs.js';
import { cp, qemuImgConvert } from '../contenders.js';
import { GiB, MiB, makeSparseImage, scratchDir } from '../fixtures.js';
import { qvolContender, type Workload } from '../harness.js';
import { filePrepared } from './files.js';

export const crossFsCopy: Workload = {
  name: 'sparse file ext4 -> XFS',
  goal: 'qvol <= 0.9x qemu-img convert',
  setup(quick) {
    const size = quick ? 512 * MiB : 4 * GiB;
    const scratch = scratchDir('cross');
    const src = join(scratch.dir, 'src.img');
    makeSparseImage(src, size, 0.1);
    const fs = mountLoopFs('xfs', Math.max(1024, (size * 2) / MiB));
    return filePrepared(src, fs.dir, [qvolContender('qvol copy'), qemuImgConvert(), cp('--sparse=always')], () => {
      fs.unmount();
      scratch.remove();
    });
  },
};
