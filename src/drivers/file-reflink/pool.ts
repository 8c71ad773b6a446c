/**
 * The file-reflink pool (qubes-core-admin, qubes/storage/reflink.py): volumes as image files under `dir_path`, cloned with
 * FICLONE on btrfs and XFS. On a filesystem without reflinks setup is refused unless
 * `setup_check=False`; then every clone is a sparse copy by the same engine.
 */
import { randomBytes } from 'node:crypto';
import { statfs, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { CopyError, StoragePoolException } from '../../errors/index.js';
import { parseBool } from '../../model/parse-bool.js';
import { Pool, type PoolOptions, type UsageDetails, type VmRef, type VolumeRequest } from '../../model/pool.js';
import { createDir, PoolFiles, removeEmptyDir, removeFile } from './files.js';
import { ReflinkVolume } from './volume.js';

export interface ReflinkPoolOptions extends PoolOptions {
  dir_path: string;
  setup_check?: boolean | string;
}

/** True when files in `dir` can share extents: a small clone is tried and removed again. */
export async function isReflinkSupported(dir: string): Promise<boolean> {
  const probe = join(dir, `.qvol-reflink-probe~${randomBytes(4).toString('hex')}`);
  await writeFile(probe, 'foo', { mode: 0o600, flag: 'wx' });
  try {
    const { copyVolume } = await import('../../io/copy.js');
    await copyVolume(probe, `${probe}.clone`, { reflink: 'always', sync: false });
    return true;
  } catch (err) {
    if (err instanceof CopyError && err.code === 'REFLINK_UNSUPPORTED') return false;
    throw err;
  } finally {
    await removeFile(probe);
    await removeFile(`${probe}.clone`);
  }
}

export class ReflinkPool extends Pool {
  readonly driver = 'file-reflink';
  readonly dirPath: string;
  /** Opens images below dirPath, following no link (files.ts). */
  readonly files: PoolFiles;
  /** Not persisted (as in Qubes): it matters only for setup(). */
  readonly setupCheck: boolean;

  constructor(options: ReflinkPoolOptions) {
    super(options);
    if (!options.dir_path) throw new StoragePoolException(`Pool ${options.name} needs dir_path: the directory that holds its images.`);
    this.dirPath = resolve(options.dir_path);
    this.files = new PoolFiles(this.dirPath);
    this.setupCheck = parseBool(options.setup_check ?? true);
  }

  override get storageIdentity(): string {
    return `file-reflink:${this.dirPath}`;
  }

  override get config(): Record<string, string | number | boolean> {
    return { ...super.config, dir_path: this.dirPath };
  }

  /**
   * Makes the pool's directory and those below it down to `dir` where they are missing (a
   * pool on a tmpfs after a reboot); the directory above the pool's must exist.
   */
  async recreateDirs(dir: string): Promise<void> {
    const rel = relative(this.dirPath, dir);
    if (rel.startsWith('..') || isAbsolute(rel)) throw new StoragePoolException(`'${dir}' is not inside the pool directory '${this.dirPath}'`);
    let at = this.dirPath;
    await createDir(at);
    for (const part of rel.split(sep).filter(Boolean)) await createDir((at = join(at, part)));
  }

  async setup(): Promise<void> {
    const created = await createDir(this.dirPath);
    if (this.setupCheck && !(await isReflinkSupported(this.dirPath))) {
      if (created) await removeEmptyDir(this.dirPath);
      throw new StoragePoolException(
        `The filesystem for '${this.dirPath}' does not support reflinks. If you can live with delays on VM startup/shutdown/etc. and wasted disk space, pass the 'setup_check=False' option.`,
        { path: this.dirPath });
    }
    await createDir(join(this.dirPath, 'appvms'));
    await createDir(join(this.dirPath, 'vm-templates'));
  }

  /** Nothing to tear down: a pool directory is the user's to remove. */
  override async destroy(): Promise<void> {}

  initVolume(vm: VmRef, request: VolumeRequest): ReflinkVolume {
    if (vm.dirPathPrefix !== 'appvms' && vm.dirPathPrefix !== 'vm-templates') {
      throw new StoragePoolException(`VM ${vm.name} has an unknown directory prefix '${String(vm.dirPathPrefix)}'`);
    }
    const vid = request.vid ?? `${vm.dirPathPrefix}/${vm.name}/${request.name}`;
    const volume = new ReflinkVolume(this, {
      ...request,
      vid,
      vm: vm.name,
      revisionsToKeep: request.revisionsToKeep ?? this.revisionsToKeep,
    });
    return this.register(volume);
  }

  override async usageDetails(): Promise<UsageDetails> {
    const st = await statfs(this.dirPath).catch(() => undefined);
    if (!st) return {};
    return { data_size: st.bsize * st.blocks, data_usage: st.bsize * (st.blocks - st.bfree) };
  }
}
