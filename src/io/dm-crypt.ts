/**
 * Ephemeral mappings: a volume's device seen through dm-crypt (aes-xts-plain64, 512-bit
 * key) with a key that exists only while the mapping does, so whatever a VM wrote there is
 * noise once the mapping is gone (Qubes' `ephemeral`, docs/qubes-contract.md).
 *
 * Two rungs. The first talks to the kernel itself (native/devmapper.cc): a loop device with
 * autoclear for an image file, then DM_DEV_CREATE, DM_TABLE_LOAD with a key made and wiped
 * in the addon, and a resume whose event keeps udev's rules off the device. It costs a few
 * ioctls where `cryptsetup` costs a process and a wait for udev (qubes-issues #7408). The
 * second is that `cryptsetup` (Qubes' own command line, with the key read from
 * /dev/urandom by cryptsetup), taken where the kernel refuses the first
 * (no /dev/mapper/control, a sandbox) or when a test forces it.
 *
 * Every step is its own call with a crash point after it: a crash leaves a named mapping
 * that the next start or `recover` removes (close before open), and a loop device that
 * autoclear detaches once nothing holds it. No key is ever reused: each open makes one.
 */
import { close, constants, fstat } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoragePoolException } from '../errors/index.js';
import { native, type DeviceNumber } from '../native/binding.js';
import { hasCode } from '../native/errors.js';
import { durableStep } from '../util/crash.js';
import { run } from '../util/exec.js';
import { splitDev } from './blockdev.js';

export type CryptRung = 'ioctl' | 'cryptsetup';

/** How an ephemeral mapping is made: the rung, and for tests the loop fallback. */
export interface CryptOptions {
  /** 'auto' (the default): the ioctls where the kernel takes them, else cryptsetup. */
  rung?: CryptRung | 'auto';
  /** Attach loop devices with LOOP_SET_FD and LOOP_SET_STATUS64 (the pre-5.8 rung). */
  legacyLoop?: boolean;
}

export interface EphemeralMapping {
  path: string;
  rung: CryptRung;
  /** The loop device under the mapping, for an image file (autoclear: it goes with it). */
  loop?: string;
}

/** What the mapping is opened over: the volume's device or image, open read-write. */
export interface MappingBacking {
  fd: number;
  /** The path the volume gives, for messages only: nothing is opened by it. */
  path: string;
}

/** Qubes zeroes this much at the start of a new mapping, so no old header shows through. */
export const BYTES_TO_ZERO = 65536;
/** `/dev/mapper/` + a dm name (127 bytes at most, no `/`). */
const MAPPER_DIR = '/dev/mapper/';
const CIPHER = 'aes-xts-plain64';
const KEY_BITS = 512;
/** How long a close waits for a transient opener (udev, blkid) to let go. */
const REMOVE_RETRIES = 20;
const REMOVE_PAUSE_MS = 50;

/** The dm name of a `/dev/mapper/<name>` path (Qubes' start_encrypted assertion). */
export function mapperName(path: string): string {
  const name = path.startsWith(MAPPER_DIR) ? path.slice(MAPPER_DIR.length) : '';
  if (name === '' || name.includes('/') || name === 'control' || name === '.' || name === '..' || Buffer.byteLength(name) > 127) {
    throw new StoragePoolException(`Invalid ephemeral device name '${path}': expected /dev/mapper/NAME with no '/' in NAME`, { path });
  }
  return name;
}

/** The dm uuid: cryptsetup's prefix for a plain mapping, so `cryptsetup close` takes ours. */
function mapperUuid(name: string): string {
  return `CRYPT-PLAIN-${name}`;
}

let ioctlProbe: { ok: true } | { ok: false; why: string } | undefined;

/**
 * Whether the kernel takes the device-mapper ioctls from this process (probed once). Any
 * refusal (no control node, no permission in a sandbox, no device-mapper) means the next
 * rung; it is kept to say why when the ioctls are asked for by name.
 */
export function ioctlRungAvailable(): { ok: true } | { ok: false; why: string } {
  if (ioctlProbe) return ioctlProbe;
  try {
    native.dmVersionSync();
    ioctlProbe = { ok: true };
  } catch (err) {
    ioctlProbe = { ok: false, why: (err as Error).message };
  }
  return ioctlProbe;
}

/** The rung `options` ask for, with QVOL_EPHEMERAL_RUNG (tests through the CLI) as the default. */
function chooseRung(options: CryptOptions): CryptRung {
  const wanted = options.rung ?? (process.env.QVOL_EPHEMERAL_RUNG as CryptOptions['rung'] | undefined) ?? 'auto';
  if (wanted === 'cryptsetup') return 'cryptsetup';
  const probe = ioctlRungAvailable();
  if (probe.ok) return 'ioctl';
  if (wanted === 'ioctl') throw new StoragePoolException(`The device-mapper ioctls are refused here: ${probe.why}`, { path: '/dev/mapper/control' });
  return 'cryptsetup';
}

function legacyLoop(options: CryptOptions): boolean {
  return options.legacyLoop ?? process.env.QVOL_LOOP_LEGACY === '1';
}

/** Whether a mapping of that path exists (by the kernel's name where it answers). */
export async function mappingExists(path: string): Promise<boolean> {
  const name = mapperName(path);
  if (ioctlRungAvailable().ok) return native.dmInfoSync(name) !== undefined;
  return stat(path).then(() => true, () => false);
}

/**
 * Opens `path` (/dev/mapper/NAME) over `backing` with a new random key and zeroes its
 * first 64 KiB. A mapping of that name must not exist (closeEphemeral first); on failure
 * nothing of the new one is left.
 */
export async function openEphemeral(path: string, backing: MappingBacking, options: CryptOptions = {}): Promise<EphemeralMapping> {
  const name = mapperName(path);
  const rung = chooseRung(options);
  const mapping = rung === 'ioctl' ? await openByIoctl(name, backing, legacyLoop(options)) : await openByCryptsetup(name, backing, legacyLoop(options)).catch((err: unknown) => {
    const probe = ioctlRungAvailable();
    if (probe.ok) throw err;
    // The last rung failed too: say why the first was not taken as well.
    throw new StoragePoolException(`Cannot open ephemeral device ${path}: the kernel refuses the device-mapper ioctls (${probe.why}), and ${(err as Error).message.replace(/\.$/, '')}.`, { path, cause: err });
  });
  try {
    await zeroStart(path, rung);
  } catch (err) {
    await closeEphemeral(path, { rung }).catch(() => undefined);
    throw err;
  }
  return { path, ...mapping };
}

/**
 * Closes the mapping at `path` if there is one, and its node; true if there was one. A
 * mapping still open (a VM that did not let go) fails with EBUSY after a short wait.
 */
export async function closeEphemeral(path: string, options: CryptOptions = {}): Promise<boolean> {
  const name = mapperName(path);
  if (chooseRung(options) === 'cryptsetup') {
    const existed = await mappingExists(path);
    if (existed) await run('cryptsetup', ['close', '--', name], { timeoutMs: 120_000 });
    // A node the ioctl rung made is no rule's to remove.
    native.dmNodeRemoveSync(name);
    return existed;
  }
  let removed = false;
  for (let attempt = 1; ; attempt++) {
    try {
      removed = await native.dmRemove(name);
      break;
    } catch (err) {
      if (!hasCode(err, 'EBUSY') || attempt >= REMOVE_RETRIES) throw busy(path, err);
      await sleep(REMOVE_PAUSE_MS);
    }
  }
  if (removed) durableStep();
  native.dmNodeRemoveSync(name);
  return removed;
}

function busy(path: string, err: unknown): unknown {
  if (!hasCode(err, 'EBUSY')) return err;
  return new StoragePoolException(`Cannot close ephemeral device ${path}: it is still open (is the VM still running?)`, { path, cause: err });
}

/** The device under the mapping and its size in sectors; a loop device for an image file. */
async function backingDevice(backing: MappingBacking, legacy: boolean): Promise<{ dev: DeviceNumber; sectors: number; loop?: { fd: number; path: string } }> {
  const st = await fstatOf(backing.fd);
  if (st.isBlockDevice()) {
    const size = native.blockGeometrySync(backing.fd).size;
    return { dev: splitDev(st.rdev), sectors: Math.floor(size / 512) };
  }
  if (!st.isFile()) throw new StoragePoolException(`Cannot map ${backing.path}: not a block device or an image file`, { path: backing.path });
  const loop = native.loopAttachSync(backing.fd, { legacy });
  return { dev: loop, sectors: Math.floor(st.size / 512), loop };
}

async function openByIoctl(name: string, backing: MappingBacking, legacy: boolean): Promise<Omit<EphemeralMapping, 'path'>> {
  const under = await backingDevice(backing, legacy);
  try {
    durableStep();
    if (under.sectors === 0) throw new StoragePoolException(`Cannot map ${backing.path}: it is empty`, { path: backing.path });
    const dev = await native.dmCreate(name, mapperUuid(name));
    durableStep();
    try {
      await native.dmLoadCrypt(name, under.sectors, under.dev, true);
      durableStep();
      await native.dmResume(name);
      durableStep();
      native.dmNodeMakeSync(name, dev);
      durableStep();
    } catch (err) {
      await native.dmRemove(name).catch(() => undefined); // else the next close retries
      try { native.dmNodeRemoveSync(name); } catch { /* likewise */ }
      throw err;
    }
    return { rung: 'ioctl', ...(under.loop ? { loop: under.loop.path } : {}) };
  } finally {
    // The mapping holds the loop device now (or nothing does, and autoclear detaches it).
    if (under.loop) await closeFd(under.loop.fd);
  }
}

/**
 * Qubes' command line, over the same device the ioctls would use: for an image, the loop
 * device attached here (autoclear, no partition scan), so cryptsetup opens a device node,
 * never a path in a pool that someone could swap.
 */
async function openByCryptsetup(name: string, backing: MappingBacking, legacy: boolean): Promise<Omit<EphemeralMapping, 'path'>> {
  const under = await backingDevice(backing, legacy);
  try {
    durableStep();
    const device = under.loop?.path ?? await deviceNode(under.dev);
    await run('cryptsetup', [
      '--key-file=/dev/urandom', `--cipher=${CIPHER}`, `--key-size=${KEY_BITS}`, '--type=plain', '--allow-discards',
      '--', 'open', device, name,
    ], { timeoutMs: 120_000 });
    durableStep();
    return { rung: 'cryptsetup', ...(under.loop ? { loop: under.loop.path } : {}) };
  } finally {
    if (under.loop) await closeFd(under.loop.fd);
  }
}

/** The kernel's own node of a block device (devtmpfs names it in sysfs). */
async function deviceNode(dev: DeviceNumber): Promise<string> {
  const uevent = await readFile(`/sys/dev/block/${dev.major}:${dev.minor}/uevent`, 'utf8');
  const name = /^DEVNAME=(\S+)$/m.exec(uevent)?.[1];
  if (!name) throw new StoragePoolException(`Block device ${dev.major}:${dev.minor} has no node name in sysfs`, { path: `/sys/dev/block/${dev.major}:${dev.minor}` });
  return `/dev/${name}`;
}

/**
 * Zeroes the first 64 KiB (or the whole device, if smaller) through the mapping, with
 * BLKZEROOUT where the kernel has it (one call, past the page cache, waited for: what the VM
 * reads next is zeros), else written. Never by discard: under dm-crypt a discarded block
 * reads back as noise, not zeros. The ioctl rung's node is qvol's own; cryptsetup's is
 * udev's link to it.
 */
async function zeroStart(path: string, rung: CryptRung): Promise<void> {
  const fh = await open(path, constants.O_WRONLY | (rung === 'ioctl' ? constants.O_NOFOLLOW : 0));
  try {
    const size = native.blockGeometrySync(fh.fd).size;
    await native.zeroOut(fh.fd, 0, Math.min(size, BYTES_TO_ZERO), { isBlockDevice: true, unmap: false });
  } finally {
    await fh.close();
  }
  durableStep();
}

const fstatOf = promisify(fstat);
const closeFd = (fd: number): Promise<void> => new Promise((resolve) => close(fd, () => resolve()));
