/** Prepared runs for file targets in one directory: one target per contender. */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { allocatedBytes, dropTarget, type Contender, type Prepared } from '../harness.js';

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
