/**
 * The one way the ZFS drivers talk to OpenZFS: argv built here, run through util/exec, and
 * stderr folded into the few outcomes a driver acts on (busy, dependent clones, missing,
 * wrong key). Every command that changes the pool is a durable step for crash injection:
 * ZFS commits each command as one transaction group, so a crash lands between commands.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { StoragePoolException, UsageError } from '../../errors/index.js';
import { durableStep } from '../../util/crash.js';
import { ExternalCommandError, run, runPipeline, runStreaming } from '../../util/exec.js';

/** Slow emulated machines and large destroys need more than the runner's default minute. */
const TIMEOUT_MS = 600_000;
/** udev's blkid probe holds a new or renamed zvol for a moment: retry, as Qubes does. */
const BUSY_RETRIES = 40;
const BUSY_DELAY_MS = 250;

export type ZfsFailure = 'busy' | 'dependent-clones' | 'missing' | 'wrong-key' | 'exists' | 'has-children' | 'other';

/** Which of the outcomes a driver handles a failed zfs command stands for. */
export function classifyZfsError(stderr: string): ZfsFailure {
  if (/dataset is busy|pool or dataset is busy|target is busy/.test(stderr)) return 'busy';
  if (/has dependent clones|clones of previous snapshots exist/.test(stderr)) return 'dependent-clones';
  if (/does not exist|could not find any snapshots to destroy|no such pool/.test(stderr)) return 'missing';
  if (/Incorrect key provided|incorrect key/i.test(stderr)) return 'wrong-key';
  if (/already exists/.test(stderr)) return 'exists';
  if (/has children/.test(stderr)) return 'has-children';
  return 'other';
}

/** A zfs or zpool command failed; `failure` says how. */
export class ZfsError extends StoragePoolException {
  readonly failure: ZfsFailure;

  constructor(cause: ExternalCommandError) {
    super(cause.message, { cause });
    this.failure = classifyZfsError(cause.stderr);
  }
}

export function isZfsFailure(err: unknown, ...failures: ZfsFailure[]): err is ZfsError {
  return err instanceof ZfsError && failures.includes(err.failure);
}

/** Dataset names reach argv: refuse anything that could read as an option or escape. */
export function checkDatasetName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$/.test(name) || name.includes('//') || name.endsWith('/') || /(^|\/)\.\.?(\/|$)/.test(name)) {
    throw new UsageError(`'${name}' is not a valid ZFS dataset name: use letters, digits, '_', '-', '.', ':' and '/'.`, { path: name });
  }
  return name;
}

/** `-o k=v` pairs from a record, in order. */
function options(props: Record<string, string>): string[] {
  return Object.entries(props).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
}

/** Runs `command`, turning a failed zfs or zpool command into a ZfsError. */
async function zfsCall<T>(command: () => Promise<T>): Promise<T> {
  try {
    return await command();
  } catch (err) {
    if (err instanceof ExternalCommandError) throw new ZfsError(err);
    throw err;
  }
}

function exec(tool: 'zfs' | 'zpool', args: string[], input?: string): Promise<string> {
  return zfsCall(() => run(tool, args, { timeoutMs: TIMEOUT_MS, ...(input === undefined ? {} : { input }) }));
}

/** Runs a read-only zfs command. */
export function zfsRead(args: string[]): Promise<string> {
  return exec('zfs', args);
}

/** Runs a zfs command that changes the pool, retrying while a dataset is busy. */
export async function zfsChange(args: string[], input?: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const out = await exec('zfs', args, input);
      durableStep();
      return out;
    } catch (err) {
      if (!isZfsFailure(err, 'busy') || attempt >= BUSY_RETRIES) throw err;
      await sleep(BUSY_DELAY_MS);
    }
  }
}

/** `zfs send` into `outFd`; resolves to its stderr (-P puts the stream's size there). */
export function zfsSendTo(args: string[], outFd: number, signal?: AbortSignal): Promise<string> {
  return zfsCall(() => runStreaming('zfs', args, { stdout: outFd, signal }));
}

/** `zfs receive` from `inFd`: all or nothing, as ZFS receives. */
export async function zfsReceiveFrom(args: string[], inFd: number, signal?: AbortSignal): Promise<void> {
  await zfsCall(() => runStreaming('zfs', args, { stdin: inFd, signal }));
  durableStep();
}

/** `zfs send ... | zfs receive ...` through a kernel pipe between the two. */
export async function zfsSendReceive(send: string[], receive: string[], signal?: AbortSignal): Promise<string> {
  const stderr = await zfsCall(() => runPipeline(['zfs', ...send], ['zfs', ...receive], { signal }));
  durableStep();
  return stderr;
}

/** The stream size `zfs send -P` reports on stderr ("size\t<bytes>"), or 0. */
export function sentSize(stderr: string): number {
  const m = /^size\t(\d+)$/m.exec(stderr);
  return m ? Number(m[1]) : 0;
}

export function zpool(args: string[]): Promise<string> {
  return exec('zpool', args);
}

/** Parses `-H` output: one row a line, tab-separated columns. */
export function rows(out: string): string[][] {
  return out.split('\n').filter((line) => line.length > 0).map((line) => line.split('\t'));
}

// -- argv builders -------------------------------------------------------------------------

export const zfsArgv = {
  createVolume: (ds: string, bytes: number, props: Record<string, string> = {}) =>
    ['create', '-p', '-s', '-V', String(bytes), ...options(props), checkDatasetName(ds)],
  createFilesystem: (ds: string, props: Record<string, string> = {}, parents = false) =>
    ['create', ...(parents ? ['-p'] : []), ...options(props), checkDatasetName(ds)],
  clone: (snapshot: string, ds: string, props: Record<string, string> = {}) =>
    ['clone', '-p', ...options(props), checkDatasetName(snapshot), checkDatasetName(ds)],
  snapshot: (snapshot: string) => ['snapshot', checkDatasetName(snapshot)],
  rename: (from: string, to: string) => ['rename', '-p', checkDatasetName(from), checkDatasetName(to)],
  /** Several snapshots of one dataset in one command (`ds@a,b,c`); `-d` defers those with clones. */
  destroySnapshots: (ds: string, snapshots: string[]) =>
    ['destroy', '-d', `${checkDatasetName(ds)}@${snapshots.map((s) => checkDatasetName(`${ds}@${s}`).slice(ds.length + 1)).join(',')}`],
  destroy: (ds: string, recursive: boolean) => ['destroy', ...(recursive ? ['-r'] : []), checkDatasetName(ds)],
  rollback: (snapshot: string) => ['rollback', '-r', checkDatasetName(snapshot)],
  promote: (ds: string) => ['promote', checkDatasetName(ds)],
  set: (ds: string, props: Record<string, string>) => ['set', ...Object.entries(props).map(([k, v]) => `${k}=${v}`), checkDatasetName(ds)],
  inherit: (ds: string, prop: string) => ['inherit', prop, checkDatasetName(ds)],
  get: (ds: string, props: string[]) => ['get', '-Hp', '-o', 'value', props.join(','), checkDatasetName(ds)],
  /** name + props of `ds`; `types` as zfs list -t takes them. */
  list: (ds: string, props: string[], types: string) => ['list', '-Hp', '-t', types, '-o', ['name', ...props].join(','), checkDatasetName(ds)],
  listRecursive: (ds: string, props: string[], types: string) =>
    ['list', '-Hp', '-t', types, '-o', ['name', ...props].join(','), '-r', checkDatasetName(ds)],
  /** Full, or incremental from `from` (a snapshot of the same dataset); -P: sizes on stderr. */
  send: (snapshot: string, from?: string) =>
    ['send', '-P', ...(from ? ['-i', checkDatasetName(from)] : []), checkDatasetName(snapshot)],
  /** Into `ds`; -u: nothing to mount (zvols). */
  receive: (ds: string) => ['receive', '-u', checkDatasetName(ds)],
  loadKey: (ds: string) => ['load-key', checkDatasetName(ds)],
  unloadKey: (ds: string) => ['unload-key', checkDatasetName(ds)],
};
