/** Prepared runs for file targets in one directory: one target per contender. */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Limit } from '../guard.js';
import { allocatedBytes, dropTarget, type Contender, type Prepared, type Workload } from '../harness.js';
import { GiB, MiB, makeSparseImage, scratchDir } from '../fixtures.js';
import { mountLoopFs } from '../../test/helpers/loopfs.js';

export function filePrepared(src: string, dstDir: string, contenders: Contender[], cleanup: () => void,
  check?: Prepared['check']): Prepared {
  const names = new Map(contenders.map((c, i) => [c, join(dstDir, `target-${i}.img`)]));
  return {
    src,
    contenders,
    target: (c) => names.get(c)!,
    reset: dropTarget,
    allocated: allocatedBytes,
    equal(target) {
      try {
        execFileSync('cmp', ['-s', src, target]);
        return true;
      } catch {
        return false;
      }
    },
    ...(check ? { check } : {}),
    cleanup,
  };
}

/** A workload whose source and targets live in a scratch directory on the host filesystem. */
export function hostFileWorkload(spec: {
  name: string;
  goal: string;
  limit: Limit;
  /** Writes the source at `path`, `quick` choosing the smaller size. */
  make(path: string, quick: boolean): void;
  contenders: Contender[];
}): Workload {
  return {
    name: spec.name,
    goal: spec.goal,
    limit: spec.limit,
    setup(quick) {
      const scratch = scratchDir(spec.name.split(' ')[0]!);
      const src = join(scratch.dir, 'src.img');
      spec.make(src, quick);
      return filePrepared(src, scratch.dir, spec.contenders, scratch.remove);
    },
  };
}

/**
 * A sparse source (10 % random data) on the host filesystem and targets on an XFS loop
 * mount `xfsFactor` times its size: the cross-filesystem workloads.
 */
export function hostToXfsPrepared(name: string, quick: boolean, xfsFactor: number, contenders: Contender[]): Prepared {
  const size = quick ? 512 * MiB : 4 * GiB;
  const scratch = scratchDir(name);
  const src = join(scratch.dir, 'src.img');
  makeSparseImage(src, size, 0.1);
  const fs = mountLoopFs('xfs', Math.max(1024, (size * xfsFactor) / MiB));
  return filePrepared(src, fs.dir, contenders, () => {
    fs.unmount();
    scratch.remove();
  });
}
