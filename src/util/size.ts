import { UsageError } from '../errors/index.js';

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 2 ** 10, ki: 2 ** 10, kib: 2 ** 10,
  m: 2 ** 20, mi: 2 ** 20, mib: 2 ** 20,
  g: 2 ** 30, gi: 2 ** 30, gib: 2 ** 30,
  t: 2 ** 40, ti: 2 ** 40, tib: 2 ** 40,
  p: 2 ** 50, pi: 2 ** 50, pib: 2 ** 50,
};

/**
 * Parses a byte count such as `4096`, `512M`, `10G` or `1.5TiB` (binary units, as qemu-img
 * and lvm read them). Throws UsageError naming `what` for anything else.
 */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new UsageError(`Invalid ${what} '${text}': use a number of bytes with an optional K, M, G, T or P suffix, such as 10G.`);
  }
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes)) {
    throw new UsageError(`Invalid ${what} '${text}': it must be a whole number of bytes below 8 PiB.`);
  }
  return bytes;
}

/** 1536 -> "1.5 KiB": for people; scripts get bytes in --json. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
