/**
 * The zfs_encrypted pool: a zfs_zvol pool whose container is its own encryption root,
 * `<zpool_name>/encryption/<pool>` (aes-256-gcm, a passphrase), with the VMs directly
 * beneath it: `<zpool_name>/encryption/<pool>/<vm>/<volume>`. Every helper dataset lives
 * under the same root, so clones and promotions never cross encryption roots.
 *
 * The key is loaded by the operations that need the data when ZFS says it is not, with the
 * passphrase from `passphrase_command` or the caller's provider (the CLI's terminal), and
 * unloaded `unload_timeout` seconds after the last stop, when no zvol under the root is
 * open, by the caller's timer (key-unload.ts). 0 never unloads.
 */
import { StoragePoolException } from '../../errors/index.js';
import { exists, properties } from './datasets.js';
import type { DriverContext, KeyUnloadTimer, PassphraseProvider } from '../../model/driver-context.js';
import { detachedKeyUnloadTimer } from './key-unload.js';
import { PassphraseError, askPassphrase } from './passphrase.js';
import { ZfsPool, type ZfsPoolOptions } from './pool.js';
import { checkDatasetName, isZfsFailure, zfsArgv, zfsChange } from './zfs-command.js';

export interface ZfsEncryptedPoolOptions extends ZfsPoolOptions {
  zpool_name: string;
  /** Seconds after the last stop until the key is unloaded; 0 keeps it loaded. */
  unload_timeout?: number | string;
  /** A command whose standard output is the passphrase; without it qvol asks on the terminal. */
  passphrase_command?: string;
}

const DEFAULT_UNLOAD_TIMEOUT = 1200;

export class ZfsEncryptedPool extends ZfsPool {
  override readonly driver = 'zfs_encrypted';
  readonly unloadTimeout: number;
  readonly passphraseCommand: string | undefined;
  private readonly parentName: string;
  private readonly passphraseProvider: PassphraseProvider | undefined;
  private readonly keyUnload: KeyUnloadTimer;
  /** Volumes stopping together arm the timer once (a start clears it). */
  private unloadArmed = false;

  constructor(options: ZfsEncryptedPoolOptions, context: DriverContext = {}) {
    if (!options.zpool_name) throw new StoragePoolException(`Pool ${options.name} needs zpool_name: the zpool (or dataset) to keep it under.`);
    const parent = checkDatasetName(String(options.zpool_name));
    const root = `${parent}/encryption/${options.name}`;
    super({ ...options, zpool_name: undefined, container: root }, { container: root, vmRoot: root });
    this.parentName = parent;
    this.unloadTimeout = Number(options.unload_timeout ?? DEFAULT_UNLOAD_TIMEOUT);
    if (!Number.isInteger(this.unloadTimeout) || this.unloadTimeout < 0) {
      throw new StoragePoolException(`unload_timeout of pool ${options.name} must be whole seconds (0 keeps the key loaded), not ${String(options.unload_timeout)}.`);
    }
    this.passphraseCommand = options.passphrase_command || undefined;
    this.passphraseProvider = context.passphrase;
    this.keyUnload = context.keyUnload ?? detachedKeyUnloadTimer;
  }

  override get encryptionRoot(): string {
    return this.container;
  }

  override get config(): Record<string, string | number | boolean> {
    const { container: _container, zpool_name: _zpool, ...base } = super.config;
    return {
      ...base,
      zpool_name: this.parentName,
      unload_timeout: this.unloadTimeout,
      ...(this.passphraseCommand ? { passphrase_command: this.passphraseCommand } : {}),
    };
  }


  override async setup(): Promise<void> {
    await this.requireZpool();
    const parent = `${this.parentName}/encryption`;
    if (!(await exists(parent))) await zfsChange(zfsArgv.createFilesystem(parent, { mountpoint: 'none', canmount: 'off' }, true));
    const found = await properties(this.container, ['encryptionroot']);
    if (found && found.encryptionroot !== this.container) {
      throw new StoragePoolException(`Dataset ${this.container} exists and is not an encryption root: remove it or choose another pool name.`, { path: this.container });
    }
    if (found) {
      await this.claimContainer(this.container, {});
      return;
    }
    const passphrase = await askPassphrase(this.name, this.container, this.passphraseCommand, this.passphraseProvider);
    await this.claimContainer(this.container, {
      encryption: 'aes-256-gcm', keyformat: 'passphrase', keylocation: 'prompt', mountpoint: 'none', canmount: 'off',
    }, passphrase).catch((err: unknown) => {
      if (/passphrase/i.test(String((err as Error).message))) {
        throw new PassphraseError('BAD_PASSPHRASE', `ZFS refused the passphrase for pool ${this.name}: it must be 8 to 512 characters.`, { path: this.name, cause: err });
      }
      throw err;
    });
    await this.release();
  }

  /**
   * Cancels a pending unload (whichever process armed it) and loads the key if ZFS says it
   * is not loaded: the key's state is read each time, never remembered, since a timer in
   * another process may have unloaded it.
   */
  protected override async acquireData(): Promise<void> {
    this.unloadArmed = false;
    await this.keyUnload.cancel(this.container);
    const status = (await properties(this.container, ['keystatus']))?.keystatus;
    if (status === undefined) throw new StoragePoolException(`The encryption root ${this.container} of pool ${this.name} is missing: run qvol pool add again, or import its zpool.`, { path: this.container });
    if (status !== 'available') await this.loadKey();
  }

  private async loadKey(): Promise<void> {
    const passphrase = await askPassphrase(this.name, this.container, this.passphraseCommand, this.passphraseProvider);
    try {
      await zfsChange(zfsArgv.loadKey(this.container), passphrase);
    } catch (err) {
      if (isZfsFailure(err, 'wrong-key')) {
        throw new PassphraseError('WRONG_PASSPHRASE', `Wrong passphrase for pool ${this.name} (${this.container}): nothing was changed; try again.`, { path: this.name, cause: err });
      }
      if (/already loaded/.test(String((err as Error).message))) return;
      throw err;
    }
  }

  /** Arms the unload timer (once for volumes stopping together), unless the timeout is 0. */
  protected override async releaseData(): Promise<void> {
    if (this.unloadTimeout === 0 || this.unloadArmed) return;
    this.unloadArmed = true;
    await this.keyUnload.arm(this.container, this.unloadTimeout);
  }
}
