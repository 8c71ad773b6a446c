/** The driver-independent model (docs/qubes-contract.md, "Volumes"), on a minimal in-memory pool. */
import { describe, expect, it } from 'vitest';
import { NotImplementedError, QubesValueError, StoragePoolException, UsageError } from '../../../src/errors/index.js';
import { isodate } from '../../../src/model/isodate.js';
import { validateName } from '../../../src/model/names.js';
import { parseBool, parseBoolStrict } from '../../../src/model/parse-bool.js';
import { Pool, type VmRef, type VolumeRequest } from '../../../src/model/pool.js';
import { Volume, encryptedVolumePath } from '../../../src/model/volume.js';

class PlainVolume extends Volume {}

class MemoryPool extends Pool {
  readonly driver = 'memory';
  async setup(): Promise<void> {}
  initVolume(vm: VmRef, request: VolumeRequest): Volume {
    return new PlainVolume(this, { ...request, vid: request.vid ?? `${vm.name}/${request.name}` });
  }
}

const pool = () => new MemoryPool({ name: 'p' });
const vm: VmRef = { name: 'test-inst-appvm', dirPathPrefix: 'appvms' };

describe('Volume construction', () => {
  it('refuses snap_on_start without a source (A1)', () => {
    expect(() => new PlainVolume(pool(), { name: 'x', vid: 'y', snapOnStart: true }))
      .toThrow(new StoragePoolException("snap_on_start specified on 'x' but no volume source set"));
  });

  it('refuses a source without snap_on_start (A2)', () => {
    const p = pool();
    const other = new PlainVolume(p, { name: 'o', vid: 'o' });
    expect(() => new PlainVolume(p, { name: 'x', vid: 'y', source: other }))
      .toThrow("source specified on 'x' but no snap_on_start set");
  });

  it('refuses a source in another pool', () => {
    const other = new PlainVolume(pool(), { name: 'o', vid: 'o' });
    expect(() => new PlainVolume(pool(), { name: 'x', vid: 'y', snapOnStart: true, source: other })).toThrow(StoragePoolException);
  });

  it('names its type', () => {
    const p = pool();
    const origin = new PlainVolume(p, { name: 'o', vid: 'o', saveOnStop: true });
    expect(origin.type).toBe('origin');
    expect(new PlainVolume(p, { name: 'v', vid: 'v' }).type).toBe('volatile');
    expect(new PlainVolume(p, { name: 's', vid: 's', snapOnStart: true, source: origin }).type).toBe('snapshot');
    expect(new PlainVolume(p, { name: 'os', vid: 'os', snapOnStart: true, saveOnStop: true, source: origin }).type).toBe('origin_snapshot');
  });

  it('has NotImplementedError defaults naming the class and method', async () => {
    const v = new PlainVolume(pool(), { name: 'v', vid: 'v' });
    await expect(v.start()).rejects.toThrow(new NotImplementedError('Volume PlainVolume has start() not implemented'));
    await expect(v.revisions()).rejects.toThrow('PlainVolume has revisions not implemented');
  });
});

describe('isodate (A3)', () => {
  it('is UTC without an offset', () => {
    expect(isodate(1521065904)).toBe('2018-03-14T22:18:24');
    expect(isodate(1521065906)).toBe('2018-03-14T22:18:26');
    expect(isodate(1521065906.5)).toBe('2018-03-14T22:18:26.500000');
  });
});

describe('ephemeral (A4, A5)', () => {
  it('follows the pool flag, live, for rw volatile volumes only', () => {
    const p = pool();
    const v = p.initVolume(vm, { name: 'volatile', rw: true });
    expect(v.ephemeral).toBe(false);
    p.ephemeralVolatile = true;
    expect(v.ephemeral).toBe(true);
    expect(p.initVolume(vm, { name: 'private', rw: true, saveOnStop: true }).ephemeral).toBe(false);
    expect(p.initVolume(vm, { name: 'ro', rw: false }).ephemeral).toBe(false);
  });

  it('is set only where it is allowed, and appears in config only when set', () => {
    const p = pool();
    const priv = p.initVolume(vm, { name: 'private', rw: true, saveOnStop: true });
    expect(() => { priv.ephemeral = true; }).toThrow(QubesValueError);
    expect(() => { priv.ephemeral = true; }).toThrow('Cannot enable ephemeral on snap_on_start or save_on_stop or non-dom0 or not writable volume');
    const vol = p.initVolume(vm, { name: 'volatile', rw: true });
    expect('ephemeral' in vol.config).toBe(false);
    vol.ephemeral = false;
    expect(vol.config.ephemeral).toBe(false);
    const eph = p.initVolume(vm, { name: 'volatile2', rw: true, ephemeral: true });
    expect(eph.ephemeral).toBe(true);
    expect(eph.config.ephemeral).toBe(true);
  });
});

describe('encrypted volume path (A6)', () => {
  it('escapes _ then -', () => {
    expect(encryptedVolumePath('my-vm_x', 'xvdc')).toBe('/dev/mapper/vm-volatile-my_dvm_ux-crypt@xvdc');
  });
});

describe('snapshotsDisabled (A8)', () => {
  it('holds only for revisions_to_keep -1 on an origin', () => {
    const p = pool();
    expect(p.initVolume(vm, { name: 'a', saveOnStop: true, revisionsToKeep: -1 }).snapshotsDisabled).toBe(true);
    expect(p.initVolume(vm, { name: 'b', saveOnStop: true, revisionsToKeep: 0 }).snapshotsDisabled).toBe(false);
    expect(p.initVolume(vm, { name: 'c', revisionsToKeep: -1 }).snapshotsDisabled).toBe(false);
  });
});

describe('config round trip', () => {
  it('has the Qubes keys', () => {
    const p = pool();
    const origin = p.initVolume(vm, { name: 'root', saveOnStop: true, rw: true, size: 1024, revisionsToKeep: 2 });
    const snap = p.initVolume(vm, { name: 'snap', snapOnStart: true, source: origin });
    expect(origin.config).toEqual({ name: 'root', pool: 'p', vid: 'test-inst-appvm/root', revisions_to_keep: 2, rw: true, save_on_stop: true, snap_on_start: false, size: 1024 });
    expect(snap.config.source).toBe('test-inst-appvm/root');
  });
});

describe('names', () => {
  it.each(['work', 'a', 'sys-net', 'fedora-40.x_y', 'x'.repeat(64)])('accepts %s', (n) => {
    expect(validateName('VM', n)).toBe(n);
  });
  it.each(['', '-x', '.x', 'a/b', 'a..b', '..', 'x'.repeat(65), 'a b', 'ä'])('refuses %j', (n) => {
    expect(() => validateName('VM', n)).toThrow(UsageError);
  });
});

describe('boolean parsing', () => {
  it('is strict for the pool flag and lenient elsewhere', () => {
    expect(parseBoolStrict('True')).toBe(true);
    expect(parseBoolStrict('off')).toBe(false);
    expect(parseBoolStrict('')).toBe(false);
    expect(() => parseBoolStrict('true')).toThrow('invalid bool');
    expect(parseBool('YES')).toBe(true);
    expect(parseBool('False')).toBe(false);
    expect(() => parseBool('maybe')).toThrow(QubesValueError);
  });
});

describe('running-state marker names (A7)', () => {
  it('doubles - and turns / into -', async () => {
    const { markerName } = await import('../../../src/app/running.js');
    expect(markerName('p2', 'appvms/d/volatile')).toBe('volume-running-p2:appvms-d-volatile');
    expect(markerName('my-pool', 'appvms/sys-net/root')).toBe('volume-running-my--pool:appvms-sys--net-root');
  });
});
