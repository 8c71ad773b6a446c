/**
 * Command construction and error folding of the ZFS drivers (no zfs here: the lab runs the
 * real thing). Names reach argv only through checkDatasetName.
 */
import { describe, expect, it } from 'vitest';
import { checkDatasetName, classifyZfsError, rows, zfsArgv } from '../../../src/drivers/zfs/zfs-command.js';
import { zvolSize } from '../../../src/drivers/zfs/zvol-size.js';
import { ZfsPool } from '../../../src/drivers/zfs/pool.js';
import { ZfsEncryptedPool } from '../../../src/drivers/zfs/encrypted-pool.js';
import { createPool, driverParameters } from '../../../src/drivers/registry.js';

describe('zfs argv', () => {
  it('builds sparse zvols, clones and batched snapshot destroys', () => {
    expect(zfsArgv.createVolume('tank/vm/a/root', 1048576, { volblocksize: '16384' }))
      .toEqual(['create', '-p', '-s', '-V', '1048576', '-o', 'volblocksize=16384', 'tank/vm/a/root']);
    expect(zfsArgv.clone('tank/vm/t/root@qubes-clean-1234abcd', 'tank/.tmp/a:root', { readonly: 'on' }))
      .toEqual(['clone', '-p', '-o', 'readonly=on', 'tank/vm/t/root@qubes-clean-1234abcd', 'tank/.tmp/a:root']);
    expect(zfsArgv.destroySnapshots('tank/vm/t/root', ['qubes:before-start:1.000000', 'qubes:before-start:2.000000']))
      .toEqual(['destroy', '-d', 'tank/vm/t/root@qubes:before-start:1.000000,qubes:before-start:2.000000']);
    expect(zfsArgv.set('tank/x', { 'org.qvol:dirty': 'on', readonly: 'off' })).toEqual(['set', 'org.qvol:dirty=on', 'readonly=off', 'tank/x']);
  });

  it('refuses names that could read as options or climb out', () => {
    for (const bad of ['-R', 'tank/../x', 'tank//x', 'tank/x/', '', 'tank/x y', 'tank/$(x)']) {
      expect(() => checkDatasetName(bad), bad).toThrow(/not a valid ZFS dataset name/);
    }
    expect(checkDatasetName('tank/.tmp/work:root')).toBe('tank/.tmp/work:root');
  });

  it('folds stderr into the outcomes the driver acts on', () => {
    expect(classifyZfsError("cannot destroy 'tank/a': dataset is busy")).toBe('busy');
    expect(classifyZfsError("cannot destroy 'tank/a': filesystem has dependent clones\nuse '-R' to destroy")).toBe('dependent-clones');
    expect(classifyZfsError("cannot open 'tank/a': dataset does not exist")).toBe('missing');
    expect(classifyZfsError("Key load error: Incorrect key provided for 'tank/enc'.")).toBe('wrong-key');
    expect(classifyZfsError("cannot destroy 'tank/vm': filesystem has children")).toBe('has-children');
    expect(classifyZfsError('out of space')).toBe('other');
    expect(rows('a\t1\nb\t2\n')).toEqual([['a', '1'], ['b', '2']]);
  });

  it('rounds sizes up to the zvol block size', () => {
    expect([zvolSize(0), zvolSize(1), zvolSize(16384), zvolSize(16385), zvolSize(2 ** 30)]).toEqual([16384, 16384, 16384, 32768, 2 ** 30]);
  });
});

describe('zfs pools: options and layout', () => {
  it('takes exactly one of zpool_name and container', () => {
    expect(() => new ZfsPool({ name: 'p' })).toThrow(/exactly one of zpool_name .* or container/);
    expect(() => new ZfsPool({ name: 'p', zpool_name: 'tank', container: 'tank/q' })).toThrow(/exactly one/);
    const pool = new ZfsPool({ name: 'p', container: 'tank/qubes' });
    expect(pool.config).toEqual({ name: 'p', driver: 'zfs_zvol', container: 'tank/qubes', revisions_to_keep: 1, ephemeral_volatile: false });
    expect(new ZfsPool({ name: 'p', zpool_name: 'tank' }).config).toMatchObject({ zpool_name: 'tank' });
  });

  it('names volumes <container>/vm/<vm>/<volume> and helpers <container>/.<kind>/<vm>:<volume>', () => {
    const pool = new ZfsPool({ name: 'p', container: 'tank/qubes' });
    const v = pool.initVolume({ name: 'work', dirPathPrefix: 'appvms' }, { name: 'private', saveOnStop: true, rw: true, size: 1000 });
    expect([v.vid, v.path, v.size]).toEqual(['tank/qubes/vm/work/private', '/dev/zvol/tank/qubes/vm/work/private', 16384]);
    expect(pool.helper('importing', v.vid)).toBe('tank/qubes/.importing/work:private');
    expect(pool.helper('exported', v.vid, '.abcd')).toBe('tank/qubes/.exported/work:private.abcd');
  });

  it('lays an encrypted pool out under <zpool>/encryption/<pool> and persists its options', async () => {
    const pool = new ZfsEncryptedPool({ name: 'secret', zpool_name: 'tank', passphrase_command: 'systemd-ask-password' });
    const v = pool.initVolume({ name: 'work', dirPathPrefix: 'appvms' }, { name: 'private', saveOnStop: true, rw: true, size: 2 ** 20 });
    expect([pool.encryptionRoot, v.vid]).toEqual(['tank/encryption/secret', 'tank/encryption/secret/work/private']);
    expect(pool.helper('tmp', v.vid)).toBe('tank/encryption/secret/.tmp/work:private');
    expect(pool.config).toEqual({ name: 'secret', driver: 'zfs_encrypted', zpool_name: 'tank', unload_timeout: 1200, passphrase_command: 'systemd-ask-password', revisions_to_keep: 1, ephemeral_volatile: false });
    expect(await createPool(pool.config)).toBeInstanceOf(ZfsEncryptedPool);
    expect(() => new ZfsEncryptedPool({ name: 's', zpool_name: 'tank', unload_timeout: '-3' })).toThrow(/whole seconds/);
    await expect(createPool({ name: 's', driver: 'zfs_encrypted' })).rejects.toThrow(/missing required driver options: zpool_name/);
    expect(driverParameters('zfs_zvol')).toEqual({ zpool_name: false, container: false, block_devices: false, force: false, revisions_to_keep: false, ephemeral_volatile: false });
  });
});
