/**
 * Where `qvol backup cat` writes, by the output rules of io/output.ts: a new or regular
 * file is written sparse under a temporary name and published whole; a pipe, terminal or
 * device (standard output by default) receives every byte in order, zeros included, or,
 * with `-f sparse`, an Android sparse image in which holes take 12 bytes each.
 */
import { constants } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import type { QvolApp } from '../../app/app.js';
import { backupCat, type ArchiveAccess, type CatPlan } from '../../app/backup.js';
import { UsageError } from '../../errors/index.js';
import { publish, tempPathFor } from '../../io/atomic.js';
import { checkDeviceOutput, outputKind, writeInPlace } from '../../io/output.js';
import { writeAll } from '../../io/write-all.js';

const ZEROS = Buffer.alloc(1 << 20);

export async function catToOutput(app: QvolApp, access: ArchiveAccess, vm: string, volume: string, session: string | undefined, output: string | undefined, format: 'raw' | 'sparse' = 'raw'): Promise<void> {
  const kind = output === undefined ? 'stream' : await outputKind(output);
  if (output !== undefined) checkDeviceOutput(output, kind, false, `the volume`);
  if (format === 'sparse') {
    const toSparse = async (fd: number) => { await sparseImage(app, access, vm, volume, session, (buf) => writeAll(fd, buf)); };
    if (kind === 'file' && output !== undefined) await toNewFile(output, (fh) => toSparse(fh.fd));
    else await (output === undefined ? toSparse(1) : writeInPlace(output, 'stream', toSparse));
    return;
  }
  if (kind === 'file' && output !== undefined) {
    await toNewFile(output, async (fh) => {
      const { size } = await backupCat(app, access, vm, volume, session, async (offset, data) => { await fh.write(data, 0, data.length, offset); }, { inOrder: false });
      await fh.truncate(size);
    });
    return;
  }
  const toStream = async (fd: number): Promise<void> => {
    const put = (buf: Buffer) => writeAll(fd, buf);
    let next = 0;
    const zerosUpTo = async (end: number) => {
      while (next < end) {
        const n = Math.min(ZEROS.length, end - next);
        await put(ZEROS.subarray(0, n));
        next += n;
      }
    };
    const { size } = await backupCat(app, access, vm, volume, session, async (offset, data) => {
      await zerosUpTo(offset);
      await put(data);
      next += data.length;
    }, { inOrder: true });
    await zerosUpTo(size);
  };
  await (output === undefined ? toStream(1) : writeInPlace(output, 'stream', toStream));
}

/** A new file, written under a temporary name by `fill` and published whole. */
async function toNewFile(output: string, fill: (fh: FileHandle) => Promise<void>): Promise<void> {
  const temp = tempPathFor(output);
  const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await fill(fh);
    await fh.sync();
    await fh.close();
    await publish(temp, output);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

const BLOCK = 4096;
const CHUNK_RAW = 0xcac1;
const CHUNK_DONT_CARE = 0xcac3;

function chunkHeader(type: number, blocks: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16LE(type, 0);
  h.writeUInt32LE(blocks, 4);
  h.writeUInt32LE(12 + dataBytes, 8);
  return h;
}

/**
 * The volume as an Android sparse image (the format `qvol volume import -f sparse` reads):
 * the 28-byte header, whose chunk count the pages give before any data is read, then a raw
 * chunk per data chunk and a don't-care chunk per run of zero chunks.
 */
async function sparseImage(app: QvolApp, access: ArchiveAccess, vm: string, volume: string, session: string | undefined, put: (buf: Buffer) => Promise<void>): Promise<void> {
  let next = 0;
  let size = 0;
  const gap = async (end: number) => {
    if (end > next) await put(chunkHeader(CHUNK_DONT_CARE, (end - next) / BLOCK, 0));
    next = end;
  };
  const plan = async (p: CatPlan) => {
    size = p.size;
    if (size % BLOCK !== 0 || size / BLOCK > 0xffffffff) throw new UsageError(`${vm}:${volume} is ${size} bytes, which an Android sparse image (4 KiB blocks, 2^32 of them) cannot hold: use -f raw.`);
    let chunks = 0;
    let end = 0;
    for (const i of p.dataChunks) {
      if (i * p.chunkSize > end) chunks++;
      chunks++;
      end = Math.min(size, (i + 1) * p.chunkSize);
    }
    if (end < size) chunks++;
    const h = Buffer.alloc(28);
    h.writeUInt32LE(0xed26ff3a, 0);
    h.writeUInt16LE(1, 4);
    h.writeUInt16LE(0, 6);
    h.writeUInt16LE(28, 8);
    h.writeUInt16LE(12, 10);
    h.writeUInt32LE(BLOCK, 12);
    h.writeUInt32LE(size / BLOCK, 16);
    h.writeUInt32LE(chunks, 20);
    await put(h);
  };
  await backupCat(app, access, vm, volume, session, async (offset, data) => {
    await gap(offset);
    await put(chunkHeader(CHUNK_RAW, data.length / BLOCK, data.length));
    await put(data);
    next = offset + data.length;
  }, { inOrder: true, plan });
  await gap(size);
}

