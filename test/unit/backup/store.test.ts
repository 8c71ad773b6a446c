/**
 * The directory store: an object appears whole or not at all (written under a partial
 * name, then linked), a second put of a name is refused, and clean() takes what a crash
 * mid-put left, which no reader lists.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirectoryStore } from '../../../src/backup/store.js';
import { scratchDir } from '../../helpers/scratch.js';

describe('DirectoryStore', () => {
  it('puts whole objects once, lists no partial file, and cleans them', async () => {
    const dir = scratchDir('store');
    const store = new DirectoryStore(dir);
    const name = `sessions/${'ab'.repeat(16)}`;
    await store.put(name, [Buffer.from('one '), Buffer.from('two')]);
    expect((await store.get(name, 100))!.toString()).toBe('one two');
    await expect(store.put(name, Buffer.from('again'))).rejects.toThrow(/exists already: objects are written once/);
    expect((await store.get(name, 100))!.toString()).toBe('one two');
    expect(readdirSync(join(dir, 'sessions'))).toEqual(['ab'.repeat(16)]); // no partial file left by either put

    // What a put killed mid-write leaves: not listed, removed by clean().
    await store.put(`packs/cd/${'cd'.repeat(16)}`, Buffer.from('pack'));
    writeFileSync(join(dir, 'packs', 'cd', `${'ef'.repeat(16)}.partial-0123456789abcdef`), 'half');
    mkdirSync(join(dir, 'roots'), { mode: 0o700 });
    writeFileSync(join(dir, 'roots', `${'0'.repeat(16)}-${'1'.repeat(16)}.partial-0123456789abcdef`), 'half', { flag: 'w' });
    expect(await store.list('packs/')).toEqual([`packs/cd/${'cd'.repeat(16)}`]);
    expect(await store.list('roots/')).toEqual([]);
    expect(await store.clean()).toBe(2);
    expect(readdirSync(join(dir, 'packs', 'cd'))).toEqual(['cd'.repeat(16)]);
  });
});
