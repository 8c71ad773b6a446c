/**
 * Where a file's data is: the SEEK_DATA/SEEK_HOLE map the copy engine follows, and FIEMAP
 * for diagnostics (which extents are shared with another file, which are unwritten).
 */
import { open } from 'node:fs/promises';
import { native, type Extent, type FiemapExtent } from '../native/binding.js';
import { withCallerStack } from '../native/errors.js';

export type { Extent, FiemapExtent };

/** FIEMAP extent flags worth reporting. */
export const FIEMAP_EXTENT_LAST = 0x1;
export const FIEMAP_EXTENT_UNWRITTEN = 0x800;
export const FIEMAP_EXTENT_SHARED = 0x2000;

/** Data and hole runs of `path` over [offset, offset+length), by default the whole file. */
export async function mapExtents(path: string, offset = 0, length?: number): Promise<Extent[]> {
  const fh = await open(path, 'r');
  try {
    const size = length ?? (await fh.stat()).size - offset;
    return await withCallerStack(() => native.mapExtents(fh.fd, offset, Math.max(0, size)));
  } finally {
    await fh.close();
  }
}

/** Every physical extent of `path`, after syncing it. */
export async function fiemap(path: string): Promise<FiemapExtent[]> {
  const fh = await open(path, 'r');
  try {
    return await withCallerStack(() => native.fiemap(fh.fd));
  } finally {
    await fh.close();
  }
}
