/**
 * A send: the named VMs' volumes into the archive as one session, deduplicated against
 * everything the archive holds. The write order makes a crash harmless: packs, then the
 * index of what they hold, then the session, then the next root; until the root is
 * stored nothing references the new objects, and the next send finds the old root.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { atomicWriteFile } from '../io/atomic.js';
import type { Archive } from './archive.js';
import { BlobIndex, RefList } from './blob-index.js';
import { writeIndex } from './index-objects.js';
import { LocalIndex } from './local-index.js';
import { lockArchive } from './lock.js';
import { PackWriter } from './pack-writer.js';
import { packsOutside, readPacks } from './repair-index.js';
import type { BlobRef } from './refs.js';
import { currentRoot, writeRoot, type NamedHash, type RootOptions } from './roots.js';
import { sendVolume, type VolumeStats } from './send-volume.js';
import { readSession, writeSession, type Session, type VmEntry, type VolumeEntry } from './sessions.js';

/** A volume to send: where its committed state can be read, and what to record of it. */
export interface VolumeToSend extends Omit<VolumeEntry, 'tree' | 'stats'> {
  /** A stable path of the committed state (a volume's export()), read, never written. */
  path: string;
  /**
   * What identifies this committed state on this host, when the driver can say (a
   * file-reflink image is never changed in place: its device, inode, size and times).
   * Equal to what the last send of the volume recorded, the volume is not read again.
   */
  identity?: string | undefined;
}

export interface VmToSend extends Omit<VmEntry, 'parent' | 'volumes'> {
  volumes: VolumeToSend[];
}

export interface SendOptions extends RootOptions {
  tag?: string | null | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((vm: string, volume: string, done: number, total: number) => void) | undefined;
  /** Pack size (tests make it small to get many packs). */
  packTarget?: number;
}

export interface SendResult {
  session: string;
  generation: number;
  /** Per volume: `read` is false when it was known unchanged since its last send and not read. */
  vms: Array<{ name: string; volumes: Array<{ name: string; size: number; read: boolean } & VolumeStats> }>;
  packs: number;
  bytesStored: number;
  /** Packs an interrupted send had stored, found and reused (their chunks not sent again). */
  adoptedPacks: number;
  seconds: number;
}

/** The newest session holding each VM, by VM name, as the parents of this send. */
async function parentsOf(archive: Archive, sessions: NamedHash[], names: string[]): Promise<Map<string, { ref: NamedHash; vm: VmEntry }>> {
  const want = new Set(names);
  const parents = new Map<string, { ref: NamedHash; vm: VmEntry }>();
  for (const ref of [...sessions].reverse()) {
    if (want.size === 0) break;
    const s: Session = await readSession(archive, ref);
    for (const vm of s.vms) {
      if (want.delete(vm.name)) parents.set(vm.name, { ref, vm });
    }
  }
  return parents;
}

/** This host's record of what each volume's last send read: `vm/volume` -> identity and session. */
type SentCache = Record<string, { identity: string; session: string }>;

function cachePath(options: SendOptions, archive: Archive): string {
  return join(options.cacheDir, `${archive.config.id.toString('hex')}-sent.json`);
}

async function readSentCache(path: string): Promise<SentCache> {
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as unknown;
    return typeof v === 'object' && v !== null ? Object.assign(Object.create(null) as SentCache, v) : Object.create(null) as SentCache;
  } catch {
    return Object.create(null) as SentCache;
  }
}

export async function sendToArchive(archive: Archive, vms: VmToSend[], options: SendOptions): Promise<SendResult> {
  const started = process.hrtime.bigint();
  const lock = await lockArchive(archive.store, 'backup send');
  let packs: PackWriter | undefined;
  let local: LocalIndex | undefined;
  try {
    const current = await currentRoot(archive, options);
    local = await LocalIndex.sync(archive, current.root.indexes, options.cacheDir);
    packs = new PackWriter(archive, options.packTarget);
    // Packs an interrupted send stored but no index lists: their chunks count as stored,
    // and this session's index lists them.
    const adopted = await readPacks(archive, await packsOutside(archive, local), { blobs: true });
    const found = adopted.refs.sorted();
    packs.written.pushEncoded(found);
    // The native sealer searches the index file and one sorted buffer: the adopted blobs
    // and those of the index objects the file does not hold yet.
    const extra = new RefList();
    extra.pushEncoded(found);
    extra.pushEncoded(local.delta);
    const index = new BlobIndex(local, extra.sorted());
    const sink = {
      packs,
      sealing: index.sealing,
      lookup: (id: Buffer) => index.lookup(id),
      remember: (ref: BlobRef) => { index.remember(ref); },
    };
    const parents = await parentsOf(archive, current.root.sessions, vms.map((v) => v.name));
    const sentPath = cachePath(options, archive);
    const sent = await readSentCache(sentPath);
    const entries: VmEntry[] = [];
    const report: SendResult['vms'] = [];
    for (const vm of vms) {
      const volumes: VolumeEntry[] = [];
      const unread = new Set<string>();
      const parent = parents.get(vm.name);
      for (const v of vm.volumes) {
        const { path, identity, ...record } = v;
        const key = `${vm.name}/${v.name}`;
        const before = parent?.vm.volumes.find((p) => p.name === v.name);
        if (identity !== undefined && before && before.size === v.size && sent[key]?.identity === identity && sent[key]?.session === parent!.ref.name) {
          // Unchanged since the parent session read it: its chunk list is this one, unread.
          volumes.push({ ...record, tree: before.tree, stats: { chunks: before.stats.chunks, zero: before.stats.zero, new: 0, newBytes: 0 } });
          unread.add(v.name);
          continue;
        }
        const { tree, stats } = await sendVolume(archive, path, v.size, {
          sink,
          signal: options.signal,
          onProgress: options.onProgress && ((done, total) => options.onProgress!(vm.name, v.name, done, total)),
        });
        volumes.push({ ...record, tree, stats });
      }
      entries.push({ ...vm, volumes: volumes, parent: parent?.ref ?? null });
      report.push({ name: vm.name, volumes: volumes.map((v) => ({ name: v.name, size: v.size, read: !unread.has(v.name), ...v.stats })) });
    }
    await packs.finish();
    const written = await writeIndex(archive, packs.written.sorted());
    const stored = await writeSession(archive, { time: new Date().toISOString(), host: hostname(), tag: options.tag ?? null, vms: entries });
    const next = await writeRoot(archive, current, {
      sessions: [...current.root.sessions, stored.self],
      indexes: [...current.root.indexes, ...written],
    }, options);
    for (const vm of vms) {
      for (const v of vm.volumes) {
        if (v.identity !== undefined) sent[`${vm.name}/${v.name}`] = { identity: v.identity, session: stored.self.name };
      }
    }
    await mkdir(options.cacheDir, { recursive: true, mode: 0o700 });
    await atomicWriteFile(sentPath, `${JSON.stringify(sent)}\n`);
    return {
      session: stored.session.id,
      generation: next.root.generation,
      vms: report,
      packs: packs.packsWritten,
      bytesStored: packs.bytesWritten,
      adoptedPacks: adopted.packs,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    };
  } finally {
    await packs?.settle();
    await local?.close();
    await lock.release();
  }
}

/** Every session of the archive, oldest first, with its name. */
export async function listSessions(archive: Archive, options: RootOptions): Promise<Array<{ ref: NamedHash; session: Session }>> {
  const { root } = await currentRoot(archive, options);
  const out = [];
  for (const ref of root.sessions) out.push({ ref, session: await readSession(archive, ref) });
  return out;
}
