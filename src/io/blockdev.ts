/**
 * Block devices: geometry from the BLK* ioctls and discard limits from sysfs.
 */
import { readFile, realpath } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { native, type BlockGeometry } from '../native/binding.js';

export interface BlockDeviceInfo extends BlockGeometry {
  /** Bytes; 0 when the device cannot discard. */
  discardGranularity: number;
  /** True when reads of discarded blocks return zeros (queue/write_zeroes_max_bytes > 0). */
  writeZeroes: boolean;
}

const majorOf = (rdev: number): number => Number((BigInt(rdev) >> 8n) & 0xfffn);
const minorOf = (rdev: number): number => Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & 0xfff00n));

/** The sysfs queue directory of a device, or of its disk when it is a partition. */
async function queueDir(st: Stats): Promise<string | undefined> {
  const dev = await realpath(`/sys/dev/block/${majorOf(st.rdev)}:${minorOf(st.rdev)}`).catch(() => undefined);
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
