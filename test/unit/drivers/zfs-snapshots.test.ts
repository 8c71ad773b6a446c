/** The ZFS snapshot policy without ZFS: names, the committed state, what goes stale. */
import { describe, expect, it } from 'vitest';
import type { SnapshotInfo } from '../../../src/drivers/zfs/datasets.js';
import { bareName, latestCommitted, live, revisionMap, revisionName, staleClean } from '../../../src/drivers/zfs/snapshots.js';

const snap = (name: string, deferred = false): SnapshotInfo => ({ name, creation: 0, deferred, clones: [] });

describe('zfs snapshot policy', () => {
  const all = [
    snap('qubes:before-start:1521065904.000000'),
    snap('qubes-clean-aaaa', true),
    snap('qubes:before-start:1521065906.500000'),
    snap('qubes-clean-bbbb'),
    snap('qubes-clean-cccc'),
    snap('qvol-export-dddd'),
  ];

  it('names revisions by their start time and reads them back as isodates', () => {
    expect(revisionName(1521065906500)).toBe('qubes:before-start:1521065906.500000');
    expect([...revisionMap(all).entries()]).toEqual([
      ['qubes:before-start:1521065904.000000', '2018-03-14T22:18:24'],
      ['qubes:before-start:1521065906.500000', '2018-03-14T22:18:26.500000'],
    ]);
  });

  it('takes the newest live clean snapshot as the committed state, else the newest revision', () => {
    expect(latestCommitted(all)?.name).toBe('qubes-clean-cccc');
    expect(latestCommitted(all.filter((s) => !s.name.startsWith('qubes-clean')))?.name).toBe('qubes:before-start:1521065906.500000');
    expect(latestCommitted([snap('qubes-clean-x', true)])).toBeUndefined();
  });

  it('drops the clean snapshots a newer one replaced, never a deferred one twice', () => {
    expect(staleClean(all)).toEqual(['qubes-clean-bbbb']);
    expect(live(all)).not.toContain('qubes-clean-aaaa');
  });

  it('reads a revision id or ds@name as the bare snapshot name', () => {
    expect(bareName('tank/vm/a/root@qubes-clean-x')).toBe('qubes-clean-x');
    expect(bareName('qubes-clean-x')).toBe('qubes-clean-x');
  });
});
