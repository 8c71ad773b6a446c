/**
 * One volume into the archive: its chunks read in order (holes never read, zero chunks
 * recorded, not stored), each hashed, checked against what the archive holds, compressed
 * and sealed on the pool's threads while the next ones are read, then packed in order and
 * listed in a tree of pages.
 */
import { open } from 'node:fs/promises';
import { native, type Extent } from '../native/binding.js';
import { CancelledError } from '../errors/index.js';
import type { Archive } from './archive.js';
import type { PackWriter } from './pack-writer.js';
import type { BlobRef } from './refs.js';
import { TreeBuilder, type PageSink, type Tree } from './tree.js';

export interface VolumeStats {
  chunks: number;
  zero: number;
  new: number;
  newBytes: number;
}

export interface SendVolumeOptions {
  sink: PageSink & { packs: PackWriter };
  /** Chunks in flight at once (read, sealing, waiting to be packed). */
  window?: number;
  signal?: AbortSignal | undefined;
  onProgress?: ((done: number, total: number) => void) | undefined;
  /** Native fast paths to leave off (disableMask()): tests and benchmarks of each branch. */
  disable?: number | undefined;
}

/** Whether [start, end) meets a data extent; `cursor` walks the sorted extents once. */
function hasData(extents: Extent[], cursor: { i: number }, start: number, end: number): boolean {
  while (cursor.i < extents.length && extents[cursor.i]!.offset + extents[cursor.i]!.length <= start) cursor.i++;
  for (let j = cursor.i; j < extents.length && extents[j]!.offset < end; j++) if (extents[j]!.data) return true;
  return false;
}

type Outcome = { zero: true } | { zero: false; id: Buffer; blob?: Buffer | undefined; length: number };

export async function sendVolume(archive: Archive, path: string, size: number, options: SendVolumeOptions): Promise<{ tree: Tree; stats: VolumeStats }> {
  const { sink } = options;
  const chunkSize = archive.config.chunkSize;
  const chunks = Math.ceil(size / chunkSize);
  const level = archive.config.compression.codec === 'zstd' ? archive.config.compression.level : 0;
  const window = options.window ?? 8;
  const stats: VolumeStats = { chunks, zero: 0, new: 0, newBytes: 0 };
  const fh = await open(path, 'r');
  try {
    const extents = size === 0 ? [] : await native.mapExtents(fh.fd, 0, size);
    const cursor = { i: 0 };
    const tree = new TreeBuilder(archive, sink);
    const inFlight: Array<Promise<Outcome>> = [];
    const sealing = { type: 7 as const, idKey: archive.keys['chunk-id'], dataKey: archive.keys.data, level, ...sink.sealing, disable: options.disable };
    const start = async (index: number): Promise<Outcome> => {
      const offset = index * chunkSize;
      const length = Math.min(chunkSize, size - offset);
      if (!hasData(extents, cursor, offset, offset + length)) return { zero: true };
      try {
        const sealed = await native.sealChunk(fh.fd, offset, length, sealing);
        return sealed.zero ? { zero: true } : { zero: false, id: sealed.id, blob: sealed.blob, length };
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'ESHORT') throw new Error(`${path} ended before its size ${size} (reading ${length} bytes at ${offset})`);
        if (code === 'EIO') throw new Error(`${path}: read of ${length} bytes at ${offset} failed: ${(err as Error).message}`, { cause: err });
        throw err;
      }
    };
    let next = 0;
    try {
    for (let done = 0; done < chunks; done++) {
      while (next < chunks && inFlight.length < window) inFlight.push(start(next++));
      const outcome = await inFlight.shift()!;
      if (options.signal?.aborted) throw new CancelledError(`Backup of ${path} was cancelled; what was stored stays for the next send to reuse.`, { path });
      let ref: BlobRef | undefined;
      if (outcome.zero) {
        stats.zero++;
      } else {
        ref = sink.lookup(outcome.id);
        if (!ref) {
          if (!outcome.blob) throw new Error(`chunk ${outcome.id.toString('hex')} is known to the archive's index but has no place in it`);
          ref = await sink.packs.add(7, outcome.id, outcome.blob, outcome.length);
          sink.remember(ref);
          stats.new++;
          stats.newBytes += outcome.blob.length;
        }
      }
      await tree.add(ref);
      options.onProgress?.(Math.min(size, (done + 1) * chunkSize), size);
    }
    } finally {
      await Promise.allSettled(inFlight); // nothing left running (or rejecting unheard) after a failure
    }
    return { tree: await tree.finish(), stats };
  } finally {
    await fh.close();
  }
}
