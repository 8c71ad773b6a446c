/**
 * The registry's one state file: pools, VMs and their volume configs, as JSON. Written only
 * by atomic replace (temporary file, fsync, rename, directory fsync) under the registry lock.
 *
 * Every file carries its schema `version`; a reader migrates older versions step by step
 * (MIGRATIONS) and refuses a newer one. Objects parsed from the file have no prototype, so
 * names such as `constructor` or `__proto__` are names like any other.
 */
import { readFile } from 'node:fs/promises';
import { atomicWriteFile } from '../io/atomic.js';
import { QvolError } from '../errors/index.js';
import type { VolumeConfig } from '../model/volume.js';
import { hasCode } from '../native/errors.js';
import { durableStep } from '../util/crash.js';

/** What is making a VM that is not whole yet. */
export type PendingWork = 'create' | 'clone' | 'restore';

export type VmClass = 'template' | 'app' | 'standalone' | 'disp';
export type PoolConfig = Record<string, string | number | boolean> & { name: string; driver: string };

export interface VmRecord {
  name: string;
  class: VmClass;
  /** The template (app, disp) or disposable template (disp) it is based on. */
  template?: string;
  volumes: Record<string, VolumeConfig>;
  /**
   * Set while `vm create`, `vm clone` or `backup restore` makes the VM's volumes (since
   * version 2): a record still pending when no command holds the VM is what a crash left,
   * and recover removes it.
   */
  pending?: PendingWork;
}

export const STATE_VERSION = 2;

export interface State {
  version: typeof STATE_VERSION;
  pools: Record<string, PoolConfig>;
  vms: Record<string, VmRecord>;
}

export const emptyState = (): State => ({ version: STATE_VERSION, pools: record(), vms: record() });

/** An object without a prototype: a plain map from names to values. */
export function record<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** Each step takes a state of version N (N = index + 1) to version N + 1. */
const MIGRATIONS: Array<(old: Record<string, unknown>) => Record<string, unknown>> = [
  // 1 -> 2: VM records may be `pending`; nothing else changed, so no record needs rewriting.
  (old) => ({ ...old, version: 2 }),
];

function fromPlainJson(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
    return Object.assign(record<unknown>(), value);
  });
}

function corrupt(path: string, why: string, cause?: unknown): QvolError {
  return new QvolError('STATE_CORRUPT', `State file ${path} ${why}: restore it from a backup.`, { path, ...(cause === undefined ? {} : { cause }) });
}

/** Checks the shape of a parsed state file and brings it to the current version. */
export function parseState(text: string, path: string): State {
  let data: Record<string, unknown>;
  try {
    data = fromPlainJson(text) as Record<string, unknown>;
  } catch (err) {
    throw corrupt(path, 'is not valid JSON', err);
  }
  const version = data?.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) throw corrupt(path, `has no valid version (${String(version)})`);
  if (version > STATE_VERSION) {
    throw new QvolError('STATE_TOO_NEW', `State file ${path} has version ${version}, written by a newer qvol (this one reads up to ${STATE_VERSION}): upgrade qvol.`, { path });
  }
  for (let v = version; v < STATE_VERSION; v++) data = MIGRATIONS[v - 1]!(data);
  const state = data as unknown as State;
  if (typeof state.pools !== 'object' || state.pools === null || typeof state.vms !== 'object' || state.vms === null) {
    throw corrupt(path, 'lacks its pools or VMs');
  }
  for (const [name, vm] of Object.entries(state.vms)) {
    if (typeof vm !== 'object' || vm.name !== name || typeof vm.volumes !== 'object' || vm.volumes === null) throw corrupt(path, `has a broken record for VM ${name}`);
  }
  for (const [name, pool] of Object.entries(state.pools)) {
    if (typeof pool !== 'object' || pool.name !== name || typeof pool.driver !== 'string') throw corrupt(path, `has a broken record for pool ${name}`);
  }
  return state;
}

export async function loadState(path: string): Promise<State> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return emptyState();
    throw err;
  }
  return parseState(text, path);
}

export async function saveState(path: string, state: State): Promise<void> {
  await atomicWriteFile(path, `${JSON.stringify(state, null, 2)}\n`);
  durableStep();
}
