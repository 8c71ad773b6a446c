/**
 * A file-reflink volume: image files in the pool directory, exactly as Qubes' reflink
 * driver lays them out and moves them (qubes-core-admin, qubes/storage/reflink.py). With P = <dir_path>/<vid>:
 *   P.img            the committed state (a snapshot: a hard link of the source's)
 *   P-dirty.img      the image the running VM uses (`path`, always)
 *   P-precache.img   a clone of P.img made ahead, so start() is one rename
 *   P-import.img     the staging file of an import
 *   P.img.N@TSZ      revision N, TS = isodate of that state's mtime
 *   <file>~<random>  a temporary file of an atomic replace
 * Copies go through the copy engine: a clone where the filesystem shares extents, a
 * sparse copy elsewhere. The Qubes rules (locks, preconditions, dispatch) are the model's;
 * this file maps them onto image files.
 */
import { lstatSync } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { lstatOrUndefined } from '../../io/stat.js';
import { unsafePath } from '../../io/open-beneath.js';
import { copyMethodName } from '../../io/copy-method.js';
import { updateLoopDeviceSizes } from '../../io/loop.js';
import type { MappingBacking } from '../../io/dm-crypt.js';
import type { VolumeCapabilities } from '../../model/features.js';
import { isodate } from '../../model/isodate.js';
import { keepsRevisions, revisionsToPrune } from '../../model/revisions.js';
import { Volume, type ImportVolumeOptions, type VolumeInit } from '../../model/volume.js';
import { hasCode } from '../../native/errors.js';
import { hardlinkFile, removeEmptyDir, removeFile, renameFile } from './files.js';
import type { ReflinkPool } from './pool.js';

const REVISION = /^\.(\d+)@(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z$/;

/** Whether a name exists (a link counts, whatever it points at: lstat, never stat). */
async function exists(path: string): Promise<boolean> {
  return (await lstatOrUndefined(path)) !== undefined;
}

/**
 * Refuses a name in the pool that is there but not the kind of node qvol makes there: a
 * symbolic link, a device, a FIFO. qvol runs as root among paths it does not own, so it
 * never reads, writes, truncates, renames or hands to a VM what such a node points at.
 */
async function requireOwnNode(path: string, kind: 'file' | 'directory'): Promise<void> {
  const st = await lstatOrUndefined(path);
  if (st === undefined || (kind === 'file' ? st.isFile() : st.isDirectory())) return;
  throw unsafePath(path, `it is ${st.isSymbolicLink() ? 'a symbolic link' : `not a ${kind === 'file' ? 'regular file' : 'directory'}`}`);
}

export class ReflinkVolume extends Volume {
  declare readonly pool: ReflinkPool;
  /** P: the pool directory joined with the vid. */
  readonly base: string;

  constructor(pool: ReflinkPool, init: VolumeInit) {
    super(pool, init);
    this.base = join(pool.dirPath, this.vid);
  }

  get cleanPath(): string { return `${this.base}.img`; }
  get dirtyPath(): string { return `${this.base}-dirty.img`; }
  get precachePath(): string { return `${this.base}-precache.img`; }
  get importPath(): string { return `${this.base}-import.img`; }
  private get sourceVolume(): ReflinkVolume { return this.source as ReflinkVolume; }

  override get path(): string {
    return this.dirtyPath;
  }

  /** The dirty image's size while it exists, else the clean's, else the configured size. */
  override get size(): number {
    for (const p of [this.dirtyPath, this.cleanPath]) {
      try {
        const st = lstatSync(p);
        if (st.isFile()) return st.size;
      } catch {
        // not there: look further
      }
    }
    return this._size;
  }

  override async usage(): Promise<number> {
    for (const p of [this.dirtyPath, this.cleanPath]) {
      const st = await lstat(p).catch(() => undefined);
      if (st?.isFile()) return st.blocks * 512;
    }
    return 0;
  }

  // -- revisions ---------------------------------------------------------------------------

  /** {N: timestamp} from the revision files, ordered by N as a number. */
  override async revisions(): Promise<Map<string, string>> {
    const prefix = basename(this.cleanPath);
    const names = await readdir(dirname(this.base)).catch((err: unknown) => {
      if (hasCode(err, 'ENOENT')) return [] as string[];
      throw err;
    });
    const found: Array<[number, string, string]> = [];
    for (const name of names) {
      if (!name.startsWith(prefix)) continue;
      const m = REVISION.exec(name.slice(prefix.length));
      if (m) found.push([Number(m[1]), m[1]!, m[2]!]);
    }
    found.sort((a, b) => a[0] - b[0]);
    return new Map(found.map(([, id, ts]) => [id, ts]));
  }

  private revisionPath(id: string, timestamp: string): string {
    return `${this.cleanPath}.${id}@${timestamp}Z`;
  }

  /**
   * Saves the clean image as the next revision (nothing when revisions_to_keep is 0).
   * Deviation: Qubes copies (clones) it; we give the same inode a second name. The clean
   * image is never written in place (a VM writes its dirty image; resize makes a new
   * inode), so the name is an exact revision, made in O(1) whatever the extents, and
   * without a full copy on filesystems that cannot clone.
   */
  private async addRevision(): Promise<void> {
    if (!keepsRevisions(this.revisionsToKeep)) return;
    const ids = [...(await this.revisions()).keys()];
    const next = String(ids.length === 0 ? 1 : Number(ids.at(-1)) + 1);
    const mtime = (await stat(this.cleanPath)).mtimeMs / 1000;
    await hardlinkFile(this.cleanPath, this.revisionPath(next, isodate(Math.floor(mtime))));
  }

  /** Removes all but the newest `keep` revisions (keep 0 removes all). */
  private async pruneRevisions(keep = this.revisionsToKeep): Promise<void> {
    const revisions = await this.revisions();
    for (const id of revisionsToPrune([...revisions.keys()], keep)) await removeFile(this.revisionPath(id, revisions.get(id)!));
  }

  // -- precache -----------------------------------------------------------------------------

  private async updatePrecache(body: () => Promise<void>): Promise<void> {
    await removeFile(this.precachePath);
    await body();
    if (!this.snapshotsDisabled) await this.pool.files.copyFile(this.cleanPath, this.precachePath, { copyMtime: true });
  }

  /** A precache whose mtime or size differs from the clean's is stale: remove it. */
  private async removeStalePrecache(): Promise<void> {
    const clean = await stat(this.cleanPath, { bigint: true });
    const pre = await stat(this.precachePath, { bigint: true }).catch(() => undefined);
    if (pre && (pre.mtimeNs !== clean.mtimeNs || pre.size !== clean.size)) await removeFile(this.precachePath);
  }

  // -- cleanup -----------------------------------------------------------------------------

  /**
   * Removes this volume's temporary files and a pending import. Deviation from Qubes: its
   * glob `P*.img*~*` also matched a sibling volume's files (`private2` for `private`); this
   * matches only temporaries of this volume's own image names.
   */
  private async removeIncompleteImages(options: { keepImport?: boolean } = {}): Promise<void> {
    const dir = dirname(this.base);
    const own = new RegExp(`^${escapeRegExp(basename(this.base))}(?:-dirty|-precache|-import)?\\.img(?:\\.\\d+@[^~/]*)?~`);
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) if (own.test(name)) await removeFile(join(dir, name));
    if (!options.keepImport) await removeFile(this.importPath);
  }

  private async removeAllImages(): Promise<void> {
    await this.removeIncompleteImages();
    await this.pruneRevisions(0);
    for (const p of [this.cleanPath, this.precachePath, this.dirtyPath]) await removeFile(p);
  }

  /**
   * Every name this volume works with, and the directories above them up to the pool's, is
   * what qvol makes there or absent (requireOwnNode). Checked before every operation that
   * reads or writes an image; removing a planted link is safe and needs no check.
   */
  private async requireOwnFiles(): Promise<void> {
    const vmDir = dirname(this.base);
    for (const dir of [dirname(vmDir), vmDir]) await requireOwnNode(dir, 'directory');
    const revisions = await this.revisions();
    const names = [this.cleanPath, this.dirtyPath, this.precachePath, this.importPath,
      ...[...revisions].map(([id, ts]) => this.revisionPath(id, ts))];
    for (const name of names) await requireOwnNode(name, 'file');
  }

  // -- the contract's hooks (model/volume.ts) ------------------------------------------

  override get capabilities(): VolumeCapabilities {
    return CAPABILITIES;
  }

  protected override async cleanUp(options: { imports: boolean }): Promise<void> {
    await this.removeIncompleteImages({ keepImport: !options.imports });
  }

  protected override async createStorage(): Promise<void> {
    await this.removeAllImages();
    if (this.type === 'origin') await this.updatePrecache(() => this.pool.files.createSparseFile(this.cleanPath, this._size));
  }

  protected override async removeStorage(): Promise<void> {
    await this.removeAllImages();
    await removeEmptyDir(dirname(this.base));
  }

  protected override async startSnapshot(): Promise<void> {
    await this.requireOwnFiles();
    await requireOwnNode(this.sourceVolume.cleanPath, 'file');
    await removeFile(this.cleanPath);
    await hardlinkFile(this.sourceVolume.cleanPath, this.cleanPath);
    await this.pool.files.copyFile(this.cleanPath, this.dirtyPath);
  }

  protected override async openForMapping(): Promise<MappingBacking & { close(): Promise<void> }> {
    const fh = await this.pool.files.openImage(this.path);
    return { fd: fh.fd, path: this.path, close: () => fh.close() };
  }

  protected override async startVolatile(): Promise<void> {
    await this.requireOwnFiles();
    await this.pool.files.createSparseFile(this.dirtyPath, this._size).catch(async (err: unknown) => {
      // A pool on a tmpfs is empty after a reboot. Volatile data is discarded at every
      // start anyway, so the volume starts there as in a new pool.
      if (!hasCode(err, 'ENOENT')) throw err;
      await this.pool.recreateDirs(dirname(this.base));
      await this.pool.files.createSparseFile(this.dirtyPath, this._size);
    });
  }

  protected override async startOrigin(): Promise<void> {
    await this.requireOwnFiles();
    if (this.snapshotsDisabled) {
      // Used directly: no revisions, no precache that would go stale.
      await this.pruneRevisions(0);
      await removeFile(this.precachePath);
      await renameFile(this.cleanPath, this.dirtyPath);
      return;
    }
    await this.removeStalePrecache();
    await renameFile(this.precachePath, this.dirtyPath).catch(async (err: unknown) => {
      if (!hasCode(err, 'ENOENT')) throw err;
      await this.pool.files.copyFile(this.cleanPath, this.dirtyPath);
    });
  }

  /** The uncommitted image is used as it is, once it is known to be ours. */
  protected override async resumeDirty(): Promise<void> {
    await this.requireOwnFiles();
  }

  protected override async commitRunning(): Promise<void> {
    await this.requireOwnFiles();
    if (this.snapshotsDisabled) await renameFile(this.dirtyPath, this.cleanPath);
    else await this.commit(this.dirtyPath);
  }

  protected override async discard(): Promise<void> {
    await removeFile(this.dirtyPath);
    await removeFile(this.cleanPath);
  }

  protected override async currentSize(): Promise<number> {
    return this.size;
  }

  /** The old committed image becomes a revision, the new one is renamed into place. */
  private async commit(from: string): Promise<void> {
    await this.addRevision();
    await this.pruneRevisions();
    await this.pool.files.syncFile(from);
    await this.updatePrecache(() => renameFile(from, this.cleanPath));
  }

  protected override async revertTo(revision: string): Promise<void> {
    await this.requireOwnFiles();
    const revisions = await this.revisions();
    const from = this.revisionPath(revision, revisions.get(revision)!);
    await this.addRevision();
    await this.updatePrecache(() => renameFile(from, this.cleanPath));
  }

  protected override async resizeStorage(size: number): Promise<number> {
    await this.requireOwnFiles();
    try {
      await this.pool.files.resizeFile(this.dirtyPath, size);
      await updateLoopDeviceSizes(this.dirtyPath);
    } catch (err) {
      if (!hasCode(err, 'ENOENT')) throw err;
      // Not running: a new inode of the new size, so the clean image is never changed in
      // place under a reader (Qubes #7376).
      if (this.type === 'origin') {
        await this.updatePrecache(async () => { await this.pool.files.copyFile(this.cleanPath, this.cleanPath, { size }); });
      }
    }
    return size;
  }

  protected override async exportPath(): Promise<string> {
    await this.requireOwnFiles();
    return this.cleanPath;
  }

  protected override async importTarget(size: number): Promise<string> {
    await this.requireOwnFiles();
    await this.pool.files.createSparseFile(this.importPath, size);
    return this.importPath;
  }

  protected override async endImport(success: boolean): Promise<void> {
    if (!success) {
      await removeFile(this.importPath);
      return;
    }
    await this.requireOwnFiles();
    const size = (await stat(this.importPath)).size;
    await this.commit(this.importPath);
    this._size = size;
  }

  /** The copy engine from the source's export: a reflink on the same filesystem. */
  protected override async importFrom(source: Volume, options: ImportVolumeOptions): Promise<string> {
    await this.requireOwnFiles();
    let success = false;
    try {
      const from = await source.export();
      let method: string;
      try {
        method = copyMethodName(await this.pool.files.copyFile(from, this.importPath, { signal: options.signal }));
      } finally {
        await source.exportEnd(from);
      }
      success = true;
      return method;
    } finally {
      await this.endImport(success);
    }
  }

  protected override async missingCommittedState(): Promise<{ what: string; path: string } | undefined> {
    return (await exists(this.cleanPath)) ? undefined : { what: `image file '${this.cleanPath}'`, path: this.cleanPath };
  }

  protected override async hasUncommittedState(): Promise<boolean> {
    return exists(this.dirtyPath);
  }

  /** A snapshot is outdated once its source's clean image is another inode than its own. */
  protected override async sourceChanged(): Promise<boolean> {
    const [a, b] = await Promise.all([stat(this.sourceVolume.cleanPath), stat(this.cleanPath)]).catch(() => [undefined, undefined]);
    return a !== undefined && b !== undefined && (a.ino !== b.ino || a.dev !== b.dev);
  }
}

const CAPABILITIES: VolumeCapabilities = {
  features: new Set(['revisions', 'online-resize', 'shrink', 'stable-read']),
  nativeFormats: new Map(),
};

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
