/**
 * The envelope every archive object and blob carries (docs/archive-format.md §2): an 8-byte
 * header (magic, version, type), a 24-byte nonce, and XChaCha20-Poly1305 ciphertext whose
 * associated data binds the header and the object's name (or a blob's id). open() checks
 * the header, the length and the tag, in that order, before anything is decompressed or
 * parsed, and names the object in every refusal.
 */
import { ArchiveError } from '../errors/index.js';
import { native } from '../native/binding.js';

export const FORMAT = 1;
export const MAGIC = Buffer.from('QVOL');

export const ObjectType = {
  config: 1, key: 2, root: 3, session: 4, index: 5, packHeader: 6, chunk: 7, page: 8,
} as const;
export type ObjectTypeName = keyof typeof ObjectType;

const MiB = 2 ** 20;
/** Bounds on an object as stored, and on its plaintext once opened (§2's table). */
export const BOUNDS: Record<'root' | 'session' | 'index' | 'packHeader' | 'page', { stored: number; plain: number }> = {
  root: { stored: 64 * MiB, plain: 256 * MiB },
  session: { stored: 64 * MiB, plain: 256 * MiB },
  index: { stored: 64 * MiB, plain: 256 * MiB },
  packHeader: { stored: 16 * MiB, plain: 64 * MiB },
  page: { stored: 512 * 1024, plain: 256 * 1024 },
};

export const HEADER_BYTES = 8;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;
/** What sealing adds to a plaintext: header, nonce and tag. */
export const SEAL_OVERHEAD = HEADER_BYTES + NONCE_BYTES + TAG_BYTES;

export function header(type: ObjectTypeName): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(h, 0);
  h[4] = FORMAT;
  h[5] = ObjectType[type];
  return h;
}

export function corrupt(what: string, why: string): ArchiveError {
  return new ArchiveError('ARCHIVE_CORRUPT', `Archive object ${what} ${why}: it was damaged or changed by someone without the key; nothing of it was used. Run \`qvol backup verify\` to see what else is affected.`, { path: what });
}

/** Checks the 8 header bytes of `bytes` as `type`; `what` names the object in errors. */
export function checkHeader(bytes: Uint8Array, type: ObjectTypeName, what: string): void {
  if (bytes.length < HEADER_BYTES || !MAGIC.equals(bytes.subarray(0, 4))) throw corrupt(what, 'is not a qvol archive object');
  if (bytes[4] !== FORMAT) {
    throw new ArchiveError('ARCHIVE_TOO_NEW', `Archive object ${what} has format ${bytes[4]}, which this qvol does not read (it reads format ${FORMAT}): update qvol.`, { path: what });
  }
  if (bytes[5] !== ObjectType[type]) throw corrupt(what, `is a type ${bytes[5]} object where a ${type} belongs`);
  if (bytes[6] !== 0 || bytes[7] !== 0) throw corrupt(what, 'has reserved bits set');
}

/** Seals `plaintext` as a `type` object bound to `binding` (its name, or a blob's id). */
export function seal(type: ObjectTypeName, binding: Uint8Array, plaintext: Uint8Array, key: Buffer): Buffer {
  const h = header(type);
  return Buffer.concat([h, native.seal(key, plaintext, Buffer.concat([h, binding]))]);
}

/** Opens a sealed `type` object: header, length and tag checked; the plaintext, unparsed. */
export function open(type: ObjectTypeName, binding: Uint8Array, bytes: Uint8Array, key: Buffer, what: string, maxStored: number): Buffer {
  if (bytes.length > maxStored) throw corrupt(what, `is ${bytes.length} bytes, more than a ${type} can be`);
  if (bytes.length < SEAL_OVERHEAD) throw corrupt(what, 'is too short');
  checkHeader(bytes, type, what);
  try {
    return native.open(key, bytes.subarray(HEADER_BYTES), Buffer.concat([bytes.subarray(0, HEADER_BYTES), binding]));
  } catch (err) {
    if ((err as { code?: string }).code === 'EAUTH') throw corrupt(what, 'failed authentication');
    throw err;
  }
}

/** Decompresses a metadata plaintext (one zstd frame) within `maxPlain` bytes. */
export function inflate(frame: Uint8Array, maxPlain: number, what: string): Buffer {
  try {
    return native.zstdDecompress(frame, maxPlain);
  } catch (err) {
    if ((err as { code?: string }).code === 'EZSTD') throw corrupt(what, `does not decompress within ${maxPlain} bytes`);
    throw err;
  }
}

/** A metadata object (root, session, index) from its JSON or bytes: compressed, then sealed to its name. */
export function sealMetadata(type: 'root' | 'session' | 'index', name: string, plaintext: Uint8Array, key: Buffer): Buffer {
  return seal(type, Buffer.from(name), native.zstdCompress(plaintext, 3), key);
}

/** Opens a metadata object: authenticated, then decompressed within its type's bound. */
export function openMetadata(type: 'root' | 'session' | 'index', name: string, bytes: Uint8Array, key: Buffer): Buffer {
  const frame = open(type, Buffer.from(name), bytes, key, name, BOUNDS[type].stored);
  return inflate(frame, BOUNDS[type].plain, name);
}

/** A JSON metadata object (root, session): opened as openMetadata does, then parsed; not JSON is ARCHIVE_CORRUPT. */
export function openJson(type: 'root' | 'session', name: string, bytes: Uint8Array, key: Buffer): unknown {
  const text = openMetadata(type, name, bytes, key).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw corrupt(name, 'is not JSON');
  }
}

/** BLAKE2b-256 of an object's stored bytes, as parents name their children (hex). */
export function objectHash(bytes: Uint8Array): string {
  return native.blake2b(bytes).toString('hex');
}
