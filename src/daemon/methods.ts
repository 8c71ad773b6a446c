/**
 * The daemon's methods: Qubes' Pool and Volume methods (qubes/storage/__init__.py), each a
 * thin call into the driver layer on the objects the session keeps. Every pool method takes
 * `pool` (the pool's config); every volume method also `volume` (the volume's config, vid
 * included). Results are JSON: what the Qubes method returns, in Qubes' shapes.
 */
import { UsageError } from '../errors/index.js';
import { driverNames, driverParameters } from '../drivers/registry.js';
import type { Pool } from '../model/pool.js';
import type { Volume } from '../model/volume.js';
import { VERSION } from '../version.js';
import { PROTOCOL_VERSION } from './protocol.js';
import type { DriverSession } from './session.js';

export interface CallContext {
  session: DriverSession;
  params: Record<string, unknown>;
  /** Aborted when the client cancels the call or goes away. */
  signal: AbortSignal;
}

type Method = (call: CallContext) => Promise<unknown>;

function param<T>(params: Record<string, unknown>, key: string, check: (v: unknown) => v is T, what: string): T {
  const value = params[key];
  if (!check(value)) throw new UsageError(`The call's ${key} is not ${what}.`);
  return value;
}
const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 4096;
const isSize = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';

async function poolOf(call: CallContext): Promise<Pool> {
  return call.session.pool(call.params.pool);
}

async function volumeOf(call: CallContext): Promise<Volume> {
  return call.session.volume(await poolOf(call), call.params.volume);
}

/** A volume method with no arguments of its own. */
const onVolume = (fn: (v: Volume, call: CallContext) => Promise<unknown>): Method => async (call) => fn(await volumeOf(call), call);

const METHODS: Record<string, Method> = {
  hello: async () => ({
    protocol: PROTOCOL_VERSION, qvol: VERSION,
    drivers: Object.fromEntries(driverNames().map((d) => [d, driverParameters(d)])),
  }),

  'pool.setup': async (call) => { await (await poolOf(call)).setup(); return null; },
  'pool.destroy': async (call) => { await (await poolOf(call)).destroy(); return null; },
  'pool.usage': async (call) => {
    const pool = await poolOf(call);
    const details = await pool.usageDetails();
    return { size: details.data_size ?? null, usage: details.data_usage ?? null, usage_details: details };
  },
  /** Qubes' init_volume: the vid this pool gives a VM's volume (the spec's vid is ignored). */
  'pool.init_volume': async (call) => {
    const pool = await poolOf(call);
    const vm = param(call.params, 'vm', isString, 'a VM name');
    const prefix = call.params.dir_path_prefix ?? 'appvms';
    if (prefix !== 'appvms' && prefix !== 'vm-templates') throw new UsageError('The call\'s dir_path_prefix is not appvms or vm-templates.');
    const request = call.params.volume as Record<string, unknown> | undefined;
    const name = param(request ?? {}, 'name', isString, 'a volume name');
    const volume = pool.initVolume({ name: vm, dirPathPrefix: prefix }, { name });
    pool.forget(volume.vid);
    return { vid: volume.vid };
  },

  'volume.create': onVolume((v) => v.create()),
  'volume.remove': onVolume(async (v, call) => {
    await v.remove();
    call.session.forget(v.pool, v.vid);
  }),
  'volume.start': onVolume((v) => v.start()),
  'volume.stop': onVolume((v) => v.stop()),
  'volume.start_encrypted': onVolume(async (v, call) => (await v.startEncrypted(param(call.params, 'name', isString, 'a /dev/mapper path'))).path),
  'volume.stop_encrypted': onVolume((v, call) => v.stopEncrypted(param(call.params, 'name', isString, 'a /dev/mapper path'))),
  'volume.encrypted_volume_path': onVolume(async (v, call) => v.encryptedPath(param(call.params, 'device_name', isString, 'a device name'))),
  'volume.verify': onVolume((v) => v.verify()),
  'volume.is_dirty': onVolume((v) => v.isDirty()),
  'volume.is_outdated': onVolume((v) => v.isOutdated()),
  'volume.revisions': onVolume(async (v) => Object.fromEntries(await v.revisions())),
  'volume.revert': onVolume((v, call) => {
    const revision = call.params.revision;
    if (revision !== undefined && revision !== null && !isString(revision)) throw new UsageError('The call\'s revision is not a revision id.');
    return v.revert(revision ?? undefined);
  }),
  'volume.resize': onVolume(async (v, call) => { await v.resize(param(call.params, 'size', isSize, 'a size in bytes')); return v.size; }),
  'volume.info': onVolume(async (v) => ({ size: v.size, usage: await v.usage(), path: v.path ?? null, block_device: v.blockDevice() ?? null })),
  'volume.export': onVolume((v) => v.export()),
  'volume.export_end': onVolume((v, call) => v.exportEnd(param(call.params, 'path', isString, 'the path export gave'))),
  'volume.import_data': onVolume((v, call) => v.importData(param(call.params, 'size', isSize, 'a size in bytes'))),
  'volume.import_data_end': onVolume((v, call) => v.importDataEnd(param(call.params, 'success', isBool, 'true or false'))),
  /** `source`: { pool, volume } of the volume to copy, in this pool or another. */
  'volume.import_volume': onVolume(async (v, call) => {
    const from = call.params.source as Record<string, unknown> | undefined;
    if (typeof from !== 'object' || from === null) throw new UsageError('The call\'s source is not { pool, volume }.');
    const source = call.session.volume(await call.session.pool(from.pool), from.volume);
    return (await v.importVolume(source, { signal: call.signal })).method;
  }),
};

export function methodNames(): string[] {
  return Object.keys(METHODS);
}

/** Runs `method`; an unknown one is a UsageError naming the ones there are. */
export async function callMethod(method: string, call: CallContext): Promise<unknown> {
  const fn = Object.hasOwn(METHODS, method) ? METHODS[method] : undefined;
  if (!fn) throw new UsageError(`No method ${method}: the daemon has ${methodNames().join(', ')}.`);
  return (await fn(call)) ?? null;
}
