/**
 * The only module that loads the addon. Everything native is declared here, typed; offsets
 * cross as numbers checked to be safe integers on both sides.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SystemError } from './errors.js';

export type Mode = 'auto' | 'always' | 'never';
export type CopyMethod = 'clone' | 'copy_file_range' | 'readwrite';
export type ZeroRung = 'punch' | 'zeroout' | 'zero_range' | 'write';

/** A local index file open for lookups (src/backup/local-index.ts, native/sys/sorted_refs.h). */
export interface SortedRefsFile {
  fd: number;
  fanout: Buffer;
  base: number;
}

export interface NativeCopyOptions {
  length: number;
  targetSize: number;
  targetKnownZero: boolean;
  /** A block target that reads zeros where whole units of this many bytes were discarded (a thin LV). */
  discardZeroes?: number;
  reflink: Mode;
  sparse: Mode;
  /** Bits of `capabilitiesSync().disableBits` forced off (tests and benchmarks). */
  disable?: number;
  bufferSize?: number;
  sync?: boolean;
  /** Set the target's atime and mtime to the source's mtime (ns) before the final fsync. */
  copyMtime?: boolean;
  /** Int32Array(1); storing non-zero with Atomics.store cancels the job. */
  cancel?: Int32Array;
  srcPath?: string;
  dstPath?: string;
}

export interface NativeCopyStats {
  method: CopyMethod;
  bytesRead: number;
  bytesWritten: number;
  bytesCloned: number;
  bytesSkipped: number;
  bytesZeroed: number;
  holes: number;
  zeroRungs: number;
}

export type StreamFormatName = 'raw' | 'sparse';
/** How a stream's bulk data left us: page references (splice), sendfile, or write(). */
export type OutMethod = 'splice' | 'sendfile' | 'write' | 'none';

export interface NativeExportOptions {
  format: StreamFormatName;
  length: number;
  /** sparse: end with a CRC32 chunk over the image (default true). */
  crc?: boolean;
  disable?: number;
  cancel?: Int32Array;
  srcPath?: string;
  outPath?: string;
}

export interface NativeExportStats {
  method: OutMethod;
  bytesOut: number;
  dataBytes: number;
  zeroBytes: number;
  chunks: number;
  crc: number;
  pipeSize: number;
}

export interface SparseHeader {
  blockSize: number;
  totalBlocks: number;
  totalChunks: number;
  chunkHeaderSize: number;
  /** The exact byte size from qvol's header extension; 0 when the stream has none. */
  exactSize: number;
  /** Bytes of the file header as it came, extensions included. */
  headerBytes: number;
}

/** A refused stream as native code reports it: codes and numbers (src/io/streams/problems.ts words them). */
export interface NativeFormatIssue extends Error {
  code: string;
  problem: string;
  at: number;
  a: number;
  b: number;
}

export interface NativeImportOptions {
  format: StreamFormatName;
  size: number;
  header?: SparseHeader;
  targetKnownZero?: boolean;
  /** As NativeCopyOptions.discardZeroes. */
  discardZeroes?: number;
  disable?: number;
  sync?: boolean;
  cancel?: Int32Array;
  inPath?: string;
  dstPath?: string;
}

export interface NativeImportStats {
  bytesIn: number;
  bytesWritten: number;
  bytesSkipped: number;
  bytesZeroed: number;
  holes: number;
  chunks: number;
  crcChecked: boolean;
  pipeSize: number;
}

/** Progress of a data job: phase 0 scans (sparse export), phase 1 moves the data. */
export type JobProgress = (done: number, total: number, phase: number) => void;

export interface Extent {
  offset: number;
  length: number;
  data: boolean;
}

export interface FiemapExtent {
  logical: number;
  physical: number;
  length: number;
  flags: number;
}

export interface BlockGeometry {
  size: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
  readOnly: boolean;
}

/** A device number, as the kernel's device-mapper and loop calls give and take it. */
export interface DeviceNumber {
  major: number;
  minor: number;
}

export interface DmDeviceInfo extends DeviceNumber {
  openCount: number;
  /** Targets in the live table: 0 for a device created and never resumed. */
  targetCount: number;
  suspended: boolean;
  liveTable: boolean;
  inactiveTable: boolean;
}

/** A loop device attached with autoclear: it goes away when `fd` and every later opener close it. */
export interface AttachedLoop extends DeviceNumber {
  fd: number;
  path: string;
  /** LOOP_CONFIGURE did it; false: LOOP_SET_FD and LOOP_SET_STATUS64 (before 5.8, or forced). */
  configured: boolean;
}

export interface OpenedBeneath {
  fd: number;
  type: 'file' | 'directory' | 'block' | 'other';
  rung: 'openat2' | 'walk';
}

export interface DisableBits {
  clone: number;
  copyFileRange: number;
  seekHole: number;
  punch: number;
  zeroout: number;
  zeroRange: number;
  earlyWriteback: number;
  /** Zero runs as discards on a thin LV target (NativeCopyOptions.discardZeroes). */
  discard: number;
  /** Off: try copy_file_range across filesystems too, to meet the kernel's EXDEV. */
  sameFsCheck: number;
  /** Streams: splice file → pipe, vmsplice of zero pages, sendfile, F_SETPIPE_SZ. */
  splice: number;
  vmsplice: number;
  sendfile: number;
  pipeResize: number;
  /** Backup: libsodium's XChaCha20-Poly1305 instead of the faster, self-tested OpenSSL one (same bytes). */
  opensslAead: number;
}

export interface Capabilities {
  kernel: string;
  avx2: boolean;
  zeroScan: 'avx2' | 'memeqzero';
  /** Which XChaCha20-Poly1305 the archive uses (native/sys/aead.h): the same bytes either way. */
  aead: 'openssl' | 'libsodium';
  disableBits: DisableBits;
}

export interface NativeBinding {
  setErrorClass(ctor: typeof SystemError): void;
  copyFile(
    srcFd: number,
    dstFd: number,
    options: NativeCopyOptions,
    onProgress?: (done: number, total: number) => void,
  ): Promise<NativeCopyStats>;
  streamExport(srcFd: number, outFd: number, options: NativeExportOptions, onProgress?: JobProgress): Promise<NativeExportStats>;
  readSparseHeader(fd: number, path?: string): Promise<SparseHeader>;
  /** The pure sparse codec, for tests: a header from bytes, or the refusal as an Error (returned). */
  parseSparseHeaderSync(bytes: Buffer): SparseHeader | NativeFormatIssue;
  checkSparseChunkSync(header: SparseHeader, chunk: Buffer, pos: number): { len: number; payload: number } | NativeFormatIssue;
  streamImport(inFd: number, dstFd: number, options: NativeImportOptions, onProgress?: JobProgress): Promise<NativeImportStats>;
  mapExtents(fd: number, offset: number, length: number): Promise<Extent[]>;
  fiemap(fd: number): Promise<FiemapExtent[]>;
  punchHole(fd: number, offset: number, length: number): Promise<void>;
  zeroRange(fd: number, offset: number, length: number): Promise<void>;
  allocate(fd: number, offset: number, length: number): Promise<void>;
  blkDiscard(fd: number, offset: number, length: number): Promise<void>;
  blkZeroout(fd: number, offset: number, length: number): Promise<void>;
  zeroOut(
    fd: number,
    offset: number,
    length: number,
    options: { isBlockDevice: boolean; unmap?: boolean; disable?: number },
  ): Promise<ZeroRung>;
  blockGeometrySync(fd: number): BlockGeometry;
  /** The device-mapper interface version (the ioctl rung's probe); throws where refused. */
  dmVersionSync(): [number, number, number];
  dmCreate(name: string, uuid: string): Promise<DeviceNumber>;
  /** undefined when no device has that name. */
  dmInfoSync(name: string): DmDeviceInfo | undefined;
  /** Loads a dm-crypt table over `backing` with a key made, used and wiped in the addon. */
  dmLoadCrypt(name: string, sectors: number, backing: DeviceNumber, discards: boolean): Promise<void>;
  /** Makes the loaded table live; the event tells udev's rules to leave the device alone. */
  dmResume(name: string): Promise<void>;
  /** false when no device has that name; EBUSY while it is open. */
  dmRemove(name: string): Promise<boolean>;
  /** /dev/mapper/<name> as a block device node (0600), replacing a stale node or link. */
  dmNodeMakeSync(name: string, dev: DeviceNumber): void;
  /** Removes /dev/mapper/<name> when it is a node or a link; false when there was none. */
  dmNodeRemoveSync(name: string): boolean;
  /** A free loop device over the regular file `fd`, with autoclear and no partition scan. */
  loopAttachSync(fd: number, options?: { legacy?: boolean }): AttachedLoop;
  /** A thin LV without an external origin (one `thin` target); false for no dm device. */
  dmIsPlainThinSync(major: number, minor: number): boolean;
  /** The process and credentials of the peer of the Unix socket `fd` when it connected (SO_PEERCRED). */
  peerCredSync(fd: number): { pid: number; uid: number; gid: number };
  /**
   * Opens `rel` below the directory `root` following no symbolic link (openat2 with
   * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or a component walk with O_NOFOLLOW); ELOOP for
   * a link on the way, EXDEV for an escape. `openat2: false` forces the walk (tests).
   */
  openBeneath(root: string, rel: string, flags: number, mode: number, options?: { openat2?: boolean }): Promise<OpenedBeneath>;
  /**
   * rename, unlink, link, mkdir or rmdir, then an fsync of each directory it changed, all
   * on one thread (native/sys/durable.h: btrfs makes a directory fsync from another thread
   * wait a scheduler tick). Rejects with the failing call's SystemError (path, dest).
   */
  durable(op: 'rename' | 'link', path: string, dest: string): Promise<void>;
  durable(op: 'unlink' | 'rmdir', path: string): Promise<void>;
  durable(op: 'mkdir', path: string, dest: undefined, mode: number): Promise<void>;
  // -- the backup archive's primitives (libsodium, libzstd; native/crypto.cc) --
  /** XChaCha20-Poly1305: nonce(24) || ciphertext || tag(16), a fresh random nonce each call. */
  seal(key: Buffer, plaintext: Uint8Array, ad: Uint8Array, disable?: number): Buffer;
  /** The plaintext, or throws an Error with code 'EAUTH'. */
  open(key: Buffer, sealed: Uint8Array, ad: Uint8Array, disable?: number): Buffer;
  /** BLAKE2b-256, keyed when `key` (16 to 64 bytes) is given. */
  blake2b(data: Uint8Array, key?: Buffer): Buffer;
  randomBytes(n: number): Buffer;
  zstdCompress(data: Uint8Array, level: number): Buffer;
  /** One frame with its content size stated, at most `maxSize`; else an Error with code 'EZSTD'. */
  zstdDecompress(frame: Uint8Array, maxSize: number): Buffer;
  argon2id(passphrase: Buffer, salt: Buffer, opslimit: number, memlimit: number): Promise<Buffer>;
  /** A chunk or page sealed as a blob on a pool thread; no blob when `known` (64-byte references sorted by id) holds its id. */
  sealBlob(data: Buffer, options: { type: 7 | 8; idKey: Buffer; dataKey: Buffer; level: number; known?: Buffer; knownFile?: SortedRefsFile | undefined; disable?: number | undefined }): Promise<{ id: Buffer; blob?: Buffer }>;
  /** Sorts 64-byte references in place by id, one of each id first; returns how many. */
  sortRefsSync(refs: Buffer): number;
  /** A chunk read from `fd` and sealed on a pool thread: `zero` when it reads all zeros (nothing else done). */
  sealChunk(fd: number, offset: number, length: number, options: { type: 7; idKey: Buffer; dataKey: Buffer; level: number; known?: Buffer; knownFile?: SortedRefsFile | undefined; disable?: number | undefined }): Promise<{ zero: true; id?: undefined; blob?: undefined } | { zero?: undefined; id: Buffer; blob?: Buffer }>;
  /** A blob opened and checked (tag, codec, bound, id) on a pool thread; else an Error coded EAUTH, EFORMAT or EID. */
  /**
   * `inPlace`: `blob` is decrypted where it lies (given up by the caller); a stored payload
   * comes back as a view of it. `checkId` false: the content is not hashed to its id again
   * (the tag binds the id already; native/blob.cc).
   */
  /** A lookup in a local index file (src/backup/local-index.ts): the reference of `id` and its position. */
  findRefSync(file: SortedRefsFile, id: Buffer): { ref: Buffer; at: number } | undefined;
  openBlob(blob: Buffer, options: { type: 7 | 8; id: Buffer; idKey: Buffer; dataKey: Buffer; maxPlain: number; inPlace?: boolean; checkId?: boolean; disable?: number }): Promise<Buffer>;
  /** A new kernel pipe, [readFd, writeFd], close-on-exec; the caller closes both. */
  pipeSync(): [number, number];
  /** Non-blocking flock(2): true when taken, false when another holder has it. */
  flockSync(fd: number, mode: 'exclusive' | 'shared' | 'unlock'): boolean;
  capabilitiesSync(): Capabilities;
  isZeroSync(buffer: Buffer, impl?: 'auto' | 'avx2' | 'memeqzero'): boolean;
  zeroScanRateSync(bytes: number, rounds: number, impl: 'auto' | 'avx2' | 'memeqzero'): number;
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'binding.gyp'))) {
    const up = dirname(dir);
    if (up === dir) throw new AddonLoadError([], new Error('no binding.gyp above ' + fileURLToPath(import.meta.url)));
    dir = up;
  }
  return dir;
}

/**
 * The addon could not be loaded. It says where it looked and what to do, as sharp's loader
 * does, since the usual causes (no compiler at install, a build for another Node, a missing
 * shared library) each have a one-line fix.
 */
export class AddonLoadError extends Error {
  readonly code = 'ADDON_NOT_LOADED';

  constructor(readonly tried: string[], cause: unknown) {
    const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    super([
      `qvol: the native addon could not be loaded: ${reason}`,
      ...(tried.length > 0 ? ['Looked for:', ...tried.map((t) => `  ${t}`)] : []),
      'Possible solutions:',
      '- Build it for this Node (it needs g++, make, python3 and Node\'s headers; on Debian:',
      '  apt-get install g++ make python3 libnode-dev): run `npm rebuild qvol`, or `npm run build` in a clone.',
      `- Run qvol with the Node it was built for (this is Node ${process.version}, ABI ${process.versions.modules}).`,
      '- Only the data path needs the addon: size parsing, errors and formats import without it.',
    ].join('\n'), { cause });
    this.name = 'AddonLoadError';
  }
}

function load(): NativeBinding {
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  const tried = ['build/Release/qvol.node', 'build/Debug/qvol.node', `prebuilds/${process.platform}-${process.arch}/*.node`]
    .map((p) => join(root, p));
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
    const binding = nodeGypBuild(root) as NativeBinding;
    binding.setErrorClass(SystemError);
    return binding;
  } catch (err) {
    throw new AddonLoadError(tried, err);
  }
}

let loaded: NativeBinding | undefined;

/**
 * The addon, loaded on first use: importing the library (or running `qvol --version`) costs
 * no dlopen, and a library user who needs no data path never meets a load failure.
 */
export const native: NativeBinding = new Proxy({} as NativeBinding, {
  get(_target, property) {
    loaded ??= load();
    return loaded[property as keyof NativeBinding];
  },
});
