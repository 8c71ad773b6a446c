/**
 * Making and opening an archive: the config object and the key objects (docs/archive-format.md
 * §3, §4). Opening reads the config's fixed fields, unwraps the master key with the
 * passphrase, derives the purpose keys and checks the config's MAC before any of its
 * fields is used.
 */
import { timingSafeEqual } from 'node:crypto';
import { ArchiveError, PassphraseError, UsageError } from '../errors/index.js';
import { native } from '../native/binding.js';
import { checkHeader, corrupt, header } from './envelope.js';
import { DEFAULT_KDF, KDF_LIMITS, PUBLIC_MASTER_KEY, deriveKeys, type ArchiveKeys } from './keys.js';
import type { ObjectStore } from './store.js';

export const CONFIG_NAME = 'qvol-archive';
const CONFIG_BYTES = 72;
const KEY_BYTES = 128;
const KEY_FIELDS = 56;
/** More key objects than this is not an archive qvol made: refuse rather than run Argon2 on each. */
const MAX_KEY_OBJECTS = 16;

export type Compression = { codec: 'none' } | { codec: 'zstd'; level: number };

export interface ArchiveConfig {
  id: Buffer;
  encrypted: boolean;
  compression: Compression;
  chunkSize: number;
  /** Seconds since 1970. */
  created: number;
}

export interface Archive {
  store: ObjectStore;
  config: ArchiveConfig;
  keys: ArchiveKeys;
}

/** Asks for the archive's passphrase; `confirm` when a new one is being set. */
export type ArchivePassphrase = (request: { archive: string; confirm: boolean }) => Promise<string>;

export interface InitOptions {
  /** Power of two, 64 KiB to 4 MiB. */
  chunkSize: number;
  compression: Compression;
  encrypt: boolean;
  passphrase?: ArchivePassphrase | undefined;
  /** Argon2id limits (tests use small ones). */
  kdf?: { opslimit: number; memlimit: number } | undefined;
}

function configBytes(config: ArchiveConfig, macKey: Buffer): Buffer {
  const b = Buffer.alloc(CONFIG_BYTES);
  header('config').copy(b, 0);
  config.id.copy(b, 8);
  b[24] = config.encrypted ? 1 : 0;
  b[25] = config.compression.codec === 'zstd' ? 1 : 0;
  b.writeInt8(config.compression.codec === 'zstd' ? config.compression.level : 0, 26);
  b[27] = Math.log2(config.chunkSize);
  b.writeBigUInt64LE(BigInt(config.created), 28);
  native.blake2b(b.subarray(0, 40), macKey).copy(b, 40);
  return b;
}

/** The config's fields, each range-checked; its MAC is checked once the key is known. */
function parseConfig(b: Buffer): ArchiveConfig {
  if (b.length !== CONFIG_BYTES) throw corrupt(CONFIG_NAME, `is ${b.length} bytes, not ${CONFIG_BYTES}`);
  checkHeader(b, 'config', CONFIG_NAME);
  const [enc, codec, log2] = [b[24]!, b[25]!, b[27]!];
  const level = b.readInt8(26);
  if (enc > 1 || codec > 1 || log2 < 16 || log2 > 22 || b.readUInt32LE(36) !== 0 || (codec === 1 && (level < -7 || level > 22))) {
    throw corrupt(CONFIG_NAME, 'has a field out of range');
  }
  return {
    id: Buffer.from(b.subarray(8, 24)),
    encrypted: enc === 1,
    compression: codec === 1 ? { codec: 'zstd', level } : { codec: 'none' },
    chunkSize: 2 ** log2,
    created: Number(b.readBigUInt64LE(28)),
  };
}

export function checkChunkSize(size: number): number {
  if (!Number.isInteger(size) || size < 65536 || size > 4 * 2 ** 20 || (size & (size - 1)) !== 0) {
    throw new UsageError(`Invalid chunk size ${size}: use a power of two from 64K to 4M.`);
  }
  return size;
}

function keyObjectName(): string {
  return `keys/${native.randomBytes(8).toString('hex')}`;
}

/** A key object wrapping `master` for `passphrase`. */
async function wrapKey(name: string, archiveId: Buffer, master: Buffer, passphrase: string, kdf: { opslimit: number; memlimit: number }): Promise<Buffer> {
  const fields = Buffer.alloc(KEY_FIELDS);
  header('key').copy(fields, 0);
  archiveId.copy(fields, 8);
  const salt = native.randomBytes(16);
  salt.copy(fields, 24);
  fields.writeBigUInt64LE(BigInt(kdf.opslimit), 40);
  fields.writeBigUInt64LE(BigInt(kdf.memlimit), 48);
  const kek = await native.argon2id(Buffer.from(passphrase, 'utf8'), salt, kdf.opslimit, kdf.memlimit);
  return Buffer.concat([fields, native.seal(kek, master, Buffer.concat([fields, Buffer.from(name)]))]);
}

/** The master key from a key object, or undefined when `passphrase` does not open it. */
async function unwrapKey(name: string, bytes: Buffer, archiveId: Buffer, passphrase: string): Promise<Buffer | undefined> {
  if (bytes.length !== KEY_BYTES) throw corrupt(name, `is ${bytes.length} bytes, not ${KEY_BYTES}`);
  checkHeader(bytes, 'key', name);
  if (!bytes.subarray(8, 24).equals(archiveId)) throw corrupt(name, 'belongs to another archive');
  const opslimit = Number(bytes.readBigUInt64LE(40));
  const memlimit = Number(bytes.readBigUInt64LE(48));
  if (opslimit < KDF_LIMITS.opslimit[0] || opslimit > KDF_LIMITS.opslimit[1] || memlimit < KDF_LIMITS.memlimit[0] || memlimit > KDF_LIMITS.memlimit[1]) {
    throw corrupt(name, 'asks for Argon2id limits out of range');
  }
  const kek = await native.argon2id(Buffer.from(passphrase, 'utf8'), Buffer.from(bytes.subarray(24, 40)), opslimit, memlimit);
  try {
    return native.open(kek, bytes.subarray(KEY_FIELDS), Buffer.concat([bytes.subarray(0, KEY_FIELDS), Buffer.from(name)]));
  } catch (err) {
    if ((err as { code?: string }).code === 'EAUTH') return undefined;
    throw err;
  }
}

/** Makes a new archive in an empty store. */
export async function initArchive(store: ObjectStore, options: InitOptions): Promise<Archive> {
  if ((await store.get(CONFIG_NAME, CONFIG_BYTES)) !== undefined || (await store.list('')).length > 0) {
    throw new ArchiveError('ARCHIVE_EXISTS', `${store.location} holds an archive or other objects already: choose an empty destination.`, { path: store.location });
  }
  const config: ArchiveConfig = {
    id: native.randomBytes(16),
    encrypted: options.encrypt,
    compression: options.compression,
    chunkSize: checkChunkSize(options.chunkSize),
    created: Math.floor(Date.now() / 1000),
  };
  let master: Buffer = PUBLIC_MASTER_KEY;
  if (options.encrypt) {
    if (!options.passphrase) throw new PassphraseError('NO_PASSPHRASE', 'An encrypted archive needs a passphrase: give --passphrase-command, or run on a terminal.');
    const passphrase = await options.passphrase({ archive: store.location, confirm: true });
    if (passphrase.length === 0) throw new PassphraseError('BAD_PASSPHRASE', 'The passphrase is empty: choose one, or make the archive with --encrypt off.');
    master = native.randomBytes(32);
    const name = keyObjectName();
    await store.put(name, await wrapKey(name, config.id, master, passphrase, options.kdf ?? DEFAULT_KDF));
  }
  const keys = deriveKeys(master, config.id);
  // The config last: an archive exists once its config does.
  await store.put(CONFIG_NAME, configBytes(config, keys.config));
  return { store, config, keys };
}

/** Opens an archive: config, master key, purpose keys, the config's MAC. */
export async function openArchive(store: ObjectStore, passphrase: ArchivePassphrase | undefined): Promise<Archive> {
  const raw = await store.get(CONFIG_NAME, CONFIG_BYTES);
  if (raw === undefined) {
    throw new ArchiveError('ARCHIVE_NOT_FOUND', `${store.location} holds no qvol archive: make one with \`qvol backup init\`.`, { path: store.location });
  }
  const config = parseConfig(raw);
  let master: Buffer = PUBLIC_MASTER_KEY;
  if (config.encrypted) master = await unlock(store, config, passphrase);
  const keys = deriveKeys(master, config.id);
  if (!timingSafeEqual(native.blake2b(raw.subarray(0, 40), keys.config), raw.subarray(40))) {
    throw corrupt(CONFIG_NAME, 'failed authentication');
  }
  return { store, config, keys };
}

async function unlock(store: ObjectStore, config: ArchiveConfig, passphrase: ArchivePassphrase | undefined): Promise<Buffer> {
  const names = (await store.list('keys/')).sort();
  if (names.length === 0) throw corrupt(store.location, 'has no key object, so its data cannot be decrypted');
  if (names.length > MAX_KEY_OBJECTS) throw corrupt(store.location, `has ${names.length} key objects, more than ${MAX_KEY_OBJECTS}`);
  if (!passphrase) throw new PassphraseError('NO_PASSPHRASE', `The archive in ${store.location} is encrypted: give --passphrase-command, or run on a terminal.`);
  const pass = await passphrase({ archive: store.location, confirm: false });
  for (const name of names) {
    const bytes = await store.get(name, KEY_BYTES);
    if (bytes === undefined) continue;
    const master = await unwrapKey(name, bytes, config.id, pass);
    if (master) return master;
  }
  throw new PassphraseError('WRONG_PASSPHRASE', `The passphrase does not open the archive in ${store.location}; nothing was read or written.`, { path: store.location });
}

/** The master key itself, for `passwd`, which wraps it anew. */
export async function unlockMaster(store: ObjectStore, passphrase: ArchivePassphrase): Promise<Buffer> {
  const raw = await store.get(CONFIG_NAME, CONFIG_BYTES);
  if (raw === undefined) throw new ArchiveError('ARCHIVE_NOT_FOUND', `${store.location} holds no qvol archive.`, { path: store.location });
  const config = parseConfig(raw);
  if (!config.encrypted) throw new UsageError(`The archive in ${store.location} is not encrypted: it has no passphrase to change.`);
  const master = await unlock(store, config, passphrase);
  if (!timingSafeEqual(native.blake2b(raw.subarray(0, 40), deriveKeys(master, config.id).config), raw.subarray(40))) {
    throw corrupt(CONFIG_NAME, 'failed authentication');
  }
  return master;
}

/** Adds a key object for a new passphrase and removes the others (`backup passwd`): the data stays as it is. */
export async function changePassphrase(archive: Archive, master: Buffer, newPassphrase: string, kdf: { opslimit: number; memlimit: number } = DEFAULT_KDF): Promise<void> {
  const old = await archive.store.list('keys/');
  const name = keyObjectName();
  await archive.store.put(name, await wrapKey(name, archive.config.id, master, newPassphrase, kdf));
  for (const o of old) await archive.store.delete(o);
}
