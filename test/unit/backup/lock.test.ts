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
});
