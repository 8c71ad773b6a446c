/**
 * The archive's keys (docs/archive-format.md §2): one random master key, wrapped per
 * passphrase with Argon2id, and from it one key per purpose by HKDF-SHA256, salted with the
 * archive id, so a key serves one job and a flaw in one use cannot spill into another.
 */
import { hkdfSync } from 'node:crypto';

export const PURPOSES = ['config', 'chunk-id', 'data', 'meta'] as const;
export type Purpose = (typeof PURPOSES)[number];

export type ArchiveKeys = Record<Purpose, Buffer>;

/** The master key of an archive made with `--encrypt off`: authenticated, not secret. */
export const PUBLIC_MASTER_KEY = Buffer.alloc(32);

export function deriveKeys(master: Buffer, archiveId: Buffer): ArchiveKeys {
  const key = (purpose: Purpose) => Buffer.from(hkdfSync('sha256', master, archiveId, `qvol archive 1 ${purpose}`, 32));
  return Object.fromEntries(PURPOSES.map((p) => [p, key(p)])) as ArchiveKeys;
}

/** Argon2id limits of a new key object: RFC 9106's second recommended choice (64 MiB, t = 3). */
export const DEFAULT_KDF = { opslimit: 3, memlimit: 64 * 2 ** 20 } as const;

/** What a key object may ask for: more would let a forged archive exhaust the host. */
export const KDF_LIMITS = { opslimit: [1, 16], memlimit: [8 * 2 ** 20, 4 * 2 ** 30] } as const;
