/**
 * The parts of ephemeral mappings that need no device-mapper (the lab tests the rest,
 * test/lab/ephemeral.test.ts): the name check of Qubes' start_encrypted, and that a host
 * without device-mapper still closes nothing and says so.
 */
import { describe, expect, it } from 'vitest';
import { StoragePoolException } from '../../../src/errors/index.js';
import { closeEphemeral, ioctlRungAvailable, mapperName, mappingExists } from '../../../src/io/dm-crypt.js';

describe('mapperName', () => {
  it('takes /dev/mapper/NAME and gives NAME', () => {
    expect(mapperName('/dev/mapper/vm-volatile-my_dvm_ux-crypt@volatile')).toBe('vm-volatile-my_dvm_ux-crypt@volatile');
  });
  it.each(['/dev/dm-0', '/dev/mapper/', '/dev/mapper/a/b', '/dev/mapper/..', '/dev/mapper/control', `/dev/mapper/${'x'.repeat(128)}`, 'mapper/x'])('refuses %s', (path) => {
    expect(() => mapperName(path)).toThrow(StoragePoolException);
  });
});

describe.skipIf(ioctlRungAvailable().ok)('without device-mapper', () => {
  it('finds no mapping and closes nothing', async () => {
    expect(await mappingExists('/dev/mapper/qvol-unit-none')).toBe(false);
    expect(await closeEphemeral('/dev/mapper/qvol-unit-none')).toBe(false);
  });
  it('refuses the ioctl rung by name, saying why', async () => {
    await expect(closeEphemeral('/dev/mapper/qvol-unit-none', { rung: 'ioctl' })).rejects.toThrow(/device-mapper ioctls are refused here/);
  });
});
