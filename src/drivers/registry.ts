/**
 * Pool drivers by name: how to build a pool from its persisted options, and which options
 * each takes (Qubes' driver_parameters: name -> required?).
 */
import { QvolError, UsageError } from '../errors/index.js';
import type { DriverContext } from '../model/driver-context.js';
import type { Pool } from '../model/pool.js';
import type { ReflinkPoolOptions } from './file-reflink/pool.js';
import type { ThinPoolOptions } from './lvm-thin/pool.js';
import type { ZfsEncryptedPoolOptions } from './zfs/encrypted-pool.js';
import type { ZfsPoolOptions } from './zfs/pool.js';

type Options = Record<string, string | number | boolean>;

interface DriverEntry {
  parameters: Record<string, boolean>;
  /** Imports the driver's code when a pool of it is first built: a command pays only for the drivers it uses. */
  create(options: Options, context: DriverContext): Promise<Pool>;
}

const DRIVERS: Record<string, DriverEntry> = {
  'file-reflink': {
    parameters: { dir_path: true, revisions_to_keep: false, setup_check: false, ephemeral_volatile: false },
    create: async (options) => new (await import('./file-reflink/pool.js')).ReflinkPool(options as unknown as ReflinkPoolOptions),
  },
  zfs_zvol: {
    parameters: { zpool_name: false, container: false, block_devices: false, force: false, revisions_to_keep: false, ephemeral_volatile: false },
    create: async (options) => new (await import('./zfs/pool.js')).ZfsPool(options as unknown as ZfsPoolOptions),
  },
  lvm_thin: {
    parameters: { volume_group: true, thin_pool: true, create_thin_pool: false, block_devices: false, force: false, revisions_to_keep: false, ephemeral_volatile: false },
    create: async (options) => new (await import('./lvm-thin/pool.js')).ThinPool(options as unknown as ThinPoolOptions),
  },
  zfs_encrypted: {
    parameters: { zpool_name: true, unload_timeout: false, passphrase_command: false, revisions_to_keep: false, ephemeral_volatile: false },
    create: async (options, context) => new (await import('./zfs/encrypted-pool.js')).ZfsEncryptedPool(options as unknown as ZfsEncryptedPoolOptions, context),
  },
};

export function driverNames(): string[] {
  return Object.keys(DRIVERS);
}

export function driverParameters(driver: string): Record<string, boolean> {
  return { ...entry(driver, '?').parameters };
}

function entry(driver: string, pool: string): DriverEntry {
  const found = Object.hasOwn(DRIVERS, driver) ? DRIVERS[driver] : undefined;
  if (!found) throw new QvolError('UNKNOWN_DRIVER', `No driver ${driver} for pool ${pool}: use one of ${driverNames().join(', ')}.`, { path: driver });
  return found;
}

/**
 * Builds a pool from its options (name, driver and the driver's own), checking them;
 * `context` gives the drivers what only the caller knows (src/model/driver-context.ts).
 */
export async function createPool(options: Options, context: DriverContext = {}): Promise<Pool> {
  const name = String(options.name ?? '');
  if (!name) throw new UsageError('No pool name for pool');
  if (!options.driver) throw new UsageError(`No driver specified for pool ${name}`);
  const driver = entry(String(options.driver), name);
  const { driver: _driver, name: _name, ...rest } = options;
  const unknown = Object.keys(rest).filter((k) => !Object.hasOwn(driver.parameters, k));
  if (unknown.length > 0) {
    throw new UsageError(`Unexpected driver options found for ${String(options.driver)}: ${unknown.join(', ')} (it takes ${Object.keys(driver.parameters).join(', ')}).`);
  }
  const missing = Object.entries(driver.parameters).filter(([k, required]) => required && !Object.hasOwn(rest, k)).map(([k]) => k);
  if (missing.length > 0) throw new UsageError(`missing required driver options: ${missing.join(', ')}`);
  return driver.create(options, context);
}

/**
 * The options of the embedded pool in `dir`, which every host can run: file-reflink, cloning
 * where the filesystem shares extents and copying sparse where it does not (then `note` says so).
 */
export async function embeddedPoolOptions(name: string, dir: string): Promise<{ options: Record<string, string | boolean>; note?: string }> {
  const { isReflinkSupported } = await import('./file-reflink/pool.js');
  const reflinks = await isReflinkSupported(dir);
  return {
    options: { name, driver: 'file-reflink', dir_path: dir, setup_check: reflinks },
    ...(reflinks ? {} : { note: `the filesystem of ${dir} cannot share extents (reflink): volumes will be copied, sparse, instead of cloned` }),
  };
}
