/**
 * The backup verbs over the registry: which volumes a VM's backup holds (those that keep
 * data: save_on_stop), where their committed state is read from (each volume's export(),
 * the same stable source `volume export` uses), and how a restore recreates VMs (the
 * registry entry, then each volume through its pool's import path).
 */
import { constants, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { changePassphrase, initArchive, openArchive, unlockMaster, type Archive, type ArchivePassphrase, type Compression } from '../backup/archive.js';
import { pruneArchive, type KeepPolicy, type PruneResult } from '../backup/prune.js';
import { closePlaces } from '../backup/places.js';
import { repairIndex, type RepairResult } from '../backup/repair-index.js';
import { restoreVolume } from '../backup/restore-volume.js';
import type { RootOptions } from '../backup/roots.js';
import { listSessions, sendToArchive, type SendResult, type VmToSend } from '../backup/send.js';
import type { Session, VmEntry, VolumeEntry } from '../backup/sessions.js';
import { DirectoryStore } from '../backup/store.js';
import { walkTree } from '../backup/tree.js';
import { verifyArchive, type VerifyResult } from '../backup/verify.js';
import { QvolError, UsageError } from '../errors/index.js';
import { openSource } from '../io/copy-target.js';
import type { QvolApp } from './app.js';
import type { VmClass } from './state.js';

export interface ArchiveAccess {
  /** The archive's directory. */
  dest: string;
  passphrase?: ArchivePassphrase | undefined;
  acceptRollback?: boolean | undefined;
  warn?: ((message: string) => void) | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Chunks read are hashed to their ids too (restore, cat). Without it they are still
   * authenticated: each chunk's tag binds its id; verify --data and --verify-only always hash.
   */
  checkIds?: boolean | undefined;
}

export interface InitArchiveOptions {
  chunkSize: number;
  compression: Compression;
  encrypt: boolean;
  passphrase?: ArchivePassphrase | undefined;
}

export async function backupInit(dest: string, options: InitArchiveOptions): Promise<{ id: string; chunkSize: number; encrypted: boolean; compression: string }> {
  const a = await initArchive(new DirectoryStore(dest), options);
  return { id: a.config.id.toString('hex'), chunkSize: a.config.chunkSize, encrypted: a.config.encrypted, compression: compressionName(a.config.compression) };
}

export function compressionName(c: Compression): string {
  return c.codec === 'zstd' ? `zstd:${c.level}` : 'none';
}

function rootOptions(app: QvolApp, access: ArchiveAccess): RootOptions {
  return {
    cacheDir: join(app.home, 'backup'),
    ...(access.acceptRollback ? { acceptRollback: true } : {}),
    ...(access.warn ? { warn: access.warn } : {}),
  };
}

async function openFor(access: ArchiveAccess): Promise<Archive> {
  const archive = await openArchive(new DirectoryStore(access.dest), access.passphrase);
  if (!archive.config.encrypted) access.warn?.(`the archive in ${access.dest} is not encrypted: anyone who can read it can read the VMs' data and names.`);
  return archive;
}

/** Runs `fn` on the archive, then closes the index file that finding moved blobs may have opened. */
async function withArchive<T>(access: ArchiveAccess, fn: (archive: Archive) => Promise<T>): Promise<T> {
  const archive = await openFor(access);
  try {
    return await fn(archive);
  } finally {
    await closePlaces(archive);
  }
}

/** Sends the named VMs (all when `vms` is empty and `all`) as one session. */
export async function backupSend(app: QvolApp, access: ArchiveAccess, options: { vms: string[]; all?: boolean; tag?: string | undefined; onProgress?: SendOptionsProgress }): Promise<SendResult> {
  const names = options.all ? app.listVms().map((v) => v.name) : options.vms;
  if (names.length === 0) throw new UsageError('Name the VMs to back up, or give --all.');
  const archive = await openFor(access);
  const exported: Array<{ release: () => Promise<void> }> = [];
  try {
    const vms: VmToSend[] = [];
    for (const name of names) {
      const record = app.getVm(name);
      const volumes = [];
      for (const [volName, v] of app.volumesOf(name)) {
        if (!v.saveOnStop) continue; // snapshots come from their template, volatile data goes
        const path = await v.export();
        exported.push({ release: () => v.exportEnd(path) });
        const source = await openSource(path);
        await source.handle.close();
        const identity = committedIdentity(source.stat);
        const config = record.volumes[volName]!;
        volumes.push({
          name: volName, size: source.size, path, identity, pool: v.pool.name, driver: v.pool.driver,
          config: { rw: config.rw, save_on_stop: config.save_on_stop, snap_on_start: config.snap_on_start, revisions_to_keep: config.revisions_to_keep, source: config.source ?? null },
        });
      }
      vms.push({ name, class: record.class, template: record.template ?? null, properties: {}, volumes });
    }
    return await sendToArchive(archive, vms, { ...rootOptions(app, access), tag: options.tag, signal: access.signal, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  } finally {
    for (const e of exported.reverse()) await e.release();
  }
}

/**
 * A regular file that is a committed state is never changed in place (file-reflink publishes
 * a new inode on every commit, revert and resize): its device, inode, size and mtime say it
 * is the one a send read before. Not its ctime, which a snapshot's hard link changes. A
 * device (a zvol clone) has none.
 */
export function committedIdentity(st: Stats): string | undefined {
  return st.isFile() ? `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}` : undefined;
}

type SendOptionsProgress = (vm: string, volume: string, done: number, total: number) => void;

export interface SessionSummary {
  id: string;
  time: string;
  tag: string | null;
  vms: Array<{ name: string; class: string; volumes: Array<{ name: string; size: number; chunks: number; new: number; newBytes: number }> }>;
}

export async function backupList(app: QvolApp, access: ArchiveAccess): Promise<SessionSummary[]> {
  const archive = await openFor(access);
  const sessions = await listSessions(archive, rootOptions(app, access));
  return sessions.map(({ session }) => ({
    id: session.id, time: session.time, tag: session.tag,
    vms: session.vms.map((vm) => ({ name: vm.name, class: vm.class, volumes: vm.volumes.map((v) => ({ name: v.name, size: v.size, chunks: v.stats.chunks, new: v.stats.new, newBytes: v.stats.newBytes })) })),
  }));
}

/** The session a selector names (an id or its prefix), else the newest holding each VM. */
function pick(sessions: Session[], vms: string[], selector: string | undefined): Map<string, VmEntry> {
  const chosen = new Map<string, VmEntry>();
  if (selector !== undefined) {
    const found = sessions.filter((s) => s.id.startsWith(selector));
    if (found.length !== 1) throw new UsageError(`${found.length === 0 ? 'No' : 'More than one'} session matches '${selector}': see \`qvol backup ls\`.`);
    for (const vm of found[0]!.vms) if (vms.length === 0 || vms.includes(vm.name)) chosen.set(vm.name, vm);
  } else {
    for (const s of sessions) for (const vm of s.vms) if (vms.length === 0 || vms.includes(vm.name)) chosen.set(vm.name, vm);
  }
  const missing = vms.filter((v) => !chosen.has(v));
  if (missing.length > 0) throw new UsageError(`The archive has no backup of ${missing.join(', ')}${selector ? ` in session ${selector}` : ''}: see \`qvol backup ls\`.`);
  return chosen;
}

export interface RestoreOptions {
  vms: string[];
  session?: string | undefined;
  pool?: string | undefined;
  /** OLD -> NEW names. */
  rename?: Map<string, string> | undefined;
  /** Read and check everything the restore would write, and write nothing. */
  verifyOnly?: boolean | undefined;
  /**
   * A VM that exists (halted, of the same class) has its volumes' data replaced, each as an
   * import: committed whole or not at all, the former data kept as a revision where the
   * volume keeps them. Its registry entry (template, pools, settings) stays as it is.
   */
  replace?: boolean | undefined;
  onProgress?: SendOptionsProgress | undefined;
}

export interface RestoreResult {
  /** With verifyOnly, `written` counts the bytes read and checked; no VM was made. */
  vms: Array<{ name: string; from: string; session?: string; replaced?: boolean; volumes: Array<{ name: string; size: number; written: number }> }>;
  verifyOnly?: boolean;
  seconds: number;
}

/**
 * Recreates VMs from the archive: templates before the VMs based on them; each VM made in
 * the registry, then each volume filled through its pool's import path. A VM that fails
 * part way is removed again: no half VM is left.
 */
export function backupRestore(app: QvolApp, access: ArchiveAccess, options: RestoreOptions): Promise<RestoreResult> {
  return withArchive(access, (archive) => restoreFrom(app, archive, access, options));
}

async function restoreFrom(app: QvolApp, archive: Archive, access: ArchiveAccess, options: RestoreOptions): Promise<RestoreResult> {
  const started = process.hrtime.bigint();
  const sessions = (await listSessions(archive, rootOptions(app, access))).map((s) => s.session);
  const chosen = pick(sessions, options.vms, options.session);
  const rename = (n: string) => options.rename?.get(n) ?? n;
  // Templates first: a VM comes after every chosen VM it is based on.
  const order: VmEntry[] = [];
  const visit = (vm: VmEntry, seen: Set<string>) => {
    if (order.includes(vm) || seen.has(vm.name)) return;
    seen.add(vm.name);
    const base = vm.template === null ? undefined : chosen.get(vm.template);
    if (base) visit(base, seen);
    order.push(vm);
  };
  for (const vm of chosen.values()) visit(vm, new Set());
  const out: RestoreResult['vms'] = [];
  if (options.verifyOnly) {
    // Everything a restore reads, read and checked (tags, ids, lengths), nothing written.
    for (const vm of order) {
      const volumes = [];
      for (const entry of vm.volumes) {
        const written = await restoreVolume(archive, entry, async () => {}, {
          signal: access.signal,
          checkIds: true,
          ...(options.onProgress ? { onProgress: (d: number, t: number) => options.onProgress!(vm.name, entry.name, d, t) } : {}),
        });
        volumes.push({ name: entry.name, size: entry.size, written });
      }
      out.push({ name: rename(vm.name), from: vm.name, volumes });
    }
    return { vms: out, verifyOnly: true, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  }
  // Every VM that exists is refused or checked before anything is written.
  const existing = new Map(app.listVms().map((v) => [v.name, v]));
  for (const vm of order) {
    const name = rename(vm.name);
    const there = existing.get(name);
    if (!there) continue;
    if (!options.replace) {
      throw new QvolError('VM_EXISTS', `VM ${name} exists already: restore it under another name with --rename ${vm.name}=NEW, replace its data with --replace, or remove it first.`, { path: name });
    }
    if (there.class !== vm.class) throw new UsageError(`VM ${name} is of class ${there.class} here and ${vm.class} in the archive: --replace keeps a VM's class; restore it under another name with --rename ${vm.name}=NEW.`);
    await app.requireHalted(name);
    for (const entry of vm.volumes) {
      const v = app.getVolume(name, entry.name);
      if (!v.saveOnStop) throw new UsageError(`Volume ${entry.name} of VM ${name} does not keep its data (save_on_stop is off), so --replace cannot put the backup's data there.`);
    }
  }
  // Writes each volume's chunks at their offsets into an import target, synced before it is committed.
  const writeVolume = (vmName: string, entry: VolumeEntry, volumes: RestoreResult['vms'][number]['volumes']) => async (target: string) => {
    const fh = await open(target, constants.O_WRONLY);
    try {
      const written = await restoreVolume(archive, entry, async (offset, data) => { await fh.write(data, 0, data.length, offset); }, {
        signal: access.signal,
        checkIds: access.checkIds,
        ...(options.onProgress ? { onProgress: (d: number, t: number) => options.onProgress!(vmName, entry.name, d, t) } : {}),
      });
      await fh.sync();
      volumes.push({ name: entry.name, size: entry.size, written });
    } finally {
      await fh.close();
    }
  };
  for (const vm of order) {
    const name = rename(vm.name);
    const volumes: RestoreResult['vms'][number]['volumes'] = [];
    if (existing.has(name)) {
      // Volume by volume, each committed whole: killed midway, each volume holds either
      // its former data or the backup's, and running the restore again finishes it.
      for (const entry of vm.volumes) await app.replaceVolumeData(name, entry.name, entry.size, writeVolume(name, entry, volumes));
      out.push({ name, from: vm.name, replaced: true, volumes });
      continue;
    }
    const template = vm.template === null ? undefined : rename(vm.template);
    await app.restoreVm(name, vm.class as VmClass, { ...(template ? { template } : {}), ...(options.pool ? { pool: options.pool } : {}) }, (volume) => {
      const entry = vm.volumes.find((e) => e.name === volume);
      return entry && { size: entry.size, write: writeVolume(name, entry, volumes) };
    });
    out.push({ name, from: vm.name, volumes });
  }
  return { vms: out, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/** Applies a keep policy (`backup prune`). */
export async function backupPrune(app: QvolApp, access: ArchiveAccess, policy: KeepPolicy, dryRun: boolean): Promise<PruneResult> {
  if (!policy.last && !policy.daily && !policy.weekly && !policy.monthly) {
    throw new UsageError('Say what to keep: --keep-last N, --keep-daily N, --keep-weekly N or --keep-monthly N (prune never removes everything).');
  }
  return withArchive(access, (archive) => pruneArchive(archive, policy, { ...rootOptions(app, access), dryRun }));
}

/**
 * Checks everything the archive's current root reaches (`backup verify`), every chunk too
 * with `data`; with `repairIndex` the index is first rebuilt from the packs' own headers.
 */
export function backupVerify(app: QvolApp, access: ArchiveAccess, options: { data: boolean; repairIndex: boolean; onRepaired?: (repair: RepairResult) => void }): Promise<VerifyResult & { repair?: RepairResult }> {
  return withArchive(access, async (archive) => {
    let repair: RepairResult | undefined;
    if (options.repairIndex) {
      repair = await repairIndex(archive, rootOptions(app, access));
      options.onRepaired?.(repair);
    }
    return { ...(repair ? { repair } : {}), ...(await verifyArchive(archive, { ...rootOptions(app, access), data: options.data })) };
  });
}

/** Wraps the master key under a new passphrase (`backup passwd`); the data stays as it is. */
export async function backupPasswd(access: ArchiveAccess, newPassphrase: ArchivePassphrase): Promise<void> {
  if (!access.passphrase) throw new UsageError('Changing the passphrase needs the current one: give --passphrase-command or run on a terminal.');
  const store = new DirectoryStore(access.dest);
  const master = await unlockMaster(store, access.passphrase);
  const archive = await openArchive(store, access.passphrase);
  const pass = await newPassphrase({ archive: access.dest, confirm: true });
  if (pass.length === 0) throw new UsageError('The new passphrase is empty.');
  await changePassphrase(archive, master, pass);
}

/** What a volume holds before any of its data is read: its size, chunk size, and which chunks hold data. */
export interface CatPlan {
  size: number;
  chunkSize: number;
  /** Indexes of the chunks that hold data, ascending (the others read as zeros). */
  dataChunks: number[];
}

/**
 * One volume of a session, its data chunks given to `write` (in order with `inOrder`).
 * With `plan`, the volume's pages are walked first and `plan` told which chunks hold data,
 * for an output format that states its layout up front (an Android sparse image).
 */
export function backupCat(app: QvolApp, access: ArchiveAccess, vm: string, volume: string, session: string | undefined, write: (offset: number, data: Buffer, size: number) => Promise<void>, options: { inOrder: boolean; plan?: (plan: CatPlan) => Promise<void> }): Promise<{ size: number; written: number }> {
  return withArchive(access, async (archive) => {
    const sessions = (await listSessions(archive, rootOptions(app, access))).map((s) => s.session);
    const entry = pick(sessions, [vm], session).get(vm)!.volumes.find((v) => v.name === volume);
    if (!entry) throw new UsageError(`The backup of ${vm} has no volume ${volume}: see \`qvol backup ls\`.`);
    if (options.plan) {
      const dataChunks: number[] = [];
      await walkTree(archive, entry.tree, Math.ceil(entry.size / archive.config.chunkSize), async (index) => { dataChunks.push(index); });
      await options.plan({ size: entry.size, chunkSize: archive.config.chunkSize, dataChunks });
    }
    // A stream takes the chunks in order (read ahead in parallel); a file, as they come.
    const written = await restoreVolume(archive, entry, (offset, data) => write(offset, data, entry.size), { signal: access.signal, ordered: options.inOrder, checkIds: access.checkIds });
    return { size: entry.size, written };
  });
}
