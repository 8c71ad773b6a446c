/** Waiting for paths and devices without sleeping, and telling whether a device is held. */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isDeviceInUse, waitForPath } from '../../src/io/wait.js';
import { fsTierBlocker, skipReason } from '../helpers/gates.js';
import { attachLoopDevice, mountLoopFs, run } from '../helpers/loopfs.js';
import { scratchDir } from '../helpers/scratch.js';

const later = (ms: number, fn: () => void) => setTimeout(fn, ms);

describe('waitForPath', () => {
  it('follows directories as they appear and returns as soon as the path does', async () => {
    const base = scratchDir('wait');
    const target = join(base, 'zvol', 'pool', 'vm', 'root');
    later(30, () => mkdirSync(join(base, 'zvol')));
    later(60, () => mkdirSync(join(base, 'zvol', 'pool', 'vm'), { recursive: true }));
    let madeAt = 0;
    later(90, () => { writeFileSync(target, ''); madeAt = performance.now(); });
    await waitForPath(target, { timeoutMs: 5000 });
    expect(madeAt).toBeGreaterThan(0);
    expect(performance.now() - madeAt).toBeLessThan(50);
  });

  it('waits for removal', async () => {
    const base = scratchDir('wait');
    const target = join(base, 'dev');
    writeFileSync(target, '');
    later(30, () => rmSync(target));
    await waitForPath(target, { timeoutMs: 5000, gone: true });
  });

  it('gives up at the timeout with a clear error, and needs a timeout', async () => {
    const target = join(tmpdir(), 'qvol-never', 'there');
    await expect(waitForPath(target, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'DEVICE_TIMEOUT', path: target });
    await expect(waitForPath(target, { timeoutMs: 0 })).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('stops when cancelled', async () => {
    const ac = new AbortController();
    later(20, () => ac.abort());
    await expect(waitForPath(join(tmpdir(), 'qvol-never', 'x'), { timeoutMs: 5000, signal: ac.signal })).rejects.toMatchObject({ code: 'CANCELLED' });
  });
});

const blocker = fsTierBlocker(['losetup', 'mkfs.ext4']);

describe.skipIf(blocker !== undefined)(skipReason(blocker, 'isDeviceInUse'), () => {
  it('is false for a free device and true while it is mounted', async () => {
    const dev = attachLoopDevice(2 ** 20);
    try {
      expect(await isDeviceInUse(dev.path)).toBe(false);
    } finally {
      dev.detach();
    }
    const fs = mountLoopFs('ext4', 32);
    try {
      expect(await isDeviceInUse(run('findmnt', ['-n', '-o', 'SOURCE', fs.dir]).trim())).toBe(true);
    } finally {
      fs.unmount();
    }
  });
});
