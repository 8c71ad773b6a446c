/**
 * The archive's XChaCha20-Poly1305 has two implementations (native/sys/aead.h): OpenSSL's,
 * when the process has it and it passes its self-test, and libsodium's. Both must give the
 * same bytes: each opens what the other sealed, and both refuse a changed byte. And the
 * chunk sealer that reads for itself reports zero chunks without hashing them.
 */
import { closeSync, openSync, writeSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { native } from '../../../src/native/binding.js';
import { scratchDir } from '../../helpers/scratch.js';

const libsodium = native.capabilitiesSync().disableBits.opensslAead;
const key = randomBytes(32);
const ad = Buffer.from('QVOL\x01\x07\x00\x00 and an id');

describe('XChaCha20-Poly1305: OpenSSL and libsodium agree', () => {
  it('the Node this runs under gives qvol the OpenSSL rung (the fast one)', () => {
    expect(native.capabilitiesSync().aead).toBe('openssl');
  });

  for (const size of [0, 1, 63, 64, 65, 4096, 2 ** 20 + 7]) {
    it(`each opens what the other sealed (${size} bytes), and refuses a changed byte`, () => {
      const plain = randomBytes(size);
      const byOpenssl = native.seal(key, plain, ad);
      const bySodium = native.seal(key, plain, ad, libsodium);
      expect(native.open(key, byOpenssl, ad, libsodium).equals(plain)).toBe(true);
      expect(native.open(key, bySodium, ad).equals(plain)).toBe(true);
      for (const disable of [0, libsodium]) {
        const bad = Buffer.from(byOpenssl);
        bad[bad.length - 1 - (size % 17)]! ^= 0x40;
        expect(() => native.open(key, bad, ad, disable)).toThrow(expect.objectContaining({ code: 'EAUTH' }));
        expect(() => native.open(key, byOpenssl, Buffer.concat([ad, Buffer.from([0])]), disable)).toThrow(expect.objectContaining({ code: 'EAUTH' }));
      }
    });
  }

  it('a blob sealed by one opens with the other, on the pool threads', async () => {
    const data = Buffer.alloc(2 ** 20, 'compressible text ');
    const keys = { idKey: randomBytes(32), dataKey: randomBytes(32) };
    for (const [sealWith, openWith] of [[0, libsodium], [libsodium, 0]] as const) {
      const { id, blob } = await native.sealBlob(data, { type: 7, ...keys, level: 3, disable: sealWith });
      const back = await native.openBlob(blob!, { type: 7, id, ...keys, maxPlain: 2 ** 20, disable: openWith });
      expect(back.equals(data)).toBe(true);
    }
  });
});

describe('sealChunk: a chunk read and sealed on a pool thread', () => {
  it('gives the id and blob sealBlob gives for the same bytes, {zero} for zeros, and ESHORT past the end', async () => {
    const path = join(scratchDir('seal-chunk'), 'vol');
    const fd = openSync(path, 'w+', 0o600);
    try {
      const data = randomBytes(65536);
      ftruncateSync(fd, 3 * 65536);
      writeSync(fd, data, 0, data.length, 65536);
      const keys = { type: 7 as const, idKey: randomBytes(32), dataKey: randomBytes(32), level: 3 };
      expect(await native.sealChunk(fd, 0, 65536, keys)).toEqual({ zero: true });
      const read = await native.sealChunk(fd, 65536, 65536, keys);
      const given = await native.sealBlob(data, keys);
      expect(read.id!.equals(given.id)).toBe(true);
      const back = await native.openBlob(read.blob!, { type: 7, id: read.id!, idKey: keys.idKey, dataKey: keys.dataKey, maxPlain: 65536 });
      expect(back.equals(data)).toBe(true);
      expect((await native.sealChunk(fd, 65536, 65536, { ...keys, known: Buffer.concat([given.id, Buffer.alloc(32)]) })).blob).toBeUndefined();
      await expect(native.sealChunk(fd, 2 * 65536 + 4096, 65536, keys)).rejects.toMatchObject({ code: 'ESHORT' });
    } finally {
      closeSync(fd);
    }
  });
});

describe('openBlob: in place, and with or without the id hashed again', () => {
  const keys = { idKey: randomBytes(32), dataKey: randomBytes(32) };
  const open = (blob: Buffer, id: Buffer, extra: { idKey?: Buffer; inPlace?: boolean; checkId?: boolean }) =>
    native.openBlob(blob, { type: 7, id, ...keys, maxPlain: 2 ** 20, ...extra });

  it('in place, a stored payload comes back as a view of the blob, a compressed one as new memory', async () => {
    const random = randomBytes(65536);
    const stored = await native.sealBlob(random, { type: 7, ...keys, level: 0 });
    const view = await open(stored.blob!, stored.id, { inPlace: true });
    expect(view.equals(random)).toBe(true);
    expect(view.buffer).toBe(stored.blob!.buffer);
    const text = Buffer.alloc(65536, 'compressible ');
    const packed = await native.sealBlob(text, { type: 7, ...keys, level: 3 });
    const copy = Buffer.from(packed.blob!);
    expect((await open(packed.blob!, packed.id, { inPlace: true })).equals(text)).toBe(true);
    expect(packed.blob!.equals(copy)).toBe(false); // decrypted where it lay
    expect((await open(copy, packed.id, {})).equals(text)).toBe(true);
  });

  it('checkId false skips only the hash: content sealed under an id it does not hash to opens, a changed byte still fails', async () => {
    const data = randomBytes(4096);
    const { id, blob } = await native.sealBlob(data, { type: 7, ...keys, level: 3 });
    const otherIdKey = randomBytes(32); // as if the sealer had hashed with another key
    await expect(open(Buffer.from(blob!), id, { idKey: otherIdKey })).rejects.toMatchObject({ code: 'EID' });
    expect((await open(Buffer.from(blob!), id, { idKey: otherIdKey, checkId: false })).equals(data)).toBe(true);
    const bad = Buffer.from(blob!);
    bad[bad.length - 20]! ^= 1;
    await expect(open(bad, id, { checkId: false, inPlace: true })).rejects.toMatchObject({ code: 'EAUTH' });
  });
});
