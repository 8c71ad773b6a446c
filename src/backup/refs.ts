/**
 * A reference to a blob (docs/archive-format.md §7): id, pack, offset, stored length and
 * plaintext length, 64 bytes. A zero chunk's reference is 64 zero bytes.
 */
export const REF_BYTES = 64;
export const ID_BYTES = 32;
export const PACK_ID_BYTES = 16;

export interface BlobRef {
  id: Buffer;
  pack: Buffer;
  offset: number;
  stored: number;
  plain: number;
}

export function encodeRef(ref: BlobRef | undefined, into: Buffer, at: number): void {
  if (!ref) {
    into.fill(0, at, at + REF_BYTES);
    return;
  }
  ref.id.copy(into, at);
  ref.pack.copy(into, at + 32);
  into.writeBigUInt64LE(BigInt(ref.offset), at + 48);
  into.writeUInt32LE(ref.stored, at + 56);
  into.writeUInt32LE(ref.plain, at + 60);
}

/** The reference at `at`, or undefined for a zero chunk; `check` refuses impossible values. */
export function decodeRef(from: Buffer, at: number, check: (ref: BlobRef) => void): BlobRef | undefined {
  const bytes = from.subarray(at, at + REF_BYTES);
  if (bytes.every((b) => b === 0)) return undefined;
  const ref: BlobRef = {
    id: Buffer.from(bytes.subarray(0, 32)),
    pack: Buffer.from(bytes.subarray(32, 48)),
    offset: Number(bytes.readBigUInt64LE(48)),
    stored: bytes.readUInt32LE(56),
    plain: bytes.readUInt32LE(60),
  };
  check(ref);
  return ref;
}

export function refToHex(ref: BlobRef): string {
  const b = Buffer.alloc(REF_BYTES);
  encodeRef(ref, b, 0);
  return b.toString('hex');
}

export function refFromHex(hex: string, check: (ref: BlobRef) => void): BlobRef | undefined {
  if (!/^[0-9a-f]{128}$/.test(hex)) throw new Error('not a reference');
  return decodeRef(Buffer.from(hex, 'hex'), 0, check);
}

export function packName(pack: Buffer): string {
  const hex = pack.toString('hex');
  return `packs/${hex.slice(0, 2)}/${hex}`;
}
