/**
 * Lab smoke test, run inside the lab VM (test/lab/run.sh): real OpenZFS zvols as copy
 * targets and sources. The ZFS drivers (issue 5) build their suite on this harness.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyVolume } from '../../src/io/copy.js';
import { allocated, makeSparseFile, patternBuffer, sameBytes, spreadChunks } from '../helpers/files.js';
import { skipReason } from '../helpers/gates.js';
import { inLab, makeZpool, notInLab, sh, type LabZpool } from './zpool.js';

const MiB = 2 ** 20;
const SIZE = 64 * MiB;

describe.skipIf(!inLab)(skipReason(notInLab, 'copies to and from real zvols'), () => {
  let zp: LabZpool;
  const zvol = '/dev/zvol/qvollab/vol1';
  const src = () => join(zp.dir, 'src.img');

  beforeAll(() => {
    zp = makeZpool('qvollab', 512);
    sh('zfs', 'create', '-s', '-V', String(SIZE), '-o', 'volmode=dev', 'qvollab/vol1');
    sh('udevadm', 'settle', '-t', '30');
    makeSparseFile(src(), SIZE, spreadChunks(SIZE, 8, MiB, 3));
  });
  afterAll(() => zp?.destroy());

  it('file -> zvol holding old data: reads back equal', async () => {
    writeFileSync(zvol, patternBuffer(SIZE, 9));
    const r = await copyVolume(src(), zvol);
    expect(r).toMatchObject({ targetKind: 'block', method: 'readwrite', bytesWritten: 8 * MiB });
    expect(sameBytes(src(), zvol, SIZE)).toBe(true);
  });

  it('zvol -> file: the holes come back as holes', async () => {
    const back = join(zp.dir, 'back.img');
    const r = await copyVolume(zvol, back);
    expect(r.bytesWritten).toBe(8 * MiB);
    expect(sameBytes(src(), back)).toBe(true);
    expect(allocated(back)).toBeLessThanOrEqual(8 * MiB + 64 * 1024);
  });
});

describe.skipIf(!inLab)(skipReason(notInLab, 'waiting for zvols'), () => {
  it('sees a new zvol appear and go away, without polling', async () => {
    const { waitForDevice, waitForPath, isDeviceInUse } = await import('../../src/io/wait.js');
    const zpw = makeZpool('qvolwait', 256);
    try {
      const waiting = waitForDevice('/dev/zvol/qvolwait/vm/work/root', { timeoutMs: 60_000 });
      sh('zfs', 'create', '-p', '-s', '-V', '16M', '-o', 'volmode=dev', 'qvolwait/vm/work/root');
      await waiting;
      expect(await isDeviceInUse('/dev/zvol/qvolwait/vm/work/root')).toBe(false);
      const gone = waitForPath('/dev/zvol/qvolwait/vm/work/root', { timeoutMs: 60_000, gone: true });
      sh('udevadm', 'settle', '-t', '30'); // udev's own probe of the new device holds it for a moment
      sh('zfs', 'destroy', 'qvolwait/vm/work/root');
      await gone;
    } finally {
      zpw.destroy();
    }
  });
});
