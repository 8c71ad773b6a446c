/**
 * Volumes through pipes, end to end through the CLI: `qvol volume export | qvol volume
 * import` between file-reflink pools on btrfs, XFS and ext4, in raw and sparse, with the
 * cases a user meets: an empty volume, a size that is not whole blocks, a running VM (the
 * export is its pre-start data), a writer that dies mid-stream, an importer killed
 * mid-stream, a flipped byte and a wrong --size (all refused, the volume unchanged).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocated, makeSparseFile, sameBytes, spreadChunks } from '../helpers/files.js';
import { fsTierBlocker, skipReason } from '../helpers/gates.js';
import { mountLoopFs, type FsKind, type LoopFs } from '../helpers/loopfs.js';
import { scratchDir } from '../helpers/scratch.js';

const MAIN = join(import.meta.dirname, '../../dist/cli/main.js');
const MiB = 2 ** 20;
const SIZE = 64 * MiB;
const blocker = fsTierBlocker(['mkfs.btrfs', 'mkfs.xfs', 'mkfs.ext4', 'simg2img']);

let home: string;
let work: string;
const fss = new Map<FsKind, LoopFs>();

function qvol(...args: string[]): string {
  return execFileSync(process.execPath, [MAIN, ...args], { env: { ...process.env, QVOL_HOME: home }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const json = (...args: string[]) => JSON.parse(qvol(...args, '--json'));

/** A shell pipeline with `qvol` on PATH-less form; returns status and stderr. */
function sh(script: string): { code: number; err: string } {
  try {
    execFileSync('bash', ['-o', 'pipefail', '-c', script], { env: { ...process.env, QVOL_HOME: home, Q: `${process.execPath} ${MAIN}` }, stdio: ['ignore', 'ignore', 'pipe'] });
    return { code: 0, err: '' };
  } catch (err) {
    const e = err as { status: number; stderr: Buffer };
    return { code: e.status, err: String(e.stderr) };
  }
}

/** The volume's committed data, as a raw export to a file. */
function dataOf(ref: string): string {
  const out = join(work, `${ref.replace(':', '-')}-${Date.now()}.img`);
  qvol('volume', 'export', ref, '-o', out);
  return out;
}

let vms = 0;
/** A stopped standalone VM in the pool on `kind` whose private volume holds `seed`. */
function vmWith(kind: FsKind, seed?: string): string {
  const name = `vm${vms++}`;
  qvol('vm', 'create', '--class', 'standalone', '-P', kind, name);
  if (seed) qvol('volume', 'import', `${name}:private`, '-i', seed);
  return name;
}

describe.skipIf(blocker !== undefined)(skipReason(blocker, 'volume streams through the CLI'), () => {
  let seed: string;
  beforeAll(() => {
    home = scratchDir('home');
    work = scratchDir('streams');
    for (const kind of ['btrfs', 'xfs', 'ext4'] as const) {
      const fs = mountLoopFs(kind, 512);
      fss.set(kind, fs);
      qvol('pool', 'add', kind, 'file-reflink', '-o', `dir_path=${join(fs.dir, 'pool')}`, '-o', `setup_check=${kind === 'ext4' ? 'False' : 'True'}`);
    }
    seed = join(work, 'seed.img');
    makeSparseFile(seed, SIZE, spreadChunks(SIZE, 12, 256 * 1024));
  });
  afterAll(() => {
    for (const fs of fss.values()) fs.unmount();
    rmSync(home, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it.each([
    ['btrfs', 'xfs', 'sparse'], ['xfs', 'ext4', 'sparse'], ['ext4', 'btrfs', 'sparse'], ['btrfs', 'btrfs', 'sparse'],
    ['btrfs', 'xfs', 'raw'], ['xfs', 'ext4', 'raw'], ['ext4', 'btrfs', 'raw'],
  ] as const)('%s → %s, %s: equal, holes kept', (from, to, format) => {
    const a = vmWith(from, seed);
    const b = vmWith(to);
    // a raw pipe carries no size: the importer declares it (Qubes' ImportWithSize)
    const size = format === 'raw' ? ` --size ${SIZE}` : '';
    const r = sh(`$Q volume export ${a}:private -f ${format} | $Q volume import ${b}:private -f ${format}${size}`);
    expect(r, r.err).toMatchObject({ code: 0 });
    const out = dataOf(`${b}:private`);
    expect(sameBytes(seed, out)).toBe(true);
    expect(statSync(out).size).toBe(SIZE);
    // the target pool's file: data and a little metadata, no filled holes
    const file = join(fss.get(to)!.dir, 'pool', 'appvms', b, 'private.img');
    expect(allocated(file)).toBeLessThanOrEqual(allocated(seed) + MiB);
  });

  it('an empty volume and one whose size is not whole blocks', () => {
    const a = vmWith('xfs');
    const b = vmWith('ext4');
    expect(sh(`$Q volume export ${a}:private -f sparse | $Q volume import ${b}:private -f sparse`).code).toBe(0);
    expect(json('volume', 'info', `${b}:private`).size).toBe(json('volume', 'info', `${a}:private`).size);
    const odd = join(work, 'odd.img');
    makeSparseFile(odd, 16 * MiB + 512, [{ offset: 16 * MiB - 4096, length: 4096 + 512 }]);
    qvol('volume', 'import', `${a}:private`, '-i', odd);
    expect(sh(`$Q volume export ${a}:private -f sparse | $Q volume import ${b}:private -f sparse`).code).toBe(0);
    expect(json('volume', 'info', `${b}:private`).size).toBe(16 * MiB + 512); // the stream carries the exact size
    expect(sameBytes(odd, dataOf(`${b}:private`))).toBe(true);
  });

  it('a running VM exports its pre-start data', () => {
    const a = vmWith('btrfs', seed);
    qvol('vm', 'start', a);
    try {
      const live = json('volume', 'info', `${a}:private`).path as string;
      writeFileSync(live, Buffer.alloc(MiB, 0x5a), { flag: 'r+' });
      const stream = join(work, 'running.simg');
      expect(sh(`$Q volume export ${a}:private -f sparse > ${stream}`).code).toBe(0);
      const expanded = join(work, 'running.img');
      execFileSync('simg2img', [stream, expanded]);
      expect(sameBytes(seed, expanded)).toBe(true);
    } finally {
      qvol('vm', 'stop', a);
    }
  });

  describe('refuses a bad stream and leaves the volume as it was', () => {
    let b: string;
    let before: string;
    let stream: string;
    beforeAll(() => {
      const a = vmWith('btrfs', seed);
      stream = join(work, 'good.simg');
      expect(sh(`$Q volume export ${a}:private -f sparse > ${stream}`).code).toBe(0);
      b = vmWith('xfs');
      const other = join(work, 'other.img');
      makeSparseFile(other, SIZE, [{ offset: MiB, length: MiB }], 99);
      qvol('volume', 'import', `${b}:private`, '-i', other);
      before = dataOf(`${b}:private`);
    });
    const unchanged = () => expect(sameBytes(before, dataOf(`${b}:private`))).toBe(true);

    it('the writer dies mid-stream', () => {
      const r = sh(`head -c ${2 * MiB} ${stream} | $Q volume import ${b}:private -f sparse`);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/refused at byte \d+: the stream ended early/);
      unchanged();
    });

    it('one flipped byte', () => {
      const bad = join(work, 'flipped.simg');
      const bytes = readFileSync(stream);
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0x10, bytes.length - 100); // inside the last RAW chunk's data
      writeFileSync(bad, bytes);
      const r = sh(`$Q volume import ${b}:private -f sparse -i ${bad}`);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/CRC32/);
      unchanged();
    });

    it('a --size the stream does not hold', () => {
      const r = sh(`$Q volume import ${b}:private -f sparse --size 32M < ${stream}`);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/holds 67108864 bytes .* the size given is 33554432/);
      const raw = sh(`$Q volume export ${b}:private | $Q volume import ${b}:private --size 32M`);
      expect(raw.code).not.toBe(0);
      unchanged();
    });

    it('the importer killed mid-stream, then a whole import', async () => {
      const child = spawn('bash', ['-c', `(head -c ${4 * MiB} ${stream}; sleep 30) | exec $Q volume import ${b}:private -f sparse`], {
        env: { ...process.env, QVOL_HOME: home, Q: `${process.execPath} ${MAIN}` }, stdio: 'ignore', detached: true,
      });
      // Killed only once the import is surely under way: its staging image exists.
      const staging = (JSON.parse(qvol('volume', 'info', `${b}:private`, '--json')) as { path: string }).path.replace(/-dirty\.img$/, '-import.img');
      for (const end = Date.now() + 20_000; !existsSync(staging); await new Promise((r) => setTimeout(r, 20))) {
        if (Date.now() > end) throw new Error(`the import never started: no ${staging}`);
      }
      process.kill(-child.pid!, 'SIGKILL');
      await new Promise((r) => child.on('exit', r));
      unchanged();
      expect(sh(`$Q volume import ${b}:private -f sparse < ${stream}`).code).toBe(0);
      expect(sameBytes(seed, dataOf(`${b}:private`))).toBe(true);
    });
  });
});
