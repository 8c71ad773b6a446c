/**
 * Outputs qvol must not destroy: `volume export -o PATH` writes a FIFO, a character device or
 * a link to one (/dev/stdout) in place, never replacing it with a regular file, and writes a
 * block device only when told to with --force.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, lstatSync, openSync, readFileSync, readSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runQvol } from '../helpers/cli.js';
import { fsTierBlocker, skipReason } from '../helpers/gates.js';
import { attachLoopDevice, type LoopDevice } from '../helpers/loopfs.js';
import { scratchDir } from '../helpers/scratch.js';

const MiB = 2 ** 20;
const blocker = fsTierBlocker();
const home = scratchDir('outputs');

const qvol = (...args: string[]) => runQvol(args);

/** `args` without --force is refused as a block device, and the device (filled with 0xee) is unchanged. */
async function expectDeviceRefused(device: string, ...args: string[]): Promise<void> {
  const r = await qvol(...args);
  expect(r.code).toBe(2);
  expect(r.err).toContain('is a block device');
  const head = Buffer.alloc(16);
  const fd = openSync(device, 'r');
  readSync(fd, head, 0, 16, 0);
  closeSync(fd);
  expect(head.every((b: number) => b === 0xee)).toBe(true);
}

/** Runs the export into a FIFO at `path` while `cat` drains it into `into`. */
async function throughFifo(path: string, into: string, args: string[]): Promise<number> {
  const reader = spawn('sh', ['-c', `cat "$1" > "$2"`, 'sh', path, into]);
  const done = new Promise((resolve) => reader.on('close', resolve));
  const r = await qvol(...args);
  await done;
  return r.code;
}

describe.skipIf(blocker !== undefined)(skipReason(blocker, 'export outputs'), () => {
  let dev: LoopDevice;
  beforeAll(async () => {
    process.env.QVOL_HOME = home;
    expect((await qvol('vm', 'create', '--class', 'standalone', 's')).code).toBe(0);
    expect((await qvol('volume', 'resize', 's:private', '4M')).code).toBe(0);
    expect((await qvol('volume', 'import', 's:private', '-i', makeInput())).code).toBe(0);
    dev = attachLoopDevice(8 * MiB, Buffer.alloc(MiB, 0xee));
  });
  afterAll(() => dev?.detach());

  function makeInput(): string {
    const input = join(home, 'input.img');
    const data = Buffer.alloc(4 * MiB);
    data.fill(0x5a, 0, MiB);
    writeFileSync(input, data);
    return input;
  }

  it('writes a FIFO in place, also through a symbolic link, in every format', async () => {
    const fifo = join(home, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const link = join(home, 'stdout-like');
    symlinkSync(fifo, link);
    for (const format of ['raw', 'sparse']) {
      const got = join(home, `got.${format}`);
      expect(await throughFifo(fifo, got, ['volume', 'export', 's:private', '-f', format, '-o', link])).toBe(0);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(statSync(fifo).isFIFO()).toBe(true);
      const file = join(home, `file.${format}`);
      expect((await qvol('volume', 'export', 's:private', '-f', format, '-o', file)).code).toBe(0);
      expect(readFileSync(got).equals(readFileSync(file))).toBe(true);
    }
  });

  it('writes a character device in place', async () => {
    expect((await qvol('volume', 'export', 's:private', '-f', 'sparse', '-o', '/dev/null')).code).toBe(0);
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  it('refuses a block device without --force, leaving it as it was; writes it with --force', async () => {
    await expectDeviceRefused(dev.path, 'volume', 'export', 's:private', '-o', dev.path);
    expect((await qvol('volume', 'export', 's:private', '-o', dev.path, '--force')).code).toBe(0);
    const after = readFileSync(dev.path).subarray(0, 4 * MiB);
    expect(after.equals(readFileSync(join(home, 'input.img')))).toBe(true);
    expect(statSync(dev.path).isBlockDevice()).toBe(true);
  });

  it('writes a descriptor name (/dev/fd/N, as /dev/stdout is under `> file`) in place, leaving the link a link', async () => {
    const out = join(home, 'redirected.img');
    const fd = openSync(out, 'w');
    try {
      expect((await qvol('volume', 'export', 's:private', '-f', 'raw', '-o', `/dev/fd/${fd}`)).code).toBe(0);
      expect((await qvol('copy', join(home, 'input.img'), `/dev/fd/${fd}`)).code).toBe(0);
    } finally {
      closeSync(fd);
    }
    // Both wrote the same 4 MiB from offset 0 of the shell's file.
    expect(readFileSync(out).equals(readFileSync(join(home, 'input.img')))).toBe(true);
    expect(lstatSync('/dev/stdout').isSymbolicLink()).toBe(true);
  });
});

describe.skipIf(blocker !== undefined)(skipReason(blocker, 'copy outputs'), () => {
  let dev: LoopDevice;
  const input = join(home, 'copy-input.img');
  beforeAll(() => {
    const data = Buffer.alloc(2 * MiB);
    data.fill(0x3c, MiB);
    writeFileSync(input, data);
    dev = attachLoopDevice(4 * MiB, Buffer.alloc(MiB, 0xee));
  });
  afterAll(() => dev?.detach());

  it('qvol copy writes a FIFO in place as a raw stream, also through a link', async () => {
    const fifo = join(home, 'copy-pipe');
    execFileSync('mkfifo', [fifo]);
    const link = join(home, 'copy-pipe-link');
    symlinkSync(fifo, link);
    const got = join(home, 'copy-got');
    expect(await throughFifo(link, got, ['copy', input, link])).toBe(0);
    expect(statSync(fifo).isFIFO()).toBe(true);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(got).equals(readFileSync(input))).toBe(true);
  });

  it('qvol copy writes a character device in place', async () => {
    expect((await qvol('copy', input, '/dev/null')).code).toBe(0);
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  it('qvol copy refuses a block device without --force, leaving it as it was; writes it with --force', async () => {
    await expectDeviceRefused(dev.path, 'copy', input, dev.path);
    expect((await qvol('copy', '--force', input, dev.path)).code).toBe(0);
    expect(readFileSync(dev.path).subarray(0, 2 * MiB).equals(readFileSync(input))).toBe(true);
  });
});
