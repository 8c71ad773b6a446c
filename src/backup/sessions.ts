/**
 * Sessions (docs/archive-format.md §7): what one send stored, per VM (its registry entry
 * and its volumes' chunk lists), each VM naming its previous session by hash.
 */
import { ArchiveError } from '../errors/index.js';
import { native } from '../native/binding.js';
import type { Archive } from './archive.js';
import { objectHash, openJson, sealMetadata } from './envelope.js';
import { refFromHex, refToHex } from './refs.js';
import type { NamedHash } from './roots.js';
import { checkRef, type Tree } from './tree.js';

export interface VolumeEntry {
  name: string;
  size: number;
  pool: string;
  driver: string;
  config: { rw: boolean; save_on_stop: boolean; snap_on_start: boolean; revisions_to_keep: number; source: string | null };
  tree: Tree;
  stats: { chunks: number; zero: number; new: number; newBytes: number };
}

export interface VmEntry {
  name: string;
  class: string;
  template: string | null;
  properties: Record<string, string>;
  parent: NamedHash | null;
  volumes: VolumeEntry[];
}

export interface Session {
  format: 1;
  id: string;
  time: string;
  host: string;
  tag: string | null;
  vms: VmEntry[];
}

export interface StoredSession {
  session: Session;
  self: NamedHash;
}

type Wire = Omit<Session, 'vms'> & { vms: Array<Omit<VmEntry, 'volumes'> & { volumes: Array<Omit<VolumeEntry, 'tree'> & { tree: { depth: number; root: string | null } }> }> };

function toWire(s: Session): Wire {
  return { ...s, vms: s.vms.map((vm) => ({ ...vm, volumes: vm.volumes.map((v) => ({ ...v, tree: { depth: v.tree.depth, root: v.tree.root ? refToHex(v.tree.root) : null } })) })) };
}

const NAME_OK = /^[A-Za-z0-9_.-]{1,64}$/;

function fromWire(w: Wire, name: string, archive: Archive): Session {
  const bad = (why: string) => new ArchiveError('ARCHIVE_CORRUPT', `Session ${name} is malformed: ${why}.`, { path: name });
  if (typeof w !== 'object' || w === null || w.format !== 1 || typeof w.id !== 'string' || !Array.isArray(w.vms)) throw bad('not a format 1 session');
  const vms = w.vms.map((vm) => {
    if (typeof vm.name !== 'string' || !NAME_OK.test(vm.name) || typeof vm.class !== 'string' || !Array.isArray(vm.volumes)) throw bad('a VM entry');
    if (vm.template !== null && (typeof vm.template !== 'string' || !NAME_OK.test(vm.template))) throw bad(`VM ${vm.name}'s template`);
    const volumes = vm.volumes.map((v) => {
      if (typeof v.name !== 'string' || !NAME_OK.test(v.name) || !Number.isSafeInteger(v.size) || v.size < 0 || typeof v.tree !== 'object' || v.tree === null ||
        !Number.isInteger(v.tree.depth) || v.tree.depth < 0 || v.tree.depth > 8) throw bad(`a volume of ${vm.name}`);
      let root;
      try {
        root = v.tree.root === null ? undefined : refFromHex(v.tree.root, (r) => checkRef(archive, r, v.tree.depth > 0 ? 8 : 7));
      } catch (err) {
        if (err instanceof ArchiveError) throw err;
        throw bad(`the chunk list of ${vm.name}:${v.name}`);
      }
      return { ...v, tree: { depth: v.tree.depth, root } };
    });
    return { ...vm, properties: { ...vm.properties }, volumes };
  });
  return { ...w, vms };
}

export async function writeSession(archive: Archive, session: Omit<Session, 'id' | 'format'>): Promise<StoredSession> {
  const id = native.randomBytes(16).toString('hex');
  const full: Session = { format: 1, id, ...session };
  const name = `sessions/${id}`;
  const bytes = sealMetadata('session', name, Buffer.from(JSON.stringify(toWire(full))), archive.keys.meta);
  await archive.store.put(name, bytes);
  return { session: full, self: { name, hash: objectHash(bytes) } };
}

export async function readSession(archive: Archive, ref: NamedHash): Promise<Session> {
  const bytes = await archive.store.get(ref.name, 64 * 2 ** 20);
  if (!bytes) throw new ArchiveError('ARCHIVE_CORRUPT', `Session ${ref.name} is missing.`, { path: ref.name });
  if (objectHash(bytes) !== ref.hash) throw new ArchiveError('ARCHIVE_CORRUPT', `Session ${ref.name} is not the one its root names: it was replaced.`, { path: ref.name });
  return fromWire(openJson('session', ref.name, bytes, archive.keys.meta) as Wire, ref.name, archive);
}
