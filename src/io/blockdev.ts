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

/** Geometry and discard facts of the open block device `fd` (stat `st`). */
export async function blockDeviceInfo(fd: number, st: Stats): Promise<BlockDeviceInfo> {
  const geometry = native.blockGeometrySync(fd);
  const queue = await queueDir(st);
  return {
    ...geometry,
    discardGranularity: await readNumber(queue, 'discard_granularity'),
    writeZeroes: (await readNumber(queue, 'write_zeroes_max_bytes')) > 0,
  };
}
