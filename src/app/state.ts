/**
 * The registry's one state file: pools, VMs and their volume configs, as JSON. Written only
 * by atomic replace (temporary file, fsync, rename, directory fsync) under the lock.
 */
import { readFile } from 'node:fs/promises';
import { atomicWriteFile } from '../io/atomic.js';
import { QvolError } from '../model/errors.js';
import type { VolumeConfig } from '../model/volume.js';
import { hasCode } from '../native/errors.js';
import { durableStep } from '../util/crash.js';

export type VmClass = 'template' | 'app' | 'standalone' | 'disp';
export type PoolConfig = Record<string, string | number | boolean> & { name: string; driver: string };

export interface VmRecord {
  name: string;
  class: VmClass;
  /** The template (app, disp) or disposable template (disp) it is based on. */
  template?: string;
  volumes: Record<string, VolumeConfig>;
}

export interface State {
  version: 1;
  pools: Record<string, PoolConfig>;
  vms: Record<string, VmRecord>;
}

export const emptyState = (): State => ({ version: 1, pools: {}, vms: {} });

export async function loadState(path: string): Promise<State> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return emptyState();
    throw err;
  }
  let state: State;
  try {
    state = JSON.parse(text) as State;
  } catch (err) {
    throw new QvolError('STATE_CORRUPT', `State file ${path} is not valid JSON: restore it from a backup.`, { path, cause: err });
  }
  if (state.version !== 1 || typeof state.pools !== 'object' || typeof state.vms !== 'object') {
    throw new QvolError('STATE_CORRUPT', `State file ${path} has an unknown format (version ${String(state.version)}).`, { path });
  }
  return state;
}

export async function saveState(path: string, state: State): Promise<void> {
  await atomicWriteFile(path, `${JSON.stringify(state, null, 2)}\n`);
  durableStep();
}
