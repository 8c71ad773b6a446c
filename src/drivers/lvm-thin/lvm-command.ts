/**
 * The one way the lvm_thin driver talks to LVM: argv built here (names checked, `--` before
 * every positional), run as `lvm <command>` through util/exec with `LC_ALL=C`, and a failure
 * folded into a StoragePoolException carrying LVM's own words (Qubes' _get_lvm_cmdline and
 * qubes_lvm). Every command that changes the VG is a durable step for crash injection: LVM
 * commits each command's metadata as a whole, so a crash lands between commands.
 */
import { StoragePoolException, UsageError } from '../../errors/index.js';
import { durableStep } from '../../util/crash.js';
import { ExternalCommandError, run } from '../../util/exec.js';

/** Thin pool and snapshot metadata work is slow on emulated machines. */
const TIMEOUT_MS = 600_000;

/** A name reaches argv: letters, digits and LVM's own `+_.-`, never a leading `-` (LVM's rule). */
export function checkLvmName(name: string, what = 'LVM name'): string {
  if (!/^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/.test(name) || name === '.' || name === '..' || name.length > 127) {
    throw new UsageError(`'${name}' is not a valid ${what}: use letters, digits, '+', '_', '.' and '-', not first.`, { path: name });
  }
  return name;
}

/** `VG/LV`, both parts checked. */
export function checkLvPath(lv: string): string {
  const parts = lv.split('/');
  if (parts.length !== 2) throw new UsageError(`'${lv}' is not VG/LV.`, { path: lv });
  checkLvmName(parts[0]!, 'volume group name');
  checkLvmName(parts[1]!, 'logical volume name');
  return lv;
}

/** LVM's refusal, with its message; Qubes' StoragePoolException(stderr). */
export class LvmError extends StoragePoolException {
  readonly stderr: string;

  constructor(cause: ExternalCommandError) {
    // Qubes drops this warning: a thin pool may be overcommitted on purpose.
    const stderr = cause.stderr.split('\n').filter((l) => l.trim() && !l.includes('exceeds the size of thin pool')).join('\n');
    super(`${cause.command.split(' ').slice(0, 2).join(' ')}: ${stderr.trim() || cause.message}`, { cause });
    this.stderr = stderr;
  }
}

/** A failed lvm command that says `lv` (or anything) does not exist. */
export function isMissing(err: unknown): boolean {
  return err instanceof LvmError && /not found|Failed to find logical volume|does not exist/i.test(err.stderr);
}

async function lvm(args: string[]): Promise<string> {
  try {
    return await run('lvm', args, { timeoutMs: TIMEOUT_MS, env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
  } catch (err) {
    if (err instanceof ExternalCommandError) throw new LvmError(err);
    throw err;
  }
}

/** A report or other read-only command. */
export function lvmRead(args: string[]): Promise<string> {
  return lvm(args);
}

/** A command that changes the VG. */
export async function lvmChange(args: string[]): Promise<void> {
  await lvm(args);
  durableStep();
}

const bytes = (n: number) => `${n}B`;

export const lvmArgv = {
  /** One JSON report of every LV in `vg` with what the driver needs, sizes in bytes. */
  report: (vg: string) => ['lvs', '--quiet', '--quiet', '--noheadings', '--units', 'b', '--nosuffix', '--reportformat', 'json',
    '-o', 'vg_name,lv_name,pool_lv,lv_size,data_percent,lv_attr,origin,lv_metadata_size,metadata_percent,vg_extent_size,lv_health_status',
    '--', checkLvmName(vg)],
  createThin: (vg: string, thinPool: string, name: string, size: number) =>
    ['lvcreate', '--thin', '--setactivationskip=n', '--activate=y', `--name=${checkLvmName(name)}`, `--virtualsize=${bytes(size)}`,
      '--', `${checkLvmName(vg)}/${checkLvmName(thinPool)}`],
  /**
   * A thin snapshot of the thin LV `source` (VG/LV) named `name`, active. No `--type=thin`
   * as Qubes passes: LVM 2.03 refuses it beside `--snapshot`, and a snapshot of a thin LV
   * without a size is thin anyway.
   */
  snapshot: (source: string, name: string) =>
    ['lvcreate', '--setactivationskip=n', '--activate=y', '--snapshot', `--name=${checkLvmName(name)}`, '--', checkLvPath(source)],
  remove: (lv: string) => ['lvremove', '--force', '--', checkLvPath(lv)],
  rename: (vg: string, from: string, to: string) => ['lvrename', '--', checkLvmName(vg), checkLvmName(from), checkLvmName(to)],
  resize: (lv: string, size: number) => ['lvresize', '--force', `--size=${bytes(size)}`, '--', checkLvPath(lv)],
  activate: (lv: string) => ['lvchange', '--activate=y', '--', checkLvPath(lv)],
  /** `force`: wipe what the device held without asking (there is no one to ask). */
  pvcreate: (devices: string[], force: boolean) => ['pvcreate', ...(force ? ['--yes', '--force'] : []), '--', ...devices],
  vgcreate: (vg: string, devices: string[]) => ['vgcreate', '--', checkLvmName(vg), ...devices],
  /** A thin pool over most of the VG (metadata and its spare take the rest). */
  createThinPool: (vg: string, thinPool: string) =>
    ['lvcreate', '--type=thin-pool', '--extents=90%FREE', '--zero=n', `--name=${checkLvmName(thinPool)}`, '--', checkLvmName(vg)],
  vgremove: (vg: string) => ['vgremove', '--force', '--', checkLvmName(vg)],
  pvremove: (devices: string[]) => ['pvremove', '--', ...devices],
};
