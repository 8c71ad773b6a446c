/**
 * Workload 5: workload 1's image onto a loop block device. Every run starts from the same
 * device, all zeros (its backing file punched); no tool is told so.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { attachLoopDevice } from '../../test/helpers/loopfs.js';
import { ddSparse, qemuImgConvert } from '../contenders.js';
import { GiB, MiB, makeSparseImage, scratchDir } from '../fixtures.js';
import { allocatedBytes, qvolContender, type Prepared, type Workload } from '../harness.js';

export const deviceCopy: Workload = {
  name: 'sparse file -> loop block device',
  goal: 'qvol <= 1.0x the fastest peer; the device reads back equal',
  limit: { ratio: 1.0 },
  setup(quick): Prepared {
    const size = quick ? 512 * MiB : 4 * GiB;
    const scratch = scratchDir('device');
    const src = join(scratch.dir, 'src.img');
    makeSparseImage(src, size, 0.1);
    const dev = attachLoopDevice(size);
    return {
      src,
      contenders: [qvolContender('qvol copy'), qemuImgConvert('-n'), ddSparse(['notrunc'])],
      target: () => dev.path,
      reset() {
        execFileSync('fallocate', ['--punch-hole', '--offset', '0', '--length', String(size), dev.backing]);
        execFileSync('blockdev', ['--flushbufs', dev.path]);
      },
      allocated: () => allocatedBytes(dev.backing),
      equal() {
        try {
          execFileSync('cmp', ['-s', '-n', String(size), src, dev.path]);
          return true;
        } catch {
          return false;
        }
      },
      cleanup() {
        dev.detach();
        scratch.remove();
      },
    };
  },
};
