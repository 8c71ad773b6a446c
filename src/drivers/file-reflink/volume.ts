/**
 * A file-reflink volume: image files in the pool directory, exactly as Qubes' reflink
 * driver lays them out and moves them (spec §2.2, §2.6). With P = <dir_path>/<vid>:
 *   P.img            the committed state (a snapshot: a hard link of the source's)
 *   P-dirty.img      the image the running VM uses (`path`, always)
 *   P-precache.img   a clone of P.img made ahead, so start() is one rename
 *   P-import.img     the staging file of an import
 *   P.img.N@TSZ      revision N, TS = isodate of that state's mtime
 *   <file>~<random>  a temporary file of an atomic replace
 * Copies go through the copy engine: a clone where the filesystem shares extents, a
 * sparse copy elsewhere.
 */
import { statSync } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { NotImplementedError, RevisionNotFoundError, StoragePoolException } from '../../model/errors.js';
import { isodate } from '../../model/isodate.js';
import { importMethodName, Volume, type VolumeInit } from '../../model/volume.js';
import { hasCode } from '../../native/errors.js';
import { updateLoopDeviceSizes } from '../../io/loop.js';
import { copyFile, createSparseFile, hardlinkFile, removeEmptyDir, removeFile, renameFile, resizeFile } from './files.js';
import type { ReflinkPool } from './pool.js';

const REVISION = /^\.(\d+)@(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z$/;

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, (err: unknown) => {
    if (hasCode(err, 'ENOENT')) return false;
    throw err;
  });
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
        return statSync(p).size;
      } catch {
        // not there: look further
      }
    }
    return this._size;
  }

  override async usage(): Promise<number> {
    for (const p of [this.dirtyPath, this.cleanPath]) {
      const st = await stat(p).catch(() => undefined);
      if (st) return st.blocks * 512;
    }
    return 0;
  }

  // -- revisions (spec §2.4) ---------------------------------------------------------------

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

  private async pathOfRevision(revision?: string): Promise<string> {
    const revisions = await this.revisions();
    const id = revision ?? [...revisions.keys()].at(-1);
    const ts = id === undefined ? undefined : revisions.get(id);
    if (id === undefined || ts === undefined) throw new RevisionNotFoundError(this.vid, revision ?? 'latest');
    return this.revisionPath(id, ts);
  }

  /**
   * Saves the clean image as the next revision (nothing when revisions_to_keep is 0).
   * Deviation: Qubes copies (clones) it; we give the same inode a second name. The clean
   * image is never written in place (a VM writes its dirty image; resize makes a new
   * inode), so the name is an exact revision, made in O(1) whatever the extents, and
   * without a full copy on filesystems that cannot clone.
   */
  private async addRevision(): Promise<void> {
    if (this.revisionsToKeep === 0) return;
    const ids = [...(await this.revisions()).keys()];
    const next = String(ids.length === 0 ? 1 : Number(ids.at(-1)) + 1);
    const mtime = (await stat(this.cleanPath)).mtimeMs / 1000;
    await hardlinkFile(this.cleanPath, this.revisionPath(next, isodate(Math.floor(mtime))));
  }

  /** Removes all but the newest `keep` revisions (keep 0 removes all). */
  private async pruneRevisions(keep = this.revisionsToKeep): Promise<void> {
    const revisions = [...(await this.revisions()).entries()];
    for (const [id, ts] of revisions.slice(0, -keep || undefined)) await removeFile(this.revisionPath(id, ts));
  }

  // -- precache (spec §2.5) ----------------------------------------------------------------

  private async updatePrecache(body: () => Promise<void>): Promise<void> {
    await removeFile(this.precachePath);
    await body();
    if (!this.snapshotsDisabled) await copyFile(this.cleanPath, this.precachePath, { copyMtime: true });
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

  // -- the contract ------------------------------------------------------------------------

  override create(): Promise<void> {
    return this.lock.run(async () => {
      await this.removeAllImages();
      if (this.saveOnStop && !this.snapOnStart) {
        await this.updatePrecache(() => createSparseFile(this.cleanPath, this._size));
      }
    });
  }

  override start(): Promise<void> {
    return this.lock.run(async () => {
      await this.removeIncompleteImages();
      const dirty = await this.isDirty();
      if (this.snapshotsDisabled) {
        await this.pruneRevisions(0);
        await removeFile(this.precachePath);
        if (!dirty) await renameFile(this.cleanPath, this.dirtyPath);
      } else if (!dirty) {
        if (this.snapOnStart) {
          await removeFile(this.cleanPath);
          await hardlinkFile(this.sourceVolume.cleanPath, this.cleanPath);
          await copyFile(this.cleanPath, this.dirtyPath);
        } else if (this.saveOnStop) {
          await this.removeStalePrecache();
          await renameFile(this.precachePath, this.dirtyPath).catch(async (err: unknown) => {
            if (!hasCode(err, 'ENOENT')) throw err;
            await copyFile(this.cleanPath, this.dirtyPath);
          });
        } else {
          await createSparseFile(this.dirtyPath, this._size);
        }
      }
      // Dirty (a crash, or a second start): the uncommitted image is used as it is.
    });
  }

  override stop(): Promise<void> {
    return this.lock.run(async () => {
      // Deviation: Qubes leaves a crashed operation's temporaries to the next start; no
      // operation is in flight here (the registry lock), so they are debris and go now.
      await this.removeIncompleteImages({ keepImport: true });
      if (await this.isDirty()) {
        if (this.snapshotsDisabled) await renameFile(this.dirtyPath, this.cleanPath);
        else await this.commit(this.dirtyPath);
      } else if (!this.saveOnStop) {
        if (!this.snapOnStart) this._size = this.size; // keep a resize made while running
        await removeFile(this.dirtyPath);
        await removeFile(this.cleanPath);
      }
    });
  }

  private async commit(from: string): Promise<void> {
    await this.addRevision();
    await this.pruneRevisions();
    const fh = await open(from, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.updatePrecache(() => renameFile(from, this.cleanPath));
  }

  override revert(revision?: string): Promise<void> {
    return this.lock.run(async () => {
      if (await this.isDirty()) throw new StoragePoolException(`Cannot revert: ${this.vid} is not cleanly stopped`);
      const from = await this.pathOfRevision(revision);
      await this.addRevision();
      await this.updatePrecache(() => renameFile(from, this.cleanPath));
    });
  }

  override resize(size: number): Promise<void> {
    return this.lock.run(async () => {
      if (!this.rw) throw new StoragePoolException(`Cannot resize: ${this.vid} is read-only`);
      try {
        await resizeFile(this.dirtyPath, size);
        await updateLoopDeviceSizes(this.dirtyPath);
      } catch (err) {
        if (!hasCode(err, 'ENOENT')) throw err;
        // Not running: a new inode of the new size, so the clean image is never changed in
        // place under a reader (Qubes #7376).
        if (this.saveOnStop && !this.snapOnStart) {
          await this.updatePrecache(async () => { await copyFile(this.cleanPath, this.cleanPath, { size }); });
        }
      }
      this._size = size;
    });
  }

  override async export(): Promise<string> {
    if (!this.saveOnStop) throw new NotImplementedError(`Cannot export: ${this.vid} is not save_on_stop`);
    return this.cleanPath;
  }

  override importData(size: number): Promise<string> {
    return this.lock.run(async () => {
      if (!this.saveOnStop) throw new NotImplementedError(`Cannot import_data: ${this.vid} is not save_on_stop`);
      await createSparseFile(this.importPath, size);
      return this.importPath;
    });
  }

  override importDataEnd(success: boolean): Promise<void> {
    return this.lock.run(() => this.endImport(success));
  }

  private async endImport(success: boolean): Promise<void> {
    if (!success) {
      await removeFile(this.importPath);
      return;
    }
    const size = (await stat(this.importPath)).size;
    await this.commit(this.importPath);
    this._size = size;
  }

  override importVolume(source: Volume): Promise<Volume> {
    return this.lock.run(async () => {
      if (!this.saveOnStop) return this;
      let success = false;
      try {
        const from = await source.export();
        try {
          this.importMethod = importMethodName(await copyFile(from, this.importPath));
        } finally {
          await source.exportEnd(from);
        }
        success = true;
      } finally {
        await this.endImport(success);
      }
      return this;
    });
  }

  override remove(): Promise<void> {
    return this.lock.run(async () => {
      this.pool.forget(this.vid);
      await this.removeAllImages();
      await removeEmptyDir(dirname(this.base));
    });
  }

  override async verify(): Promise<boolean> {
    const image = this.snapOnStart ? this.sourceVolume.cleanPath : this.saveOnStop ? this.cleanPath : undefined;
    if (image !== undefined && !(await exists(image))) {
      throw new StoragePoolException(`Missing image file '${image}' for volume ${this.vid}`);
    }
    return true;
  }

  override async isDirty(): Promise<boolean> {
    return this.saveOnStop && exists(this.dirtyPath);
  }

  /** A snapshot is outdated once its source's clean image is another inode than its own. */
  override async isOutdated(): Promise<boolean> {
    if (!this.snapOnStart) return false;
    const [a, b] = await Promise.all([stat(this.sourceVolume.cleanPath), stat(this.cleanPath)]).catch(() => [undefined, undefined]);
    return a !== undefined && b !== undefined && (a.ino !== b.ino || a.dev !== b.dev);
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
