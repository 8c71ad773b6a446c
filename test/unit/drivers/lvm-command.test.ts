/**
 * Command construction, names and report parsing of the lvm_thin driver (no LVM here: the
 * lab runs the real thing). Names reach argv only through checkLvmName.
 */
import { describe, expect, it } from 'vitest';
import { parseLvReport } from '../../../src/drivers/lvm-thin/lv-report.js';
import { checkLvmName, lvmArgv } from '../../../src/drivers/lvm-thin/lvm-command.js';
import { ThinPool } from '../../../src/drivers/lvm-thin/pool.js';
import { mapperPath } from '../../../src/drivers/lvm-thin/volume.js';
import { createPool, driverParameters } from '../../../src/drivers/registry.js';

describe('lvm argv', () => {
  it('builds Qubes\' commands, with -- before every positional', () => {
    expect(lvmArgv.createThin('qubes_dom0', 'vm-pool', 'vm-work-private', 2 ** 31))
      .toEqual(['lvcreate', '--thin', '--setactivationskip=n', '--activate=y', '--name=vm-work-private', '--virtualsize=2147483648B', '--', 'qubes_dom0/vm-pool']);
    expect(lvmArgv.snapshot('qubes_dom0/vm-t-root', 'vm-w-root-snap'))
      .toEqual(['lvcreate', '--setactivationskip=n', '--activate=y', '--snapshot', '--name=vm-w-root-snap', '--', 'qubes_dom0/vm-t-root']);
    expect(lvmArgv.remove('qubes_dom0/vm-w-root-snap')).toEqual(['lvremove', '--force', '--', 'qubes_dom0/vm-w-root-snap']);
    expect(lvmArgv.rename('vg', 'a', 'b')).toEqual(['lvrename', '--', 'vg', 'a', 'b']);
    expect(lvmArgv.resize('vg/a', 4194304)).toEqual(['lvresize', '--force', '--size=4194304B', '--', 'vg/a']);
    expect(lvmArgv.pvcreate(['/dev/sdb'], true)).toEqual(['pvcreate', '--yes', '--force', '--', '/dev/sdb']);
    expect(lvmArgv.report('vg').slice(-2)).toEqual(['--', 'vg']);
  });

  it('refuses names that could read as options or paths', () => {
    for (const bad of ['-x', 'a/b', '', '..', 'a b', '$(x)', 'x'.repeat(128)]) expect(() => checkLvmName(bad), bad).toThrow(/not a valid LVM name/);
    expect(() => lvmArgv.remove('vg')).toThrow(/not VG\/LV/);
    expect(() => lvmArgv.remove('vg/-rf')).toThrow(/not a valid logical volume name/);
    expect(checkLvmName('vm-work-private-1521065904-back')).toBe('vm-work-private-1521065904-back');
  });

  it('names the mapper device as Qubes does', () => {
    expect(mapperPath('qubes_dom0/vm-work-private')).toBe('/dev/mapper/qubes_dom0-vm--work--private');
  });

  it('takes Qubes\' pool options and refuses a pool without its thin pool', () => {
    expect(driverParameters('lvm_thin')).toEqual({ volume_group: true, thin_pool: true, create_thin_pool: false, block_devices: false, force: false, revisions_to_keep: false, ephemeral_volatile: false });
    const pool = new ThinPool({ name: 'vm-pool', volume_group: 'qubes_dom0', thin_pool: 'vm-pool' });
    expect(pool.config).toEqual({ name: 'vm-pool', driver: 'lvm_thin', volume_group: 'qubes_dom0', thin_pool: 'vm-pool', revisions_to_keep: 1, ephemeral_volatile: false });
    expect(pool.initVolume({ name: 'work', dirPathPrefix: 'appvms' }, { name: 'private', saveOnStop: true, rw: true, size: 2 ** 20 }).vid).toBe('qubes_dom0/vm-work-private');
    return expect(createPool({ name: 'p', driver: 'lvm_thin', volume_group: 'vg' })).rejects.toThrow(/missing required driver options: thin_pool/);
  });
});

describe('lvs report', () => {
  const row = (over: Record<string, string>) => ({
    vg_name: 'vg', lv_name: 'vm-a-root', pool_lv: 'pool', lv_size: '4194304', data_percent: '50.00', lv_attr: 'Vwi-a-tz--',
    origin: '', lv_metadata_size: '', metadata_percent: '', vg_extent_size: '4194304', lv_health_status: '', ...over,
  });

  it('reads sizes, usage and origins by VG/LV', () => {
    const report = parseLvReport(JSON.stringify({ report: [{ lv: [
      row({}),
      row({ lv_name: 'pool', pool_lv: '', lv_attr: 'twi-aotz--', lv_size: '104857600', data_percent: '10.00', lv_metadata_size: '4194304', metadata_percent: '25.00' }),
      row({ lv_name: 'vm-a-root-snap', origin: 'vm-a-root', data_percent: '' }),
    ] }] }));
    expect(report.get('vg/vm-a-root')).toMatchObject({ size: 4194304, usage: 2097152, attr: 'Vwi-a-tz--', poolLv: 'pool', extentSize: 4194304 });
    expect(report.get('vg/pool')).toMatchObject({ size: 104857600, usage: 10485760, metadataSize: 4194304, metadataUsage: 1048576 });
    expect(report.get('vg/vm-a-root-snap')).toMatchObject({ origin: 'vm-a-root', usage: 0 });
  });

  it('refuses a report of another shape, parsing nothing of it', () => {
    for (const bad of ['', 'not json', '{}', '{"report": [{}]}', '{"report": [{"lv": [null]}]}', JSON.stringify({ report: [{ lv: [{ vg_name: 'vg' }] }] }),
      JSON.stringify({ report: [{ lv: [row({ lv_size: '1e400' })] }] }), JSON.stringify({ report: [{ lv: [row({ vg_extent_size: '0' })] }] })]) {
      expect(() => parseLvReport(bad), bad).toThrow(/lvs gave a report qvol cannot read/);
    }
  });
});

describe('room in the thin pool', () => {
  const MiB = 2 ** 20;
  const pool = new ThinPool({ name: 'p', volume_group: 'vg', thin_pool: 'tp' });
  const withPool = (over: Record<string, string>) => parseLvReport(JSON.stringify({ report: [{ lv: [{
    vg_name: 'vg', lv_name: 'tp', pool_lv: '', lv_size: String(100 * MiB), data_percent: '50.00', lv_attr: 'twi-aotz--', origin: '',
    lv_metadata_size: String(4 * MiB), metadata_percent: '10.00', vg_extent_size: String(4 * MiB), lv_health_status: '', ...over,
  }] }] }));

  it('lets through what fits: only what will be written counts, not sizes', () => {
    expect(() => pool.checkRoom(withPool({}), 'a snapshot')).not.toThrow();
    expect(() => pool.checkRoom(withPool({}), 'copying x', 50 * MiB)).not.toThrow();
  });

  it('refuses, saying why and what to do: no data space, not enough for a copy, metadata nearly full, a pool needing repair', () => {
    expect(() => pool.checkRoom(withPool({ data_percent: '100.00', lv_health_status: 'out_of_data' }), 'a snapshot'))
      .toThrow('Thin pool vg/tp is full: extend it (lvextend -L +SIZE vg/tp) or remove volumes or revisions; nothing was changed.');
    expect(() => pool.checkRoom(withPool({}), 'copying vg/x', 51 * MiB))
      .toThrow(/^Thin pool vg\/tp has 50.0 MiB free and copying vg\/x writes up to 51.0 MiB: extend it/);
    expect(() => pool.checkRoom(withPool({ metadata_percent: '95.10' }), 'a snapshot'))
      .toThrow(/^Thin pool vg\/tp has used 95% of its metadata, .*lvextend --poolmetadatasize \+SIZE vg\/tp/);
    expect(() => pool.checkRoom(withPool({ lv_health_status: 'failed', data_percent: '' }), 'a snapshot of vg/x'))
      .toThrow('Thin pool vg/tp needs repair (LVM reports failed): stop its VMs and run lvconvert --repair vg/tp; a snapshot of vg/x was not started.');
    expect(() => pool.checkRoom(new Map(), 'a snapshot')).toThrow('Thin pool vg/tp does not exist');
  });
});
