/**
 * Operations on one volume of a registered VM, with Qubes' rules about the VM's state
 * (docs/qubes-contract.md, "Volume settings"): what `volume info` shows, which settings
 * need the VM halted, and revert, resize and config changes, each saved to the registry.
 */
import { QubesValueError, UsageError } from '../errors/index.js';
import { parseBool } from '../model/parse-bool.js';
import { parseRevisionsToKeep } from '../model/revisions.js';
import type { Volume } from '../model/volume.js';
import type { Registry } from './registry.js';
import type { VmStorage } from './storage.js';

/** Qubes' admin.vm.volume.Info keys, in its order. */
export interface VolumeInfo {
  pool: string;
  vid: string;
  size: number;
  usage: number;
  rw: boolean;
  source: string;
  path: string;
  save_on_stop: boolean;
  snap_on_start: boolean;
  revisions_to_keep: number;
  ephemeral: boolean;
  is_outdated: boolean;
}

export async function volumeInfo(v: Volume): Promise<VolumeInfo> {
  return {
    pool: v.pool.name, vid: v.vid, size: v.size, usage: await v.usage(), rw: v.rw, source: v.source?.vid ?? '',
    path: v.path ?? '', save_on_stop: v.saveOnStop, snap_on_start: v.snapOnStart,
    revisions_to_keep: v.revisionsToKeep, ephemeral: v.ephemeral, is_outdated: await v.isOutdated(),
  };
}

/** The settings `setVolumeConfig` takes. */
export const VOLUME_SETTINGS = ['rw', 'revisions_to_keep', 'ephemeral'] as const;

export class VolumeOps {
  constructor(private readonly registry: Registry, private readonly storage: VmStorage) {}

  /** Runs `fn` on the volume with its VM locked, then saves the VM's record. */
  private async change<T>(vm: string, volume: string, fn: (v: Volume) => Promise<T>): Promise<T> {
    return this.storage.withVms([vm], async () => {
      const result = await fn(this.registry.getVolume(vm, volume));
      await this.registry.saveVm(vm);
      return result;
    });
  }

  /** Reverts a halted VM's volume to `revision` (default: the latest). */
  revert(vm: string, volume: string, revision?: string): Promise<void> {
    return this.change(vm, volume, async (v) => {
      await this.storage.requireHalted(vm);
      await v.revert(revision);
    });
  }

  /** Resizes a volume; a running one in place. Returns the size it now has. */
  resize(vm: string, volume: string, size: number): Promise<number> {
    return this.change(vm, volume, async (v) => {
      await v.resize(size);
      return v.size;
    });
  }

  /**
   * Changes a setting (Qubes' admin.vm.volume.Set): `rw` needs the VM halted, and so does a
   * change of `revisions_to_keep` to or from -1 (which changes how the volume is used).
   */
  setConfig(vm: string, volume: string, key: string, value: string): Promise<void> {
    return this.change(vm, volume, async (v) => {
      switch (key) {
        case 'rw':
          await this.storage.requireHalted(vm);
          v.rw = parseBool(value);
          break;
        case 'revisions_to_keep': {
          const n = parseRevisionsToKeep(value);
          if (n === undefined) throw new QubesValueError('Invalid value for revisions_to_keep');
          if (n !== v.revisionsToKeep && (n === -1 || v.revisionsToKeep === -1)) await this.storage.requireHalted(vm);
          v.revisionsToKeep = n;
          break;
        }
        case 'ephemeral':
          v.ephemeral = parseBool(value);
          break;
        default:
          throw new UsageError(`Unknown volume setting '${key}': use ${VOLUME_SETTINGS.join(', ')}.`);
      }
    });
  }

  /** Runs a data import into a halted VM's volume and saves the size it brought. */
  importInto<T>(vm: string, volume: string, fn: (v: Volume) => Promise<T>): Promise<T> {
    return this.change(vm, volume, async (v) => {
      await this.storage.requireHalted(vm);
      return fn(v);
    });
  }
}
