/**
 * Ephemeral volumes on the real device-mapper, in the lab VM: file-reflink (on a tmpfs, as a
 * volatile pool would be), zfs_zvol, zfs_encrypted and lvm_thin, each rung (the ioctls with
 * LOOP_CONFIGURE, with the pre-5.8 loop calls, and cryptsetup), what the VM wrote being
 * noise on the backing store, zeros at the start of every new mapping, no partition devices
 * on the host, and crash and reboot recovery through the CLI as a user runs it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { closeSync, openSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QvolApp } from '../../src/app/app.js';
import type { StartedDevice } from '../../src/app/storage.js';
import { native } from '../../src/native/binding.js';
import { skipReason } from '../helpers/gates.js';
import { writeBytesAt } from '../helpers/volume-contract.js';
import { inLab, makeZpool, notInLab, sh, type LabZpool } from './zpool.js';

const MiB = 2 ** 20;
const MAIN = join(import.meta.dirname, '../../dist/cli/main.js');
const PATTERN = Buffer.from('qvol-ephemeral-plaintext-'.repeat(40)).subarray(0, 1024);
const PASS = 'printf %s correct-horse';
/** file-reflink on a tmpfs, zfs_zvol, zfs_encrypted, lvm_thin. */
const POOLS = ['fast', 'zv', 'ze', 'lv'];

function readDevice(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, offset);
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** `count` MiB of the backing store from MiB `skip`, past the page cache where it is a device. */
function readBacking(path: string, skip: number, count: number): Buffer {
  const direct = path.startsWith('/dev/') ? ['iflag=direct'] : [];
  return execFileSync('dd', [`if=${path}`, 'bs=1M', `skip=${skip}`, `count=${count}`, ...direct, 'status=none'], { maxBuffer: 8 * MiB });
}

/** Whether the backing store's first 4 MiB (the pattern goes at 1 MiB) hold the plaintext. */
const holdsPlaintext = (path: string) => readBacking(path, 0, 4).includes(PATTERN.subarray(0, 200));

const dmName = (path: string) => path.slice('/dev/mapper/'.length);
const loopsOver = (image: string) => sh('losetup', '-a').split('\n').filter((l) => l.includes(image));
/** The partitions the host has, by kernel name. */
const partitions = () => readdirSync('/sys/class/block').filter((d) => existsSync(`/sys/class/block/${d}/partition`)).sort();

describe.skipIf(!inLab)(skipReason(notInLab, 'ephemeral volumes on device-mapper'), () => {
  let zp: LabZpool;
  const root = mkdtempSync(join(tmpdir(), 'qvol-eph-'));
  const home = join(root, 'home');
  const fast = join(root, 'fast');
  const env = { ...process.env, QVOL_HOME: home };
  const withApp = <T>(fn: (app: QvolApp) => Promise<T>) => QvolApp.with({ home }, fn);
  const volatileOf = (devices: StartedDevice[]) => devices.find((d) => d.volume === 'volatile')!;

  let pv = '';
  beforeAll(async () => {
    mkdirSync(fast);
    sh('mount', '-t', 'tmpfs', '-o', 'size=256m,mode=0700', 'qvol-eph', fast);
    zp = makeZpool('qvoleph', 512);
    const pvFile = join(root, 'pv.img');
    writeFileSync(pvFile, '');
    truncateSync(pvFile, 512 * MiB);
    pv = sh('losetup', '--find', '--show', pvFile);
    await withApp(async (app) => {
      await app.addPool({ name: 'fast', driver: 'file-reflink', dir_path: join(fast, 'pool'), setup_check: false, ephemeral_volatile: true });
      await app.addPool({ name: 'zv', driver: 'zfs_zvol', container: 'qvoleph/zv', ephemeral_volatile: true });
      await app.addPool({ name: 'ze', driver: 'zfs_encrypted', zpool_name: 'qvoleph', passphrase_command: PASS, unload_timeout: 0, ephemeral_volatile: true });
      await app.addPool({ name: 'lv', driver: 'lvm_thin', volume_group: 'qvolephvg', thin_pool: 'tp', block_devices: pv, ephemeral_volatile: true });
      await app.createVm('t', 'template', { pool: 'fast' });
      for (const pool of POOLS) await app.createVm(`a-${pool}`, 'app', { template: 't', pool, volumePools: { volatile: pool } });
    });
  });
  // A failed case must not leave its VM running for the next.
  afterEach(() => withApp(async (app) => {
    for (const pool of POOLS) await app.stopVm(`a-${pool}`).catch(() => undefined);
  }));
  afterAll(() => {
    spawnSync(process.execPath, [MAIN, 'recover'], { env });
    zp?.destroy();
    spawnSync('vgremove', ['-q', '-f', 'qvolephvg']);
    if (pv) spawnSync('losetup', ['-d', pv]);
    spawnSync('umount', ['-l', fast]);
    rmSync(root, { recursive: true, force: true });
  });

  for (const pool of POOLS) {
    it(`${pool}: the VM gets the mapping; what it wrote is noise on the backing store and gone at the next start`, async () => {
      const vm = `a-${pool}`;
      await withApp(async (app) => {
        const backing = app.getVolume(vm, 'volatile').path!;
        const devices = await app.startVm(vm);
        const dev = volatileOf(devices);
        // lvm_thin names the mapping after its LV (Qubes' override).
        expect(dev.path).toBe(pool === 'lv' ? '/dev/mapper/qvolephvg-vm--a--lv--volatile@crypt' : `/dev/mapper/vm-volatile-a_d${pool}-crypt@volatile`);
        expect(dev.rw).toBe(true);
        expect(native.dmInfoSync(dmName(dev.path))).toMatchObject({ liveTable: true, suspended: false });
        expect(readDevice(dev.path, 0, 65536).equals(Buffer.alloc(65536))).toBe(true);
        writeBytesAt(dev.path, PATTERN, MiB);
        expect(readDevice(dev.path, MiB, PATTERN.length).equals(PATTERN)).toBe(true);
        expect(holdsPlaintext(backing)).toBe(false);
        const firstCipher = readBacking(backing, 1, 1).subarray(0, PATTERN.length);
        await app.stopVm(vm);
        expect(native.dmInfoSync(dmName(dev.path))).toBeUndefined();
        expect(existsSync(dev.path)).toBe(false);
        if (pool === 'fast') expect(loopsOver(backing)).toEqual([]);

        // A new start: a new key (the same plaintext is other ciphertext), zeros at the start.
        const again = volatileOf(await app.startVm(vm));
        expect(readDevice(again.path, 0, 65536).equals(Buffer.alloc(65536))).toBe(true);
        expect(readDevice(again.path, MiB, PATTERN.length).equals(PATTERN)).toBe(false);
        writeBytesAt(again.path, PATTERN, MiB);
        expect(readBacking(backing, 1, 1).subarray(0, PATTERN.length).equals(firstCipher)).toBe(false);
        await app.stopVm(vm);
      });
    });
  }

  for (const rung of [{ name: 'ioctl, LOOP_SET_FD', env: { QVOL_LOOP_LEGACY: '1' } }, { name: 'cryptsetup', env: { QVOL_EPHEMERAL_RUNG: 'cryptsetup' } }]) {
    it(`the ${rung.name} rung maps, zeroes and closes as the first does`, async () => {
      Object.assign(process.env, rung.env);
      try {
        await withApp(async (app) => {
          const backing = app.getVolume('a-fast', 'volatile').path!;
          const dev = volatileOf(await app.startVm('a-fast'));
          const info = native.dmInfoSync(dmName(dev.path))!;
          expect(info.liveTable).toBe(true);
          const loop = readdirSync(`/sys/dev/block/${info.major}:${info.minor}/slaves`)[0]!;
          expect(loop).toMatch(/^loop\d+$/);
          expect(readFileSync(`/sys/block/${loop}/loop/autoclear`, 'utf8').trim()).toBe('1');
          expect(readDevice(dev.path, 0, 65536).equals(Buffer.alloc(65536))).toBe(true);
          writeBytesAt(dev.path, PATTERN, MiB);
          expect(holdsPlaintext(backing)).toBe(false);
          await app.stopVm('a-fast');
          expect(native.dmInfoSync(dmName(dev.path))).toBeUndefined();
          expect(loopsOver(backing)).toEqual([]);
        });
      } finally {
        for (const k of Object.keys(rung.env)) delete process.env[k];
      }
    });
  }

  it('a mapping made by cryptsetup is closed by the ioctls, and the other way round', async () => {
    await withApp(async (app) => {
      process.env.QVOL_EPHEMERAL_RUNG = 'cryptsetup';
      const dev = volatileOf(await app.startVm('a-fast'));
      delete process.env.QVOL_EPHEMERAL_RUNG;
      await app.stopVm('a-fast');
      expect(native.dmInfoSync(dmName(dev.path))).toBeUndefined();
      await app.startVm('a-fast');
      process.env.QVOL_EPHEMERAL_RUNG = 'cryptsetup';
      try { await app.stopVm('a-fast'); } finally { delete process.env.QVOL_EPHEMERAL_RUNG; }
      expect(native.dmInfoSync(dmName(dev.path))).toBeUndefined();
      expect(existsSync(dev.path)).toBe(false);
    });
  });

  it('a partition table the VM writes makes no device on the host, and udev does not probe the mapping', async () => {
    await withApp(async (app) => {
      const before = partitions();
      const dev = volatileOf(await app.startVm('a-fast'));
      const mbr = Buffer.alloc(512);
      mbr.set([0x00, 0x20, 0x21, 0x00, 0x83, 0x3f, 0x20, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00], 446);
      mbr[510] = 0x55;
      mbr[511] = 0xaa;
      writeBytesAt(dev.path, mbr, 0);
      const { major, minor } = native.dmInfoSync(dmName(dev.path))!;
      const kname = readFileSync(`/sys/dev/block/${major}:${minor}/uevent`, 'utf8').match(/DEVNAME=(\S+)/)![1]!;
      const loop = readdirSync(`/sys/block/${kname}/slaves`)[0]!;
      sh('udevadm', 'trigger', '--action=change', `/dev/${kname}`, `/dev/${loop}`);
      sh('udevadm', 'settle', '-t', '30');
      expect(readFileSync(`/sys/block/${loop}/loop/partscan`, 'utf8').trim()).toBe('0');
      expect(partitions()).toEqual(before);
      expect(readdirSync('/dev/mapper').filter((n) => n.startsWith(dmName(dev.path)) && n !== dmName(dev.path))).toEqual([]);
      const props = sh('udevadm', 'info', '--query=property', `/dev/${kname}`);
      expect(props).not.toMatch(/ID_PART_TABLE_TYPE|ID_FS_TYPE=\S/);
      await app.stopVm('a-fast');
    });
  });

  it('killed at every step of start and of stop, recover leaves no mapping or loop device', async () => {
    const qvol = (args: string[], crashAfter = 0) => spawnSync(process.execPath, [MAIN, ...args], {
      env: { ...env, QVOL_CRASH_AFTER_STEP: crashAfter ? String(crashAfter) : '' }, encoding: 'utf8',
    });
    const name = 'vm-volatile-a_dfast-crypt@volatile';
    const backing = await withApp(async (app) => app.getVolume('a-fast', 'volatile').path!);
    const clean = () => {
      expect(native.dmInfoSync(name)).toBeUndefined();
      expect(existsSync(`/dev/mapper/${name}`)).toBe(false);
      expect(loopsOver(backing)).toEqual([]);
    };
    // Only the killed verb runs as a process; the repairs run here, through the library.
    for (const verb of ['start', 'stop']) {
      let n = 1;
      for (; n <= 30; n++) {
        if (verb === 'stop') await withApp((app) => app.startVm('a-fast'));
        const r = qvol(['vm', verb, 'a-fast'], n);
        if (r.status === 0) break;
        expect(r.signal, r.stderr).toBe('SIGKILL');
        // recover repairs a VM the kill left halted; one it left marked running is stopped.
        await withApp(async (app) => {
          expect((await app.recover()).failed).toEqual([]);
          if (await app.isRunning('a-fast')) await app.stopVm('a-fast');
          else clean();
        });
        clean();
      }
      expect(n).toBeGreaterThan(verb === 'start' ? 5 : 1);
      if (verb === 'start') await withApp((app) => app.stopVm('a-fast'));
      clean();
    }

    // A reboot takes every mapping with it while the VM is marked running: stop and the
    // next start go on from there.
    expect(qvol(['vm', 'start', 'a-fast']).status).toBe(0);
    sh('dmsetup', 'remove', name);
    const stop = qvol(['vm', 'stop', 'a-fast']);
    expect(stop.status, stop.stderr).toBe(0);
    clean();
    const start = qvol(['vm', 'start', 'a-fast', '--json']);
    expect(start.status, start.stderr).toBe(0);
    expect(readDevice(`/dev/mapper/${name}`, 0, 65536).equals(Buffer.alloc(65536))).toBe(true);
    expect(qvol(['vm', 'stop', 'a-fast']).status).toBe(0);
    clean();
  });
});
