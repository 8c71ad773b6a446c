/** Workload 2: a 2 GiB fully written image, 90 % of it zeros, copied to a thin file. */
import { cp } from '../contenders.js';
import { GiB, MiB, makeThickImage } from '../fixtures.js';
import { qvolContender } from '../harness.js';
import { hostFileWorkload } from './files.js';

export const thickCopy = hostFileWorkload({
  name: 'thick file (90 % zeros) -> thin, same ext4',
  goal: 'qvol <= 0.9x cp --sparse=always; allocation = data',
  limit: { ratio: 0.9, peer: 'cp --sparse=always' },
  make: (path, quick) => makeThickImage(path, quick ? 256 * MiB : 2 * GiB, 0.1),
  contenders: [qvolContender('qvol copy --sparse always', { sparse: 'always' }), cp('--sparse=always')],
});
