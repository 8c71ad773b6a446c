/**
 * The driver contract suite (test/helpers/volume-contract.ts) against file-reflink: on btrfs
 * and XFS with reflinks and on ext4 with sparse copies. The lab runs the same suite on ZFS.
 */
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import { ReflinkPool } from '../../src/drivers/file-reflink/pool.js';
import type { Pool } from '../../src/model/pool.js';
import { fsTierBlocker, skipReason } from '../helpers/gates.js';
import { mountLoopFs, type FsKind, type LoopFs } from '../helpers/loopfs.js';
import { volumeContract } from '../helpers/volume-contract.js';

const blocker = fsTierBlocker(['mkfs.btrfs', 'mkfs.xfs', 'mkfs.ext4']);

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

describe.skipIf(blocker !== undefined).each(['btrfs', 'xfs', 'ext4'] as const)(skipReason(blocker, 'volume contract: file-reflink on %s'), (kind: FsKind) => {
  let fs: LoopFs;
  let n = 0;
  beforeAll(() => { fs = mountLoopFs(kind, 256); });
  afterAll(() => fs?.unmount());

  const options = (pool: Pool) => ({ ...pool.config, setup_check: kind !== 'ext4' }) as unknown as ConstructorParameters<typeof ReflinkPool>[0];
  volumeContract({
    async makePool({ revisionsToKeep }) {
      const pool = new ReflinkPool({ name: 'contract', dir_path: join(fs.dir, `pool${n++}`), setup_check: kind !== 'ext4', revisions_to_keep: revisionsToKeep });
      await pool.setup();
      return pool;
    },
    reopen: (pool) => new ReflinkPool(options(pool)),
    leftovers: async (pool) => filesUnder((pool as ReflinkPool).dirPath),
  });
});
