/**
 * ZFS volumes in streams and clones between zpools, on real OpenZFS: the sparse format from
 * a zvol into a file-reflink pool and back, the zfs format (full, a revision, then an
 * incremental one applied in place) between two zpools, a running VM's stream being its
 * pre-start data, a cut or corrupt stream refused with the zvol unchanged, and `vm clone`
 * taking zfs clone within a zpool and zfs send/recv across (into an encrypted pool too).
 */
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QvolApp } from '../../src/app/app.js';
import { copyVolume } from '../../src/io/copy.js';
import { exportVolume, importVolume } from '../../src/app/transfer.js';
import { CancelledError, StreamError } from '../../src/errors/index.js';
import type { Volume } from '../../src/model/volume.js';
import { throughFifo } from '../helpers/fifo.js';
import { patternBuffer, sameBytes, spreadChunks } from '../helpers/files.js';
import { skipReason } from '../helpers/gates.js';
import { datasetsUnder, inLab, makeZpool, notInLab, zfsGet, type LabZpool } from './zpool.js';

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
      await app.addPool({ name: 'enc', driver: 'zfs_encrypted', zpool_name: 'qvoltwo', passphrase_command: 'printf %s correct-horse', unload_timeout: 0 });
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

  const pipe = (from: Volume, to: Volume, format: 'raw' | 'sparse' | 'zfs', extra: { since?: string; revision?: string; incremental?: boolean; size?: number } = {}) =>
    throughFifo(home, (fd) => exportVolume(from, { format, to: { fd }, ...(extra.since ? { since: extra.since } : {}), ...(extra.revision ? { revision: extra.revision } : {}) }),
      (fd) => importVolume(to, { format, from: { fd }, incremental: extra.incremental === true, ...(extra.size ? { size: extra.size } : {}) }));

  it('sparse: zvol → file-reflink → zvol in another zpool, equal and sparse; raw zvol → zvol', async () => {
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
      await app.createVm('s4', 'standalone', { pool: 'two' });
      await pipe(app.getVolume('s1', 'private'), app.getVolume('s4', 'private'), 'raw', { size: SIZE });
      expect(sameBytes(original, await committed(app.getVolume('s4', 'private')))).toBe(true);
      expect(Number(zfsGet(app.getVolume('s4', 'private').vid, 'referenced'))).toBeLessThan(6 * MiB);
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

  it('a cut or corrupt stream into a zvol is refused; the volume and the pool are as they were', async () => {
    await QvolApp.with({ home }, async (app) => {
      await app.createVm('t1', 'standalone', { pool: 'one' });
      await app.getVolume('t1', 'private').resize(SIZE);
      await write(app, 't1', 13);
      const stream = join(home, 't1.simg');
      const fh = await open(stream, 'w');
      await exportVolume(app.getVolume('t1', 'private'), { format: 'sparse', to: { fd: fh.fd } });
      await fh.close();
      await app.createVm('t2', 'standalone', { pool: 'two' });
      const target = app.getVolume('t2', 'private');
      const before = await committed(target);
      const bytes = readFileSync(stream);
      const bad = join(home, 'bad.simg');
      for (const [edit, code] of [[(b: Buffer) => b.subarray(0, b.length / 2), 'STREAM_TRUNCATED'], [(b: Buffer) => { b.writeUInt8(b.readUInt8(b.length - 200) ^ 1, b.length - 200); return b; }, 'STREAM_CRC_MISMATCH']] as const) {
        writeFileSync(bad, edit(Buffer.from(bytes)));
        const err = await importVolume(target, { format: 'sparse', from: { path: bad } }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StreamError);
        expect((err as StreamError).code).toBe(code);
        expect(sameBytes(before, await committed(target))).toBe(true);
        expect(datasetsUnder('qvoltwo/q').filter((d) => d.includes('.importing/') || d.includes('.tmp/'))).toEqual([]);
      }
    });
  });

  it('vm clone: zfs clone within a zpool, zfs send/recv across, sparse copy into files', async () => {
    await QvolApp.with({ home }, async (app) => {
      await app.createVm('c1', 'standalone', { pool: 'one' });
      await app.getVolume('c1', 'private').resize(SIZE);
      await write(app, 'c1', 9);
      const original = await committed(app.getVolume('c1', 'private'));
      const paths = [['c2', 'one', 'zfs clone'], ['c3', 'two', 'zfs send/recv'], ['c4', 'default', 'sparse copy'], ['c5', 'enc', 'zfs send/recv']] as const;
      for (const [dst, pool, method] of paths) {
        const { copied } = await app.cloneVm('c1', dst, { pool });
        const v = app.getVolume(dst, 'private');
        expect(copied.private, dst).toBe(method);
        expect(sameBytes(original, await committed(v)), dst).toBe(true);
      }
      expect(Number(zfsGet(app.getVolume('c3', 'private').vid, 'referenced'))).toBeLessThan(6 * MiB);
      // received under the encryption root: encrypted with its key, not sent in the clear
      expect(zfsGet(app.getVolume('c5', 'private').vid, 'encryptionroot')).toBe('qvoltwo/encryption/enc');

      // Aborted while zfs send | zfs receive runs (or before: each zfs call takes a second
      // here): CANCELLED, and no VM, no half-received dataset is left.
      const err = await app.cloneVm('c1', 'c6', { pool: 'two', signal: AbortSignal.timeout(300) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CancelledError);
      expect(app.listVms().map((vm) => vm.name)).not.toContain('c6');
      expect(datasetsUnder('qvoltwo/q').filter((d) => /(?:^|[/:])c6(?:[/:@]|$)/.test(d))).toEqual([]);
    });
  });
});
