/**
 * Roots (docs/archive-format.md §8): the archive's current state is the root of the
 * highest generation; each names its predecessor, its sessions and its index objects by
 * hash. qvol remembers the newest root it has seen of each archive and refuses an older one.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ArchiveError } from '../errors/index.js';
import { atomicWriteFile } from '../io/atomic.js';
import { native } from '../native/binding.js';
import type { Archive } from './archive.js';
import { noteRootIndexes } from './places.js';
import { objectHash, openJson, sealMetadata } from './envelope.js';

export interface NamedHash {
  name: string;
  hash: string;
}

export interface Root {
  format: 1;
  archive: string;
  generation: number;
  time: string;
  previous: NamedHash | null;
  sessions: NamedHash[];
  indexes: NamedHash[];
}

export interface CurrentRoot {
  root: Root;
  /** Its own name and hash; undefined for an archive with no root yet. */
  self: NamedHash | undefined;
}

const ROOT_NAME = /^roots\/([0-9a-f]{16})-[0-9a-f]{16}$/;
const HEX64 = /^[0-9a-f]{64}$/;

function isNamedHash(v: unknown, prefix: string): v is NamedHash {
  const o = v as NamedHash;
  return typeof o === 'object' && o !== null && typeof o.name === 'string' && o.name.startsWith(prefix) && typeof o.hash === 'string' && HEX64.test(o.hash);
}

/** The root's fields, each checked: a malformed root is refused, never half used. */
function checkRoot(v: unknown, name: string, archiveId: string): Root {
  const r = v as Root;
  const ok = typeof r === 'object' && r !== null && r.format === 1 && r.archive === archiveId &&
    Number.isSafeInteger(r.generation) && r.generation > 0 && typeof r.time === 'string' &&
    (r.previous === null || isNamedHash(r.previous, 'roots/')) &&
    Array.isArray(r.sessions) && r.sessions.every((s) => isNamedHash(s, 'sessions/')) &&
    Array.isArray(r.indexes) && r.indexes.every((s) => isNamedHash(s, 'index/'));
  if (!ok) throw new ArchiveError('ARCHIVE_CORRUPT', `Root ${name} is malformed.`, { path: name });
  return r;
}

function emptyRoot(archive: Archive): Root {
  return { format: 1, archive: archive.config.id.toString('hex'), generation: 0, time: new Date(0).toISOString(), previous: null, sessions: [], indexes: [] };
}

interface Seen {
  generation: number;
  name: string;
  hash: string;
}

function seenPath(cacheDir: string, archive: Archive): string {
  return join(cacheDir, `${archive.config.id.toString('hex')}.json`);
}

async function readSeen(cacheDir: string, archive: Archive): Promise<Seen | undefined> {
  const text = await readFile(seenPath(cacheDir, archive), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const s = JSON.parse(text) as Seen;
    return Number.isSafeInteger(s.generation) && typeof s.hash === 'string' ? s : undefined;
  } catch {
    return undefined;
  }
}

async function writeSeen(cacheDir: string, archive: Archive, seen: Seen): Promise<void> {
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  await atomicWriteFile(seenPath(cacheDir, archive), `${JSON.stringify(seen)}\n`);
}

export interface RootOptions {
  /** Where the newest root seen of each archive is kept (QVOL_HOME/backup). */
  cacheDir: string;
  /** Accept a root older than the newest seen (the archive was restored from an older copy). */
  acceptRollback?: boolean;
  warn?: (message: string) => void;
}

/** The current root, authenticated and checked against the newest one seen. */
export async function currentRoot(archive: Archive, options: RootOptions): Promise<CurrentRoot> {
  const names = await archive.store.list('roots/');
  const byGeneration = new Map<number, string[]>();
  for (const name of names) {
    const m = ROOT_NAME.exec(name);
    if (!m) continue;
    const g = parseInt(m[1]!, 16);
    byGeneration.set(g, [...(byGeneration.get(g) ?? []), name]);
  }
  const top = Math.max(0, ...byGeneration.keys());
  const seen = await readSeen(options.cacheDir, archive);
  if (top === 0) {
    if (seen && seen.generation > 0) rollback(archive, seen, 0, options);
    return { root: emptyRoot(archive), self: undefined };
  }
  const candidates = byGeneration.get(top)!;
  if (candidates.length > 1) throw new ArchiveError('ARCHIVE_CORRUPT', `The archive has ${candidates.length} roots of generation ${top} (${candidates.join(', ')}): two writers raced, or one was forged; run \`qvol backup verify\`.`, { path: archive.store.location });
  const name = candidates[0]!;
  const bytes = await archive.store.get(name, 64 * 2 ** 20);
  if (!bytes) throw new ArchiveError('ARCHIVE_CORRUPT', `Root ${name} vanished while it was read.`, { path: name });
  const root = checkRoot(openJson('root', name, bytes, archive.keys.meta), name, archive.config.id.toString('hex'));
  if (root.generation !== top) throw new ArchiveError('ARCHIVE_CORRUPT', `Root ${name} says generation ${root.generation}, its name ${top}.`, { path: name });
  const hash = objectHash(bytes);
  noteRootIndexes(archive, root.indexes, options.cacheDir);
  if (seen && (seen.generation > top || (seen.generation === top && seen.hash !== hash))) rollback(archive, seen, top, options);
  if (!seen || seen.generation < top || options.acceptRollback) await writeSeen(options.cacheDir, archive, { generation: top, name, hash });
  return { root, self: { name, hash } };
}

function rollback(archive: Archive, seen: Seen, found: number, options: RootOptions): void {
  const what = `The archive in ${archive.store.location} is at generation ${found}, but this host has seen generation ${seen.generation}${seen.generation === found ? ' with other contents' : ''}`;
  if (!options.acceptRollback) {
    throw new ArchiveError('ARCHIVE_ROLLBACK', `${what}: it was rolled back or replaced. If you restored it from an older copy on purpose, run again with --accept-rollback.`, { path: archive.store.location });
  }
  options.warn?.(`${what}; accepted (--accept-rollback).`);
}

/** Writes the next generation after `current`, then removes roots older than `current`. */
export async function writeRoot(archive: Archive, current: CurrentRoot, change: { sessions: NamedHash[]; indexes: NamedHash[] }, options: RootOptions): Promise<CurrentRoot> {
  const generation = current.root.generation + 1;
  const root: Root = {
    format: 1, archive: archive.config.id.toString('hex'), generation, time: new Date().toISOString(),
    previous: current.self ?? null, sessions: change.sessions, indexes: change.indexes,
  };
  const name = `roots/${generation.toString(16).padStart(16, '0')}-${native.randomBytes(8).toString('hex')}`;
  const bytes = sealMetadata('root', name, Buffer.from(JSON.stringify(root)), archive.keys.meta);
  await archive.store.put(name, bytes);
  noteRootIndexes(archive, root.indexes, options.cacheDir);
  const self = { name, hash: objectHash(bytes) };
  await writeSeen(options.cacheDir, archive, { generation, ...self });
  for (const old of await archive.store.list('roots/')) {
    if (old !== name && old !== current.self?.name) await archive.store.delete(old);
  }
  return { root, self };
}
