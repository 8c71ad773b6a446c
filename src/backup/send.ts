/**
 * A send: the named VMs' volumes into the archive as one session, deduplicated against
 * everything the archive holds. The write order makes a crash harmless: packs, then the
 * index of what they hold, then the session, then the next root; until the root is
 * stored nothing references the new objects, and the next send finds the old root.
 */
import { hostname } from 'node:os';
import type { Archive } from './archive.js';
import { knownIds, readIndexes, writeIndex } from './index-objects.js';
import { lockArchive } from './lock.js';
import { PackWriter } from './pack-writer.js';
import type { BlobRef } from './refs.js';
import { currentRoot, writeRoot, type NamedHash, type RootOptions } from './roots.js';
import { sendVolume, type VolumeStats } from './send-volume.js';
import { readSession, writeSession, type Session, type VmEntry, type VolumeEntry } from './sessions.js';

/** A volume to send: where its committed state can be read, and what to record of it. */
export interface VolumeToSend extends Omit<VolumeEntry, 'tree' | 'stats'> {
  /** A stable path of the committed state (a volume's export()), read, never written. */
  path: string;
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
  vms: Array<{ name: string; volumes: Array<{ name: string; size: number } & VolumeStats> }>;
  packs: number;
  bytesStored: number;
  seconds: number;
}

/** The newest session holding each VM, by VM name, as the parents of this send. */
async function parentsOf(archive: Archive, sessions: NamedHash[], names: string[]): Promise<Map<string, NamedHash>> {
  const want = new Set(names);
  const parents = new Map<string, NamedHash>();
  for (const ref of [...sessions].reverse()) {
    if (want.size === 0) break;
    const s: Session = await readSession(archive, ref);
    for (const vm of s.vms) {
      if (want.delete(vm.name)) parents.set(vm.name, ref);
    }
  }
  return parents;
}

export async function sendToArchive(archive: Archive, vms: VmToSend[], options: SendOptions): Promise<SendResult> {
  const started = process.hrtime.bigint();
  const lock = await lockArchive(archive.store, 'backup send');
  try {
    const current = await currentRoot(archive, options);
    const known = await readIndexes(archive, current.root.indexes);
    const fresh = new Map<string, BlobRef>();
    const packs = new PackWriter(archive, options.packTarget);
    const sink = {
      packs,
      known: knownIds(known),
      lookup: (hex: string) => known.get(hex) ?? fresh.get(hex),
      remember: (hex: string, ref: BlobRef) => { fresh.set(hex, ref); },
    };
    const parents = await parentsOf(archive, current.root.sessions, vms.map((v) => v.name));
    const entries: VmEntry[] = [];
    const report: SendResult['vms'] = [];
    for (const vm of vms) {
      const volumes: VolumeEntry[] = [];
      for (const v of vm.volumes) {
        const { path, ...record } = v;
        const { tree, stats } = await sendVolume(archive, path, v.size, {
          sink,
          signal: options.signal,
          onProgress: options.onProgress && ((done, total) => options.onProgress!(vm.name, v.name, done, total)),
        });
        volumes.push({ ...record, tree, stats });
      }
      entries.push({ ...vm, parent: parents.get(vm.name) ?? null, volumes });
      report.push({ name: vm.name, volumes: volumes.map((v) => ({ name: v.name, size: v.size, ...v.stats })) });
    }
    await packs.flush();
    const index = await writeIndex(archive, packs.written);
    const stored = await writeSession(archive, { time: new Date().toISOString(), host: hostname(), tag: options.tag ?? null, vms: entries });
    const next = await writeRoot(archive, current, {
      sessions: [...current.root.sessions, stored.self],
      indexes: index ? [...current.root.indexes, index] : current.root.indexes,
    }, options);
    return {
      session: stored.session.id,
      generation: next.root.generation,
      vms: report,
      packs: packs.packsWritten,
      bytesStored: packs.bytesWritten,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    };
  } finally {
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
