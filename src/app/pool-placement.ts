/**
 * Where a file pool may live. Its directory holds VM disks that root hands to VMs and reads
 * back, so it may not be `/`, may not overlap another pool's directory (one pool's cleanup
 * would see the other's images), and, when qvol runs as root, neither it nor any directory
 * above it may be writable by another user (who could swap a directory for a link between
 * our check and our use); a sticky directory such as /tmp is safe, since others cannot
 * rename or remove our entries in it.
 */
import { dirname, resolve, sep } from 'node:path';
import { StoragePoolException } from '../errors/index.js';
import { lstatOrUndefined } from '../io/stat.js';

const STICKY = 0o1000;

function inside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

/** Refuses `dir` for pool `name` when it is `/`, overlaps one of `others`, or is exposed to other users. */
export async function checkPoolDirectory(name: string, dir: string, others: Array<{ name: string; dir: string }>): Promise<void> {
  const path = resolve(dir);
  if (path === sep) throw new StoragePoolException(`Pool ${name} cannot live in '/': give it a directory of its own.`, { path });
  for (const other of others) {
    const theirs = resolve(other.dir);
    if (inside(path, theirs) || inside(theirs, path)) {
      throw new StoragePoolException(`The directory '${path}' of pool ${name} overlaps '${theirs}' of pool ${other.name}: give each pool a directory of its own.`, { path });
    }
  }
  if (process.getuid?.() !== 0) return;
  for (let d = path; ; d = dirname(d)) {
    const st = await lstatOrUndefined(d); // one not there yet is made later, by us, 0700
    if (st) {
      const writableByOthers = (st.mode & 0o022) !== 0 && (st.mode & STICKY) === 0;
      if (st.uid !== 0 || writableByOthers) {
        throw new StoragePoolException(`Pool ${name} cannot live under '${d}': ${st.uid !== 0 ? `it belongs to user ${st.uid}` : 'other users can write to it'}, and qvol runs as root; use a directory that only root can change.`, { path: d });
      }
    }
    if (d === dirname(d)) break;
  }
}
