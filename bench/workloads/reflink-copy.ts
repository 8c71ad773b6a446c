/** Workload 3: workload 1's image within btrfs and within XFS, where extents can be shared. */
import { join } from 'node:path';
import { fiemap, FIEMAP_EXTENT_SHARED, FIEMAP_EXTENT_UNWRITTEN } from '../../src/io/extents.js';
import { mountLoopFs, type FsKind } from '../../test/helpers/loopfs.js';
import { cp } from '../contenders.js';
import { GiB, MiB, makeSparseImage } from '../fixtures.js';
import { qvolContender, type Workload } from '../harness.js';
import { filePrepared } from './files.js';

/** "shared 409.0/409.0 MiB": bytes FIEMAP marks shared against the source's data bytes. */
async function sharedOfData(src: string, target: string): Promise<string> {
  const shared = (await fiemap(target)).filter((e) => e.flags & FIEMAP_EXTENT_SHARED).reduce((n, e) => n + e.length, 0);
  // The source's written extents; XFS's speculative preallocation (unwritten) is not data.
  const data = (await fiemap(src)).filter((e) => !(e.flags & FIEMAP_EXTENT_UNWRITTEN)).reduce((n, e) => n + e.length, 0);
  return `shared ${(shared / MiB).toFixed(1)}/${(data / MiB).toFixed(1)} MiB${shared >= data ? ' (every extent)' : ''}`;
}

export function reflinkCopy(kind: FsKind): Workload {
  return {
    name: `sparse file -> same ${kind} (reflink)`,
    goal: 'qvol <= 1.1x cp --reflink=always; every extent shared',
    limit: { ratio: 1.1, peer: 'cp --reflink=always' },
    setup(quick) {
      const size = quick ? 512 * MiB : 4 * GiB;
      const fs = mountLoopFs(kind, (size * 2) / MiB);
      const src = join(fs.dir, 'src.img');
      makeSparseImage(src, size, 0.1);
      return filePrepared(src, fs.dir, [qvolContender('qvol copy'), cp('--reflink=always')], () => fs.unmount(),
        (target) => sharedOfData(src, target));
    },
  };
}
