/**
 * Block devices: geometry from the BLK* ioctls and discard limits from sysfs.
 */
import { readFile, realpath } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { native, type BlockGeometry, type DeviceNumber } from '../native/binding.js';

export interface BlockDeviceInfo extends BlockGeometry {
  /** Bytes; 0 when the device cannot discard. */
  discardGranularity: number;
  /** True when reads of discarded blocks return zeros (queue/write_zeroes_max_bytes > 0). */
  writeZeroes: boolean;
  /**
   * Bytes: a thin LV reads zeros where a discard unmapped whole chunks of this size, so the
   * copy engine discards zero runs there; 0 for every other device (a discard on them
   * leaves what the device chooses).
   */
  discardZeroes: number;
}

/** major/minor of a Node `rdev` (glibc's encoding of dev_t). */
export function splitDev(rdev: number): DeviceNumber {
  const big = BigInt(rdev);
  return {
    major: Number(((big >> 8n) & 0xfffn) | ((big >> 32n) & ~0xfffn)),
    minor: Number((big & 0xffn) | ((big >> 12n) & ~0xffn)),
  };
}

/** The sysfs queue directory of a device, or of its disk when it is a partition. */
async function queueDir(st: Stats): Promise<string | undefined> {
  const { major, minor } = splitDev(st.rdev);
  const dev = await realpath(`/sys/dev/block/${major}:${minor}`).catch(() => undefined);
  if (dev === undefined) return undefined;
  for (const dir of [join(dev, 'queue'), join(dev, '..', 'queue')]) {
    if (await readFile(join(dir, 'discard_granularity'), 'utf8').then(() => true, () => false)) return dir;
  }
  return undefined;
}

async function readNumber(dir: string | undefined, name: string): Promise<number> {
  if (dir === undefined) return 0;
  const text = await readFile(join(dir, name), 'utf8').catch(() => '0');
  return Number.parseInt(text.trim(), 10) || 0;
}

/**
 * The chunk size of a thin LV whose discards unmap (device-mapper's `thin` target with no
 * external origin, asked of the kernel by DM_TABLE_STATUS), else 0: a probe that never
 * fails, since without it the copy engine zeroes as on any device.
 */
async function thinDiscardUnit(st: Stats, granularity: number): Promise<number> {
  if (granularity < 4096 || granularity % 4096 !== 0) return 0;
  const { major, minor } = splitDev(st.rdev);
  if (!(await readFile(`/sys/dev/block/${major}:${minor}/dm/name`, 'utf8').then(() => true, () => false))) return 0;
  try {
    return native.dmIsPlainThinSync(major, minor) ? granularity : 0;
  } catch {
    return 0; // no device-mapper control here (not root, no module): zero as on any device
  }
}

/** Geometry and discard facts of the open block device `fd` (stat `st`). */
export async function blockDeviceInfo(fd: number, st: Stats): Promise<BlockDeviceInfo> {
  const geometry = native.blockGeometrySync(fd);
  const queue = await queueDir(st);
  const discardGranularity = await readNumber(queue, 'discard_granularity');
  return {
    ...geometry,
    discardGranularity,
    writeZeroes: (await readNumber(queue, 'write_zeroes_max_bytes')) > 0,
    discardZeroes: await thinDiscardUnit(st, discardGranularity),
  };
}
