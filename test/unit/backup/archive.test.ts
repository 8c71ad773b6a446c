/**
 * Making and opening an archive (docs/archive-format.md §3, §4): the passphrase unwraps the
 * master key, the config is authenticated before use, and a wrong passphrase, a changed
 * byte or a swapped object is refused by name with nothing written.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { changePassphrase, initArchive, openArchive, unlockMaster, CONFIG_NAME, type InitOptions } from '../../../src/backup/archive.js';
import { DirectoryStore } from '../../../src/backup/store.js';
import { ArchiveError, PassphraseError } from '../../../src/errors/index.js';
import { scratchDir } from '../../helpers/scratch.js';

const FAST_KDF = { opslimit: 1, memlimit: 8 * 2 ** 20 };
const pass = (p: string) => async () => p;

function options(over: Partial<InitOptions> = {}): InitOptions {
  return { chunkSize: 2 ** 20, compression: { codec: 'zstd', level: 3 }, encrypt: true, passphrase: pass('correct horse'), kdf: FAST_KDF, ...over };
}

describe('archive init and open', () => {
  it('opens with the passphrase and gets the same keys and config', async () => {
    const store = new DirectoryStore(scratchDir('archive'));
    const made = await initArchive(store, options());
    const opened = await openArchive(store, pass('correct horse'));
    expect(opened.config).toEqual(made.config);
    expect(opened.keys.data.equals(made.keys.data)).toBe(true);
    expect(opened.keys.data.equals(opened.keys.meta)).toBe(false);
    expect((await store.list('keys/')).length).toBe(1);
  });

  it('a wrong passphrase is one clear error, and nothing is written', async () => {
    const dir = scratchDir('archive');
    const store = new DirectoryStore(dir);
    await initArchive(store, options());
    const before = readdirSync(dir, { recursive: true }).sort();
    const err = await openArchive(store, pass('wrong')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PassphraseError);
    expect(err).toMatchObject({ code: 'WRONG_PASSPHRASE' });
    expect(readdirSync(dir, { recursive: true }).sort()).toEqual(before);
  });

  it('refuses a changed config byte, a changed key object and a key of another archive, naming them', async () => {
    const dir = scratchDir('archive');
    const store = new DirectoryStore(dir);
    await initArchive(store, options());
    const config = join(dir, CONFIG_NAME);
    const good = readFileSync(config);
    for (const at of [8, 25, 27, 30, 50]) {
      const bad = Buffer.from(good);
      bad[at]! ^= 1;
      writeFileSync(config, bad);
      const err = await openArchive(store, pass('correct horse')).catch((e: unknown) => e);
      expect(err, `byte ${at}`).toBeInstanceOf(ArchiveError);
      expect((err as ArchiveError).code).toBe('ARCHIVE_CORRUPT');
    }
    writeFileSync(config, good);
    const [keyName] = await store.list('keys/');
    const keyPath = join(dir, keyName!);
    const key = readFileSync(keyPath);
    for (const at of [30, 45, 60, 100]) {
      const bad = Buffer.from(key);
      bad[at]! ^= 1;
      writeFileSync(keyPath, bad);
      const err = await openArchive(store, pass('correct horse')).catch((e: unknown) => e);
      expect(err, `key byte ${at}`).toBeInstanceOf(Error);
      expect(['ARCHIVE_CORRUPT', 'WRONG_PASSPHRASE']).toContain((err as { code: string }).code);
    }
    writeFileSync(keyPath, key);
    // A key object of another archive with the same passphrase does not open this one.
    const other = new DirectoryStore(scratchDir('other'));
    await initArchive(other, options());
    const [otherKey] = await other.list('keys/');
    writeFileSync(keyPath, readFileSync(join(other.location, otherKey!)));
    await expect(openArchive(store, pass('correct horse'))).rejects.toMatchObject({ code: 'ARCHIVE_CORRUPT' });
  });

  it('an unencrypted archive opens without a passphrase; a store with objects is not made an archive', async () => {
    const store = new DirectoryStore(scratchDir('archive'));
    await initArchive(store, options({ encrypt: false, passphrase: undefined }));
    expect((await openArchive(store, undefined)).config.encrypted).toBe(false);
    await expect(initArchive(store, options())).rejects.toMatchObject({ code: 'ARCHIVE_EXISTS' });
    await expect(openArchive(new DirectoryStore(scratchDir('empty')), undefined)).rejects.toMatchObject({ code: 'ARCHIVE_NOT_FOUND' });
  });

  it('refuses a chunk size that is not a power of two from 64K to 4M', async () => {
    for (const size of [4096, 3 * 2 ** 20, 8 * 2 ** 20]) {
      await expect(initArchive(new DirectoryStore(scratchDir('archive')), options({ chunkSize: size }))).rejects.toMatchObject({ code: 'USAGE' });
    }
  });

  it('a new passphrase replaces the old; the keys stay', async () => {
    const store = new DirectoryStore(scratchDir('archive'));
    const made = await initArchive(store, options());
    // The master key is what the data is under: re-derive it by opening the old way first.
    const { keys } = await openArchive(store, pass('correct horse'));
    const master = await unlockMaster(store, pass('correct horse'));
    await changePassphrase(made, master, 'battery staple', FAST_KDF);
    await expect(openArchive(store, pass('correct horse'))).rejects.toMatchObject({ code: 'WRONG_PASSPHRASE' });
    expect((await openArchive(store, pass('battery staple'))).keys.data.equals(keys.data)).toBe(true);
  });
});
