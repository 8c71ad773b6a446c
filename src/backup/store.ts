/**
 * Where an archive's objects live (docs/archive-format.md §1): get, put (create only),
 * list, delete, and nothing else, so that a directory and an object store such as S3 are
 * the same to the archive. This file has the directory store.
 */
import { constants, read } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ArchiveError } from '../errors/index.js';
import { removeDurably } from '../io/atomic.js';
import { openBeneath, type OpenFile } from '../io/open-beneath.js';
import { lstatOrUndefined } from '../io/stat.js';
import { native } from '../native/binding.js';
import { hasCode } from '../native/errors.js';
import { durableStep } from '../util/crash.js';
import { promisify } from 'node:util';

/** Every name an archive object may have; anything else is refused before it is used. */
const NAME = /^(?:qvol-archive|keys\/[0-9a-f]{16}|roots\/[0-9a-f]{16}-[0-9a-f]{16}|sessions\/[0-9a-f]{32}|packs\/[0-9a-f]{2}\/[0-9a-f]{32}|index\/[0-9a-f]{32}|locks\/[0-9a-f]{32})$/;

/** What a put cut short by a crash leaves, in the directories only lock holders write. */
const PARTIAL = /^(?:roots|sessions|index|packs\/[0-9a-f]{2})\/[0-9a-f-]+\.partial-[0-9a-f]{16}$/;

export function isObjectName(name: string): boolean {
  return NAME.test(name);
}

export interface ObjectStore {
  /** Where it is, for messages. */
  readonly location: string;
  /** The whole object, or undefined when there is none; larger than `maxBytes` is an error. */
  get(name: string, maxBytes: number): Promise<Buffer | undefined>;
  /** `length` bytes at `offset` of an object (a blob of a pack). */
  read(name: string, offset: number, length: number): Promise<Buffer>;
  /**
   * Stores a new object, given whole or as its parts in order (a pack's blobs: no copy into
   * one buffer); one of that name already there is an error (ARCHIVE_CORRUPT).
   */
  put(name: string, data: Uint8Array | readonly Uint8Array[]): Promise<void>;
  /** An object's size, or undefined when there is none. */
  size(name: string): Promise<number | undefined>;
  /** The names under `prefix` ('packs/', 'roots/'), in no order. */
  list(prefix: string): Promise<string[]>;
  /** Removes an object; true when it was there. */
  delete(name: string): Promise<boolean>;
  /** Removes what interrupted puts left, if the store can have such (a directory); the count. */
  clean?(): Promise<number>;
}

const preadAsync = promisify(read);

/** `length` bytes at `offset`, or ARCHIVE_CORRUPT when the object ends (or shrank) before. */
async function readFully(fh: OpenFile, name: string, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length); // filled whole below, or thrown away
  for (let done = 0; done < length;) {
    const { bytesRead } = await preadAsync(fh.fd, buf, done, length - done, offset + done);
    if (bytesRead === 0) throw new ArchiveError('ARCHIVE_CORRUPT', `Archive object ${name} ends before byte ${offset + length}.`, { path: name });
    done += bytesRead;
  }
  return buf;
}

function checkName(name: string): void {
  if (!NAME.test(name)) throw new ArchiveError('ARCHIVE_CORRUPT', `'${name}' is not an archive object name.`, { path: name });
}

/**
 * A directory as an object store. Objects are opened below it with no link followed (a
 * store on removable or shared media is not trusted), written whole under a partial name,
 * fsynced, then linked to their own name and the directory fsynced before put() resolves;
 * directories are 0700, files 0600. No object is ever seen half written, a root included.
 */
export class DirectoryStore implements ObjectStore {
  constructor(readonly location: string) {}

  private path(name: string): string {
    checkName(name);
    return join(this.location, name);
  }

  private async openObject(name: string): Promise<OpenFile | undefined> {
    try {
      return await openBeneath(this.location, this.path(name), constants.O_RDONLY, 0, { expect: 'file' });
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  async get(name: string, maxBytes: number): Promise<Buffer | undefined> {
    const fh = await this.openObject(name);
    if (!fh) return undefined;
    try {
      const { size } = await fh.stat();
      if (size > maxBytes) throw new ArchiveError('ARCHIVE_CORRUPT', `Archive object ${name} is ${size} bytes, more than such an object can be (${maxBytes}); it was not read.`, { path: name });
      return await readFully(fh, name, 0, size);
    } finally {
      await fh.close();
    }
  }

  async read(name: string, offset: number, length: number): Promise<Buffer> {
    const fh = await this.openObject(name);
    if (!fh) throw new ArchiveError('ARCHIVE_CORRUPT', `Archive object ${name} is missing.`, { path: name });
    try {
      return await readFully(fh, name, offset, length);
    } finally {
      await fh.close();
    }
  }

  /** Makes the directories of `name` below the store (0700), refusing anything but directories there. */
  private async makeParents(name: string): Promise<void> {
    const parts = name.split('/').slice(0, -1);
    let dir = '';
    for (const part of ['', ...parts]) {
      dir = part === '' ? this.location : join(dir, part);
      const st = await lstatOrUndefined(dir);
      if (st?.isDirectory()) continue;
      if (st) throw new ArchiveError('ARCHIVE_CORRUPT', `'${dir}' in the archive is not a directory (a link or a file was put there); remove it.`, { path: dir });
      await native.durable('mkdir', dir, undefined, 0o700).catch((err: unknown) => {
        if (!hasCode(err, 'EEXIST')) throw err;
      });
    }
  }

  async put(name: string, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    const path = this.path(name);
    await this.makeParents(name);
    // Written whole under a name no reader lists, then linked to its own name: a crash
    // mid-write leaves a `.partial-` file (removed by clean()), never a short object. link(2)
    // fails on an existing name, so the create-only rule holds as with O_EXCL.
    const partial = `${path}.partial-${native.randomBytes(8).toString('hex')}`;
    const fh = await openBeneath(this.location, partial, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      try {
        for (const part of data instanceof Uint8Array ? [data] : data) await fh.writeFile(part);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await native.durable('link', partial, path).catch((err: unknown) => {
        if (hasCode(err, 'EEXIST')) throw new ArchiveError('ARCHIVE_CORRUPT', `Archive object ${name} exists already: objects are written once.`, { path: name });
        throw err;
      });
    } finally {
      await unlink(partial).catch(() => undefined); // a leftover is only clutter: clean() takes it
    }
    durableStep();
  }

  /** Removes what crashed puts left (`.partial-` files); run only by a holder of the archive's lock. */
  async clean(): Promise<number> {
    const entries = async (rel: string) => readdir(join(this.location, rel), { withFileTypes: true }).catch((err: unknown) => {
      if (hasCode(err, 'ENOENT')) return [];
      throw err;
    });
    const packDirs = (await entries('packs')).filter((e) => e.isDirectory()).map((e) => `packs/${e.name}`);
    let removed = 0;
    for (const dir of ['roots', 'sessions', 'index', ...packDirs]) {
      for (const e of await entries(dir)) {
        if (!e.isFile() || !PARTIAL.test(`${dir}/${e.name}`)) continue;
        await unlink(join(this.location, dir, e.name));
        removed++;
      }
    }
    return removed;
  }

  async size(name: string): Promise<number | undefined> {
    const st = await lstatOrUndefined(this.path(name));
    return st?.isFile() ? st.size : undefined;
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      const entries = await readdir(join(this.location, rel), { withFileTypes: true }).catch((err: unknown) => {
        if (hasCode(err, 'ENOENT')) return [];
        throw err;
      });
      for (const e of entries) {
        const name = rel === '' ? e.name : `${rel}/${e.name}`;
        if (e.isDirectory()) await walk(name);
        else if (e.isFile() && NAME.test(name) && name.startsWith(prefix)) out.push(name);
      }
    };
    await walk(prefix.replace(/\/$/, ''));
    return out;
  }

  async delete(name: string): Promise<boolean> {
    const removed = await removeDurably(this.path(name));
    if (removed) durableStep();
    return removed;
  }
}
