/**
 * Clones between a file-reflink pool on the host filesystem and a zvol pool, both ways,
 * through the registry as `qvol vm clone -P POOL` does it: the data arrives equal and the
 * holes stay holes (the copy engine writes only data into a new zvol, which reads as zeros).
 */
import { closeSync, mkdtempSync, openSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QvolApp } from '../../src/app/app.js';
import type { Volume } from '../../src/model/volume.js';
import { allocated, patternBuffer, sameBytes, spreadChunks } from '../helpers/files.js';
import { skipReason } from '../helpers/gates.js';
import { inLab, makeZpool, notInLab, datasetsUnder, zfsGet, type LabZpool } from './zpool.js';

const MiB = 2 ** 20;
const SIZE = 32 * MiB;
const CHUNKS = spreadChunks(SIZE, 6, MiB, 11);

describe.skipIf(!inLab)(skipReason(notInLab, 'clone between file-reflink and zfs_zvol'), () => {
  let zp: LabZpool;
  const home = mkdtempSync(join(tmpdir(), 'qvol-clone-'));
  beforeAll(() => { zp = makeZpool('qvolclone'); });
  afterAll(() => zp?.destroy());

  /** The committed data of `v` copied to a plain file, for comparison. */
  async function committedCopy(v: Volume, name: string): Promise<string> {
    const { copyVolume } = await import('../../src/io/copy.js');
    const path = await v.export();
    try {
      await copyVolume(path, join(home, name));
    } finally {
      await v.exportEnd(path);
    }
    return join(home, name);
  }

  it('clones a VM into a zvol pool and back, equal and sparse', async () => {
    await QvolApp.with({ home }, async (app) => {
      await app.addPool({ name: 'z', driver: 'zfs_zvol', container: 'qvolclone/z' });
      await app.createVm('debian', 'template');
      for (const name of ['root', 'private']) await app.getVolume('debian', name).resize(SIZE);
      const devices = await app.startVm('debian');
      const fd = openSync(devices.find((d) => d.volume === 'root')!.path, 'r+');
      for (const [i, c] of CHUNKS.entries()) writeSync(fd, patternBuffer(c.length, i + 1), 0, c.length, c.offset);
      closeSync(fd);
      await app.stopVm('debian');
      const original = await committedCopy(app.getVolume('debian', 'root'), 'original.img');

      await app.cloneVm('debian', 'onzfs', { pool: 'z' });
      const zroot = app.getVolume('onzfs', 'root');
      expect(zroot.pool.name).toBe('z');
      expect(zroot.vid).toBe('qvolclone/z/vm/onzfs/root');
      expect(Number(zfsGet(zroot.vid, 'referenced'))).toBeLessThan(8 * MiB);
      expect(sameBytes(original, await committedCopy(zroot, 'fromzfs.img'))).toBe(true);

      await app.cloneVm('onzfs', 'back', { pool: 'default' });
      const back = app.getVolume('back', 'root');
      const backCopy = await committedCopy(back, 'back.img');
      expect(sameBytes(original, backCopy)).toBe(true);
      expect(allocated((back as unknown as { cleanPath: string }).cleanPath)).toBeLessThanOrEqual(6 * MiB + 64 * 1024);
      for (const vm of ['back', 'onzfs']) await app.removeVm(vm);
      // Nothing of either VM is left in the zvol pool: no volume, no VM dataset, no snapshot.
      expect(datasetsUnder('qvolclone/z/vm')).toEqual([]);
    });
  });

  it('backs up a VM and restores it into the zvol pool, and the zvol VM back into files: equal, holes kept', async () => {
    const { backupInit, backupRestore, backupSend } = await import('../../src/app/backup.js');
    const dest = join(home, 'archive');
    const access = { dest, passphrase: async () => 'lab' };
    await QvolApp.with({ home }, async (app) => {
      const original = await committedCopy(app.getVolume('debian', 'root'), 'b-original.img');
      await backupInit(dest, { chunkSize: MiB, compression: { codec: 'zstd', level: 3 }, encrypt: true, passphrase: access.passphrase });
      await backupSend(app, access, { vms: ['debian'] });
      await backupRestore(app, access, { vms: ['debian'], rename: new Map([['debian', 'inzfs']]), pool: 'z' });
      const zroot = app.getVolume('inzfs', 'root');
      expect(zroot.vid).toBe('qvolclone/z/vm/inzfs/root');
      expect(Number(zfsGet(zroot.vid, 'referenced'))).toBeLessThan(8 * MiB); // holes were not written
      expect(sameBytes(original, await committedCopy(zroot, 'b-inzfs.img'))).toBe(true);

      // The zvol VM sent (read through its stable export), restored into files.
      await backupSend(app, access, { vms: ['inzfs'] });
      await backupRestore(app, access, { vms: ['inzfs'], rename: new Map([['inzfs', 'infiles']]), pool: 'default' });
      const froot = app.getVolume('infiles', 'root');
      expect(sameBytes(original, await committedCopy(froot, 'b-infiles.img'))).toBe(true);
      expect(allocated((froot as unknown as { cleanPath: string }).cleanPath)).toBeLessThanOrEqual(6 * MiB + 64 * 1024);
      for (const vm of ['infiles', 'inzfs']) await app.removeVm(vm);
      expect(datasetsUnder('qvolclone/z/vm')).toEqual([]);
    });
  });
});
