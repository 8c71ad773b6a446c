/**
 * A volume of the lvm_thin pool: thin LVs named as Qubes names them (pool.ts), read through
 * one `lvs` report per operation. The Qubes rules (locks, preconditions, dispatch) are the
 * model's; this file maps them onto thin LVs, snapshots and renames, in Qubes' order, so a
 * crash between two lvm commands leaves what Qubes' driver would leave and what its next
 * start or stop repairs: a commit renames the committed LV to a revision first and the
 * running snapshot into its place second; in between, the newest revision is current
 * (Qubes' `_vid_current`) and the snapshot marks the volume dirty.
 */
import { copyMethodName, copyVolume } from '../../io/copy.js';
import { waitForDevice } from '../../io/wait.js';
import { StoragePoolException } from '../../errors/index.js';
import type { VolumeCapabilities } from '../../model/features.js';
import { isodate } from '../../model/isodate.js';
import { revisionsToPrune } from '../../model/revisions.js';
import { Volume, type ImportVolumeOptions, type VolumeInit } from '../../model/volume.js';
import { run } from '../../util/exec.js';
import type { LvReport } from './lv-report.js';
import { lvmArgv, lvmChange } from './lvm-command.js';
import type { ThinPool } from './pool.js';

/** udev takes its time under emulation; on real hardware a link appears in milliseconds. */
const DEVICE_TIMEOUT_MS = 120_000;
const SNAP = '-snap';
const IMPORT = '-import';

const CAPABILITIES: VolumeCapabilities = {
  features: new Set(['revisions', 'online-resize', 'shrink', 'stable-read']),
  nativeFormats: new Map(),
};

/** `/dev/mapper/` name of VG/LV: `-` doubled in each part, then joined by `-` (Qubes' path). */
export function mapperPath(lv: string): string {
  return `/dev/mapper/${lv.split('/').map((p) => p.replaceAll('-', '--')).join('-')}`;
}

export class ThinVolume extends Volume {
  declare readonly pool: ThinPool;

  constructor(pool: ThinPool, init: VolumeInit) {
    super(pool, init);
  }

  override get capabilities(): VolumeCapabilities {
    return CAPABILITIES;
  }

  /** The LV name of the committed state (the vid without its VG). */
  private get lvName(): string {
    return this.vid.slice(this.vid.indexOf('/') + 1);
  }

  /**
   * The device the VM is given (Qubes' block_device): a running snapshot or origin writes
   * its `-snap` (an origin without snapshots, its LV itself); a volatile volume its LV.
   */
  override get path(): string {
    const running = (this.snapOnStart || this.saveOnStop) && !this.snapshotsDisabled;
    return mapperPath(running ? this.vid + SNAP : this.vid);
  }

  /** Qubes' lvm override: the LV's own mapper name with `@crypt`. */
  override encryptedPath(_deviceName: string): string {
    return `${mapperPath(this.vid)}@crypt`;
  }

  private get sourceVolume(): ThinVolume {
    return this.source as ThinVolume;
  }

  /** When this volume's lock was taken (performance.now()), or undefined while it is not held. */
  private lockedSince: number | undefined;

  protected override locked<T>(fn: () => Promise<T>): Promise<T> {
    return super.locked(async () => {
      this.lockedSince = performance.now();
      try {
        return await fn();
      } finally {
        this.lockedSince = undefined;
      }
    });
  }

  /**
   * The VG's LVs: under the lock, one report shared by every step of the operation (and by
   * the other volumes of the VM), kept up to date by the steps themselves.
   */
  private report(): Promise<LvReport> {
    return this.pool.report(this.lockedSince);
  }

  // -- the LVs, from a report ----------------------------------------------------------------

  /** Revision ids (`<ts>-back`) oldest first; `foo-root-1-back` is not `foo`'s (Qubes #4680). */
  private revisionIds(report: LvReport): string[] {
    const prefix = `${this.lvName}-`;
    const ids: string[] = [];
    for (const lv of report.values()) {
      if (lv.vg !== this.pool.volumeGroup || !lv.name.startsWith(prefix) || !lv.name.endsWith('-back')) continue;
      const id = lv.name.slice(prefix.length);
      if (/^\d+-back$/.test(id)) ids.push(id);
    }
    return ids.sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
  }

  /** The committed state's LV: the vid, or after an interrupted commit the newest revision. */
  private current(report: LvReport): string {
    if (report.has(this.vid)) return this.vid;
    const newest = this.revisionIds(report).at(-1);
    return newest === undefined ? this.vid : `${this.vid}-${newest}`;
  }

  override async revisions(): Promise<Map<string, string>> {
    const report = await this.report();
    return new Map(this.revisionIds(report).map((id) => [id, isodate(parseInt(id, 10))]));
  }

  override async usage(): Promise<number> {
    const report = await this.report();
    return report.get(this.current(report))?.usage ?? 0;
  }

  /** `size` rounded up to whole extents, as LVM makes it. */
  private extents(size: number, report: LvReport): number {
    const extent = report.get(this.pool.poolId)?.extentSize ?? 4 * 2 ** 20;
    return Math.ceil(size / extent) * extent;
  }

  // -- LV operations ---------------------------------------------------------------------------

  private async createThin(lv: string, size: number, report: LvReport): Promise<void> {
    this.pool.checkRoom(report, `creating ${lv}`);
    await lvmChange(lvmArgv.createThin(this.pool.volumeGroup, this.pool.thinPool, lv.slice(lv.indexOf('/') + 1), this.extents(size, report)));
    this.pool.changed();
    await this.waitForDevice(lv);
  }

  private async snapshot(from: string, to: string, report: LvReport): Promise<void> {
    this.pool.checkRoom(report, `a snapshot of ${from}`);
    await lvmChange(lvmArgv.snapshot(from, to.slice(to.indexOf('/') + 1)));
    this.pool.changed();
    await this.waitForDevice(to);
  }

  /** Removes `lv` if it is there, its blocks discarded first in 1 GiB slices (Qubes #5077). */
  private async removeLv(lv: string, report: LvReport): Promise<void> {
    if (!report.has(lv)) return;
    await run('blkdiscard', ['-p', '1G', mapperPath(lv)], { timeoutMs: 600_000 }).catch(() => undefined);
    await lvmChange(lvmArgv.remove(lv));
    report.delete(lv);
  }

  private async rename(from: string, to: string, report: LvReport): Promise<void> {
    const name = (lv: string) => lv.slice(lv.indexOf('/') + 1);
    await lvmChange(lvmArgv.rename(this.pool.volumeGroup, name(from), name(to)));
    const record = report.get(from);
    report.delete(from);
    if (record) report.set(to, { ...record, name: name(to) });
  }

  private async activate(lv: string, report: LvReport): Promise<void> {
    if (report.get(lv)?.attr[4] !== 'a') {
      await lvmChange(lvmArgv.activate(lv));
      this.pool.changed();
    }
    await this.waitForDevice(lv);
  }

  private waitForDevice(lv: string): Promise<void> {
    return waitForDevice(mapperPath(lv), { timeoutMs: DEVICE_TIMEOUT_MS });
  }

  /** A revision name for now that no LV has yet (two commits within a second get two). */
  private newRevision(report: LvReport): string {
    let ts = Math.floor(Date.now() / 1000);
    while (report.has(`${this.vid}-${ts}-back`)) ts++;
    return `${this.vid}-${ts}-back`;
  }

  private async pruneRevisions(report: LvReport): Promise<void> {
    for (const id of revisionsToPrune(this.revisionIds(report), this.revisionsToKeep)) await this.removeLv(`${this.vid}-${id}`, report);
  }

  /**
   * Qubes' _commit: `staged` (the running snapshot, an import, a clone) becomes the
   * committed state; the state it replaces becomes a revision, pruned to revisions_to_keep.
   */
  private async commit(staged: string, report: LvReport): Promise<void> {
    if (!report.has(staged)) return;
    if (report.has(this.vid)) await this.rename(this.vid, this.newRevision(report), report);
    await this.rename(staged, this.vid, report);
    await this.pruneRevisions(report);
    await this.refreshSize(report);
  }

  private async refreshSize(report: LvReport): Promise<void> {
    const size = report.get(this.vid)?.size;
    if (size !== undefined) this._size = size;
  }

  // -- the contract's hooks (model/volume.ts) ------------------------------------------------

  /** A pending import is what a crash left (the model cleans it where Qubes refused to go on). */
  protected override async cleanUp(options: { imports: boolean }): Promise<void> {
    if (options.imports) await this.removeLv(this.vid + IMPORT, await this.report());
  }

  protected override async createStorage(): Promise<void> {
    const report = await this.report();
    await this.removeLv(this.vid, report);
    if (this.type !== 'origin') return;
    await this.createThin(this.vid, this._size, report);
    this._size = this.extents(this._size, report);
  }

  protected override async removeStorage(): Promise<void> {
    const report = await this.report();
    for (const lv of [this.vid + SNAP, this.vid + IMPORT, ...this.revisionIds(report).map((id) => `${this.vid}-${id}`), this.vid]) {
      await this.removeLv(lv, report);
    }
  }

  /** A fresh thin snapshot of the source's committed state, every start. */
  protected override async startSnapshot(): Promise<void> {
    const report = await this.report();
    await this.removeLv(this.vid + SNAP, report);
    await this.snapshot(this.sourceVolume.current(report), this.vid + SNAP, report);
  }

  protected override async startVolatile(): Promise<void> {
    const report = await this.report();
    await this.removeLv(this.current(report), report);
    await this.createThin(this.vid, this._size, report);
  }

  protected override async startOrigin(): Promise<void> {
    const report = await this.report();
    const current = this.current(report);
    if (!report.has(current)) throw new StoragePoolException(`Missing LV ${this.vid} for volume ${this.vid}`, { path: this.vid });
    if (this.snapshotsDisabled) {
      for (const id of this.revisionIds(report)) await this.removeLv(`${this.vid}-${id}`, report);
      await this.activate(current, report);
      return;
    }
    await this.removeLv(this.vid + SNAP, report);
    await this.snapshot(current, this.vid + SNAP, report);
  }

  /** Dirty: a crash while it ran. The leftover snapshot is used as it is. */
  protected override async resumeDirty(): Promise<void> {
    await this.activate(this.vid + SNAP, await this.report());
  }

  protected override async commitRunning(): Promise<void> {
    await this.commit(this.vid + SNAP, await this.report());
  }

  protected override async discard(): Promise<void> {
    const report = await this.report();
    await this.removeLv(this.snapOnStart ? this.vid + SNAP : this.vid, report);
  }

  protected override async currentSize(): Promise<number> {
    const report = await this.report();
    return report.get(this.current(report))?.size ?? this._size;
  }

  /** The revision becomes the committed state; the state it replaces becomes a revision. */
  protected override async revertTo(revision: string): Promise<void> {
    const report = await this.report();
    const from = `${this.vid}-${revision}`;
    if (!report.has(from)) throw new StoragePoolException(`Volume ${this.vid} has no /dev/${from}`, { path: from });
    await this.commit(from, report);
  }

  /** The LV the VM writes if running, else the pending import, else the committed state. */
  protected override async resizeStorage(size: number): Promise<number> {
    const report = await this.report();
    const target = [this.vid + SNAP, this.vid + IMPORT, this.saveOnStop ? this.current(report) : undefined]
      .find((lv) => lv !== undefined && report.has(lv));
    const bytes = this.extents(size, report);
    if (target) {
      await lvmChange(lvmArgv.resize(target, bytes));
      this.pool.changed();
    }
    return bytes;
  }

  /** The committed LV: a running VM writes its `-snap`, so this reads the state before start. */
  protected override async exportPath(): Promise<string> {
    const report = await this.report();
    const current = this.current(report);
    await this.activate(current, report);
    return mapperPath(current);
  }

  protected override async importTarget(size: number): Promise<string> {
    const report = await this.report();
    await this.removeLv(this.vid + IMPORT, report);
    await this.createThin(this.vid + IMPORT, size, report);
    return mapperPath(this.vid + IMPORT);
  }

  /** importData() gives a new thin LV, which reads as zeros. */
  override get importTargetReadsZero(): boolean { return true; }

  protected override async endImport(success: boolean): Promise<void> {
    const report = await this.report();
    if (!report.has(this.vid + IMPORT)) throw new StoragePoolException(`No import operation in progress on ${this.vid}`, { path: this.vid });
    if (success) await this.commit(this.vid + IMPORT, report);
    else await this.removeLv(this.vid + IMPORT, report);
  }

  /**
   * Another volume's committed data in: a thin snapshot (O(1)) when it lives in the same
   * thin pool, else the copy engine from its export into a new thin LV, which reads as
   * zeros, so only data is written and holes stay holes. Staged as `-import` either way.
   */
  protected override async importFrom(source: Volume, options: ImportVolumeOptions): Promise<string> {
    const report = await this.report();
    const staged = this.vid + IMPORT;
    await this.removeLv(staged, report);
    let method: string;
    if (source instanceof ThinVolume && source.pool.poolId === this.pool.poolId) {
      await this.snapshot(source.current(report), staged, report);
      method = 'thin snapshot';
    } else {
      this.pool.checkRoom(report, `copying ${source.vid}`, await source.usage());
      const from = await source.export();
      try {
        await this.createThin(staged, source.size, report);
        method = copyMethodName((await copyVolume(from, mapperPath(staged), { targetIsZero: true, signal: options.signal })).method);
      } catch (err) {
        throw await this.abandonImport(err);
      } finally {
        await source.exportEnd(from);
      }
    }
    await this.commit(staged, await this.report());
    return method;
  }

  /**
   * A copy into `-import` failed: the LV goes (the committed state was never touched), and
   * if the thin pool ran out of room meanwhile, that is the error, not the EIO or ENOSPC
   * the copy saw.
   */
  private async abandonImport(err: unknown): Promise<unknown> {
    const report = await this.pool.report().catch(() => undefined);
    if (!report) return err;
    await this.removeLv(this.vid + IMPORT, report).catch(() => undefined);
    try {
      this.pool.checkRoom(report, `the copy into ${this.vid}`);
    } catch (full) {
      if (full instanceof StoragePoolException) return new StoragePoolException(full.message, { path: full.path, cause: err });
    }
    return err;
  }

  protected override async missingCommittedState(): Promise<{ what: string; path: string } | undefined> {
    const report = await this.report();
    return report.has(this.current(report)) ? undefined : { what: `LV ${this.vid}`, path: this.vid };
  }

  protected override async hasUncommittedState(): Promise<boolean> {
    return (await this.report()).has(this.vid + SNAP);
  }

  /** Outdated once the source's committed LV is another than the one this was taken from. */
  protected override async sourceChanged(): Promise<boolean> {
    const report = await this.report();
    const snap = report.get(this.vid + SNAP);
    if (!snap) return false;
    const current = this.sourceVolume.current(report);
    return snap.origin !== current.slice(current.indexOf('/') + 1);
  }
}
