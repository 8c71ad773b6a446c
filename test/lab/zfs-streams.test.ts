/**
 * ZFS volumes in streams and clones between zpools, on real OpenZFS: the sparse format from
 * a zvol into a file-reflink pool and back, the zfs format (full, a revision, then an
 * incremental one applied in place) between two zpools, a running VM's stream being its
 * pre-start data, and `vm clone` taking zfs clone within a zpool and zfs send/recv across.
 */
import { closeSync, mkdtempSync, openSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QvolApp } from '../../src/app/app.js';
import { copyVolume } from '../../src/io/copy.js';
import { exportVolumeStream, importVolumeStream } from '../../src/io/streams/volume-stream.js';
import type { Volume } from '../../src/model/volume.js';
import { throughFifo } from '../helpers/fifo.js';
import { patternBuffer, sameBytes, spreadChunks } from '../helpers/files.js';
import { skipReason } from '../helpers/gates.js';
import { inLab, makeZpool, notInLab, zfsGet, type LabZpool } from './zpool.js';

const MiB = 2 ** 20;
const SIZE = 32 * MiB;

describe.skipIf(!inLab)(skipReason(notInLab, 'zfs streams and clones between zpools'), () => {
  let one: LabZpool;
  let two: LabZpool;
  const home = mkdtempSync(join(tmpdir(), 'qvol-zstreams-'));
  let n = 0;
  beforeAll(async () => {
    one = makeZpool('qvolone');
    two = makeZpool('qvoltwo');
    await QvolApp.with({ home }, async (app) => {
      await app.addPool({ name: 'one', driver: 'zfs_zvol', container: 'qvolone/q' });
      await app.addPool({ name: 'two', driver: 'zfs_zvol', container: 'qvoltwo/q' });
    });
  });
  afterAll(() => { one?.destroy(); two?.destroy(); });

  /** The committed data of `v`, as a plain file. */
  async function committed(v: Volume): Promise<string> {
    const out = join(home, `committed-${n++}.img`);
    const path = await v.export();
    try {
      await copyVolume(path, out);
    } finally {
      await v.exportEnd(path);
    }
    return out;
  }

  /** Starts `vm`, writes seeded chunks into its private volume, stops it. */
  async function write(app: QvolApp, vm: string, seed: number): Promise<void> {
    const devices = await app.startVm(vm);
    const fd = openSync(devices.find((d) => d.volume === 'private')!.path, 'r+');
    for (const [i, c] of spreadChunks(SIZE, 4, MiB, seed).entries()) writeSync(fd, patternBuffer(c.length, seed + i), 0, c.length, c.offset);
    closeSync(fd);
    await app.stopVm(vm);
  }

  const pipe = (from: Volume, to: Volume, format: 'sparse' | 'zfs', extra: { since?: string; revision?: string; incremental?: boolean } = {}) =>
    throughFifo(home, (fd) => exportVolumeStream(from, fd, { format, ...(extra.since ? { since: extra.since } : {}), ...(extra.revision ? { revision: extra.revision } : {}) }),
      (fd) => importVolumeStream(to, fd, { format, incremental: extra.incremental === true }));

  it('sparse: zvol → file-reflink → zvol in another zpool, equal and sparse', async () => {
    await QvolApp.with({ home }, async (app) => {
      await app.createVm('s1', 'standalone', { pool: 'one' });
      await app.getVolume('s1', 'private').resize(SIZE);
      await write(app, 's1', 3);
      await app.createVm('s2', 'standalone');
      await app.createVm('s3', 'standalone', { pool: 'two' });
      const [sent] = await pipe(app.getVolume('s1', 'private'), app.getVolume('s2', 'private'), 'sparse');
      expect(sent.bytes).toBeLessThan(4 * MiB * 1.01 + 4096);
      await pipe(app.getVolume('s2', 'private'), app.getVolume('s3', 'private'), 'sparse');
      const original = await committed(app.getVolume('s1', 'private'));
      expect(sameBytes(original, await committed(app.getVolume('s3', 'private')))).toBe(true);
      expect(Number(zfsGet(app.getVolume('s3', 'private').vid, 'referenced'))).toBeLessThan(6 * MiB);
    });
  });

  it('zfs: a revision in full, then an incremental stream in place; a running VM sends its pre-start data', async () => {
    await QvolApp.with({ home }, async (app) => {
      await app.createVm('z1', 'standalone', { pool: 'one' });
      await app.getVolume('z1', 'private').resize(SIZE);
      app.getVolume('z1', 'private').revisionsToKeep = 2;
      await write(app, 'z1', 5);
      await write(app, 'z1', 7); // its start took a revision holding seed 5's data
      await app.createVm('z2', 'standalone', { pool: 'two' });
      const a = app.getVolume('z1', 'private');
      const b = app.getVolume('z2', 'private');
      const [revision] = [...(await a.revisions()).keys()].slice(-1);
      await pipe(a, b, 'zfs', { revision: revision! });
      await pipe(a, b, 'zfs', { since: revision!, incremental: true });
      expect(sameBytes(await committed(a), await committed(b))).toBe(true);
      expect(b.size).toBe(SIZE);

      // running: the stream is the committed state, not what the VM writes now
      const before = await committed(a);
      const devices = await app.startVm('z1');
      const fd = openSync(devices.find((d) => d.volume === 'private')!.path, 'r+');
      writeSync(fd, Buffer.alloc(MiB, 0x77), 0, MiB, 0);
      closeSync(fd);
      await app.createVm('z3', 'standalone', { pool: 'two' });
      await pipe(a, app.getVolume('z3', 'private'), 'zfs');
      await app.stopVm('z1');
      expect(sameBytes(before, await committed(app.getVolume('z3', 'private')))).toBe(true);
    });
  });

  it('vm clone: zfs clone within a zpool, zfs send/recv across, sparse copy into files', async () => {
    await QvolApp.with({ home }, async (app) => {
      await app.createVm('c1', 'standalone', { pool: 'one' });
      await app.getVolume('c1', 'private').resize(SIZE);
      await write(app, 'c1', 9);
      const original = await committed(app.getVolume('c1', 'private'));
      for (const [dst, pool, method] of [['c2', 'one', 'zfs clone'], ['c3', 'two', 'zfs send/recv'], ['c4', 'default', 'sparse copy']] as const) {
        await app.cloneVm('c1', dst, { pool });
        const v = app.getVolume(dst, 'private');
        expect(v.importMethod, dst).toBe(method);
        expect(sameBytes(original, await committed(v)), dst).toBe(true);
      }
      expect(Number(zfsGet(app.getVolume('c3', 'private').vid, 'referenced'))).toBeLessThan(6 * MiB);
    });
  });
});
