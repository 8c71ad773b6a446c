/**
 * verify: every object the current root reaches is read and checked (hashes against their
 * parents, tags, bounds, page contents); with `data`, every chunk too, decrypted and hashed
 * to its id. Problems are collected, each naming its object, rather than stopping at the
 * first, so one report says everything that is wrong.
 */
import { ArchiveError } from '../errors/index.js';
import type { Archive } from './archive.js';
import { readIndexObject } from './index-objects.js';
import { currentRoot, type RootOptions } from './roots.js';
import { readSession } from './sessions.js';
import { readBlob, walkTree } from './tree.js';
import { readPackHeader } from './pack-writer.js';
import { packName } from './refs.js';
import { placeOf } from './places.js';

export interface VerifyResult {
  generation: number;
  sessions: number;
  volumes: number;
  chunksChecked: number;
  packs: number;
  bytesChecked: number;
  problems: Array<{ object: string; message: string }>;
}

export async function verifyArchive(archive: Archive, options: RootOptions & { data?: boolean }): Promise<VerifyResult> {
  const result: VerifyResult = { generation: 0, sessions: 0, volumes: 0, chunksChecked: 0, packs: 0, bytesChecked: 0, problems: [] };
  const problem = (err: unknown, object: string) => {
    if (!(err instanceof ArchiveError)) throw err;
    result.problems.push({ object: err.path ?? object, message: err.message });
  };
  const { root } = await currentRoot(archive, options);
  result.generation = root.generation;
  for (const index of root.indexes) {
    try {
      await readIndexObject(archive, index);
    } catch (err) {
      problem(err, index.name);
    }
  }
  const seen = new Set<string>();
  const packs = new Set<string>();
  const present = new Set(await archive.store.list('packs/'));
  const exists = (name: string) => present.has(name);
  for (const ref of root.sessions) {
    let session;
    try {
      session = await readSession(archive, ref);
    } catch (err) {
      problem(err, ref.name);
      continue;
    }
    result.sessions++;
    for (const vm of session.vms) {
      for (const volume of vm.volumes) {
        result.volumes++;
        try {
          await walkTree(archive, volume.tree, Math.ceil(volume.size / archive.config.chunkSize), async (_i, ref) => {
            const chunk = await placeOf(archive, ref, exists); // where it is now (a prune may have moved it)
            packs.add(packName(chunk.pack));
            const key = `${chunk.id.toString('hex')}@${chunk.pack.toString('hex')}:${chunk.offset}`;
            if (!options.data || seen.has(key)) return;
            seen.add(key);
            const data = await readBlob(archive, chunk, 7);
            result.chunksChecked++;
            result.bytesChecked += data.length;
          });
        } catch (err) {
          problem(err, `${ref.name} ${vm.name}:${volume.name}`);
        }
      }
    }
  }
  // Each pack a kept chunk is in: its own header (what `verify --repair-index` will read) authenticated too.
  for (const name of packs) {
    try {
      await readPackHeader(archive, name);
    } catch (err) {
      problem(err, name);
    }
  }
  result.packs = packs.size;
  return result;
}
