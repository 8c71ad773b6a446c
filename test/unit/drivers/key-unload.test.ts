/**
 * What the drivers take from the caller: the passphrase provider, and the in-process
 * key-unload timer a long-lived process uses (its look at ZFS replaced by a fake here; the
 * detached timer is tested on real OpenZFS in the lab).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { inProcessKeyUnloadTimer } from '../../../src/drivers/zfs/key-unload.js';
import type { UnloadOutcome } from '../../../src/drivers/zfs/key-unload-check.js';
import { askPassphrase } from '../../../src/drivers/zfs/passphrase.js';

/** Waits, bounded, for `check` (timers under a loaded CI run late, never early). */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('in-process key-unload timer', () => {
  it('looks after the timeout, again while busy, and stops when the key went', async () => {
    const outcomes: UnloadOutcome[] = ['busy', 'busy', 'unloaded'];
    const looks: string[] = [];
    const timer = inProcessKeyUnloadTimer(async (root) => { looks.push(root); return outcomes.shift() ?? 'not-loaded'; });
    await timer.arm('tank/enc', 0.02);
    await until(() => looks.length === 3);
    await sleep(100);
    expect(looks).toEqual(['tank/enc', 'tank/enc', 'tank/enc']);
  });

  it('does nothing once cancelled, and a re-arm restarts the countdown', async () => {
    const looks: number[] = [];
    const timer = inProcessKeyUnloadTimer(async () => { looks.push(Date.now()); return 'unloaded'; });
    await timer.arm('a', 0.05);
    await timer.cancel('a');
    await sleep(120);
    expect(looks).toEqual([]);
    const armed = Date.now();
    await timer.arm('a', 0.1);
    await sleep(40);
    await timer.arm('a', 0.1); // a later stop: the countdown starts again
    await until(() => looks.length === 1);
    await sleep(150);
    expect(looks).toHaveLength(1);
    expect(looks[0]! - armed).toBeGreaterThanOrEqual(130);
  });

  it('a look that ends after a cancel does not schedule another', async () => {
    let looks = 0;
    let release!: () => void;
    const timer = inProcessKeyUnloadTimer(async () => { looks++; await new Promise<void>((r) => { release = r; }); return 'busy'; });
    await timer.arm('b', 0.01);
    await sleep(50);
    await timer.cancel('b');
    release();
    await sleep(100);
    expect(looks).toBe(1);
  });
});

describe('passphrase', () => {
  it('comes from the caller\'s provider when the pool has no command, and is refused in one sentence without either', async () => {
    const asked: unknown[] = [];
    expect(await askPassphrase('secret', 'tank/encryption/secret', undefined, async (r) => { asked.push(r); return 'pw'; })).toBe('pw');
    expect(asked).toEqual([{ pool: 'secret', dataset: 'tank/encryption/secret' }]);
    await expect(askPassphrase('secret', 'tank/encryption/secret', undefined)).rejects.toMatchObject({
      code: 'NO_PASSPHRASE', message: expect.stringContaining('set the pool option passphrase_command'),
    });
    expect(await askPassphrase('secret', 'ds', 'printf %s from-command', async () => 'provider')).toBe('from-command');
  });
});
