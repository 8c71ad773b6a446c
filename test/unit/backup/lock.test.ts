/**
 * One writer at a time: a second writer fails naming the first; a lock left by a dead
 * process of this host is cleared; another host's lock counts while it is fresh.
 */
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { lockArchive } from '../../../src/backup/lock.js';
import { DirectoryStore } from '../../../src/backup/store.js';
import { scratchDir } from '../../helpers/scratch.js';

const lockBody = (host: string, pid: number, refreshed: Date) => Buffer.from(JSON.stringify({ host, pid, started: refreshed.toISOString(), refreshed: refreshed.toISOString(), operation: 'backup send' }));

describe('archive lock', () => {
  it('a second writer fails, naming the first; after release it goes ahead', async () => {
    const store = new DirectoryStore(scratchDir('lock'));
    const first = await lockArchive(store, 'backup send');
    const err = await lockArchive(store, 'backup prune').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ARCHIVE_LOCKED' });
    expect((err as Error).message).toContain(`pid ${process.pid}`);
    await first.release();
    await (await lockArchive(store, 'backup prune')).release();
    expect(await store.list('locks/')).toEqual([]);
  });

  it('clears a lock of this host whose process is gone; respects another host\'s fresh lock, not a stale one', async () => {
    const store = new DirectoryStore(scratchDir('lock'));
    const dead = spawnSync('true').pid!;
    await store.put(`locks/${'a'.repeat(32)}`, lockBody(hostname(), dead, new Date()));
    await (await lockArchive(store, 'backup send')).release();
    expect(await store.list('locks/')).toEqual([]);

    await store.put(`locks/${'b'.repeat(32)}`, lockBody('elsewhere', 1, new Date()));
    await expect(lockArchive(store, 'backup send')).rejects.toMatchObject({ code: 'ARCHIVE_LOCKED' });
    await store.delete(`locks/${'b'.repeat(32)}`);
    await store.put(`locks/${'c'.repeat(32)}`, lockBody('elsewhere', 1, new Date(Date.now() - 3600_000)));
    await (await lockArchive(store, 'backup send')).release();
  });

  it('of two writers, the later to store its lock gives way, even when it looked before the earlier stored its own', async () => {
    const store = new DirectoryStore(scratchDir('lock'));
    for (let round = 0; round < 8; round++) {
      // B looks (and sees nobody), then stores its lock only once A holds the archive.
      let letB!: () => void;
      const gate = new Promise<void>((resolve) => { letB = resolve; });
      const lateStore = Object.assign(Object.create(store) as DirectoryStore, {
        put: async (name: string, data: Uint8Array) => { await gate; return store.put(name, data); },
      });
      const b = lockArchive(lateStore, 'backup prune');
      await new Promise((resolve) => setTimeout(resolve, 20));
      const a = await lockArchive(store, 'backup send');
      letB();
      await expect(b).rejects.toMatchObject({ code: 'ARCHIVE_LOCKED' });
      await a.release();
      expect(await store.list('locks/')).toEqual([]);
    }
  });

  it('two writers at once: never both, and one of them goes ahead', async () => {
    const store = new DirectoryStore(scratchDir('lock'));
    for (let round = 0; round < 10; round++) {
      const both = await Promise.allSettled([lockArchive(store, 'backup send'), lockArchive(store, 'backup prune')]);
      const held = both.filter((r) => r.status === 'fulfilled');
      expect(held.length).toBe(1);
      await (held[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
    }
  });
});

