/**
 * The lock below the registry: two pool objects over the same storage (two processes, or
 * the CLI's registry and qubesd's through the bridge) never change one volume at once.
 * flock(2) locks belong to open files, so two pools in one process contend as two
 * processes would.
 */
import { rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ReflinkPool } from '../../../src/drivers/file-reflink/pool.js';
import { LockTimeoutError } from '../../../src/io/file-lock.js';
import { UnsafePathError } from '../../../src/errors/index.js';
import { runtimeDir } from '../../../src/model/pool-locks.js';
import { scratchDir } from '../../helpers/scratch.js';

let dir: string;

beforeEach(() => {
  process.env.QVOL_RUN_DIR = scratchDir('run');
  dir = scratchDir('pool');
});

async function twoPools(): Promise<[ReflinkPool, ReflinkPool]> {
  const a = new ReflinkPool({ name: 'a', dir_path: dir, setup_check: false });
  const b = new ReflinkPool({ name: 'b-by-another-name', dir_path: dir, setup_check: false });
  b.locks.timeoutMs = 150;
  await a.setup();
  return [a, b];
}

describe('pool locks', () => {
  it('a volume busy in one pool object is LOCKED in another over the same directory, naming it', async () => {
    const [a, b] = await twoPools();
    const vm = { name: 'work', dirPathPrefix: 'appvms' as const };
    const va = a.initVolume(vm, { name: 'private', rw: true, saveOnStop: true, size: 2 ** 20 });
    const vb = b.initVolume(vm, { name: 'private', rw: true, saveOnStop: true, size: 2 ** 20 });
    await va.create();
    let inner: unknown;
    await a.locks.volume(va.vid, async () => {
      inner = await vb.resize(2 ** 21).catch((e: unknown) => e);
    });
    expect(inner).toBeInstanceOf(LockTimeoutError);
    expect((inner as Error).message).toContain(`volume ${vb.vid}`);
    expect((inner as Error).message).toContain(`pid ${process.pid}`);
    // Released: the other pool object goes ahead.
    await vb.resize(2 ** 21);
    expect(vb.size).toBe(2 ** 21);
  });

  it('other volumes of the pool go on meanwhile; setting the pool up waits for all of them', async () => {
    const [a, b] = await twoPools();
    const vm = { name: 'work', dirPathPrefix: 'appvms' as const };
    const root = b.initVolume(vm, { name: 'root', rw: true, saveOnStop: true, size: 2 ** 20 });
    const priv = a.initVolume(vm, { name: 'private', rw: true, saveOnStop: true, size: 2 ** 20 });
    await a.locks.volume(priv.vid, async () => {
      await root.create(); // another volume: not blocked
      await expect(b.locks.pool(async () => undefined)).rejects.toBeInstanceOf(LockTimeoutError);
    });
    await b.locks.pool(async () => undefined);
  });

  it('pools elsewhere do not share locks', async () => {
    const [a] = await twoPools();
    const other = new ReflinkPool({ name: 'a', dir_path: scratchDir('pool2'), setup_check: false });
    other.locks.timeoutMs = 150;
    await a.locks.pool(() => other.locks.pool(async () => 'both held'));
  });

  it('refuses a link planted at the runtime directory', async () => {
    const [a] = await twoPools();
    const target = scratchDir('elsewhere');
    rmSync(runtimeDir(), { recursive: true, force: true });
    symlinkSync(target, runtimeDir());
    await expect(a.locks.pool(async () => undefined)).rejects.toBeInstanceOf(UnsafePathError);
    expect(join(runtimeDir())).toBe(process.env.QVOL_RUN_DIR);
  });
});
