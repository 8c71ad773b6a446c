/**
 * `qvol daemon` as a process, on file-reflink pools on this machine's filesystem: the
 * driver contract through the socket, Qubes' exception classes in the replies, calls at
 * once, bad and oversized requests, a peer that is not root, a cancelled import, and a
 * daemon killed in the middle of an import and started again.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonClient } from '../helpers/daemon-client.js';
import { patternBuffer } from '../helpers/files.js';
import { scratchDir } from '../helpers/scratch.js';

const MAIN = join(import.meta.dirname, '../../dist/cli/main.js');
const MiB = 2 ** 20;
const isRoot = process.getuid?.() === 0;
const dir = scratchDir('daemon');
const socketPath = join(dir, 'daemon.sock');
const poolA = { name: 'a', driver: 'file-reflink', dir_path: join(dir, 'a'), setup_check: false };
const poolB = { name: 'b', driver: 'file-reflink', dir_path: join(dir, 'b'), setup_check: false };

/** A volume config as qubesd sends it. */
const vol = (vm: string, name: string, over: Record<string, unknown> = {}) => ({
  name, vid: `appvms/${vm}/${name}`, vm, rw: true, save_on_stop: true, snap_on_start: false, revisions_to_keep: 1, size: MiB, ...over,
});

let daemon: ChildProcess | undefined;
/** Starts the daemon and returns a client once it answers (a killed one's socket may linger). */
async function startDaemon(...args: string[]): Promise<DaemonClient> {
  daemon = spawn(process.execPath, [MAIN, 'daemon', '--socket', socketPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  return DaemonClient.whenAnswering(socketPath);
}
async function stopDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const d = daemon;
  if (!d || d.exitCode !== null) return;
  const exited = new Promise((r) => d.once('exit', r));
  d.kill(signal);
  await exited;
  daemon = undefined;
}

describe.skipIf(!isRoot)('qvol daemon', () => {
  let client: DaemonClient;
  beforeAll(async () => {
    client = await startDaemon();
    await client.call('pool.setup', { pool: poolA });
    await client.call('pool.setup', { pool: poolB });
  });
  afterAll(async () => {
    client?.close();
    await stopDaemon();
  });

  it('makes the socket for root alone, and says what it serves', async () => {
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    const hello = await client.call<{ protocol: number; drivers: Record<string, Record<string, boolean>> }>('hello');
    expect(hello.protocol).toBe(1);
    expect(hello.drivers['lvm_thin']).toMatchObject({ volume_group: true, thin_pool: true });
  });

  it('runs the Qubes contract through the socket: vids, start, commit, revisions, revert, resize, imports, export, remove', async () => {
    const { vid } = await client.call<{ vid: string }>('pool.init_volume', { pool: poolA, vm: 'work', volume: { name: 'private' } });
    expect(vid).toBe('appvms/work/private');
    const v = vol('work', 'private');
    const on = { pool: poolA, volume: v };
    await client.call('volume.create', on);
    expect(await client.call('volume.verify', on)).toBe(true);
    await client.call('volume.start', on);
    expect(await client.call('volume.is_dirty', on)).toBe(true);
    const info = await client.call<{ path: string; block_device: { path: string; rw: boolean } }>('volume.info', on);
    expect(info.block_device).toMatchObject({ path: info.path, rw: true });
    writeFileSync(info.path, patternBuffer(MiB, 1));
    await client.call('volume.stop', on);
    expect(await client.call('volume.is_dirty', on)).toBe(false);
    const revisions = await client.call<Record<string, string>>('volume.revisions', on);
    expect(Object.keys(revisions)).toHaveLength(1);
    // The data is the committed state, read through export.
    const exported = await client.call<string>('volume.export', on);
    expect(readFileSync(exported).equals(patternBuffer(MiB, 1))).toBe(true);
    await client.call('volume.export_end', { ...on, path: exported });
    // Revert to the empty state, and back: the replaced state is kept as a revision.
    await client.call('volume.revert', { ...on, revision: Object.keys(revisions)[0] });
    expect(readFileSync(await client.call<string>('volume.export', on)).every((b) => b === 0)).toBe(true);
    // Resize; qubesd then sends the new size with each call.
    expect(await client.call('volume.resize', { ...on, size: 2 * MiB })).toBe(2 * MiB);
    const bigger = { pool: poolA, volume: { ...v, size: 2 * MiB } };
    expect((await client.call<{ size: number }>('volume.info', bigger)).size).toBe(2 * MiB);
    // import_data: a path qubesd writes, then commit.
    const target = await client.call<string>('volume.import_data', { ...bigger, size: 2 * MiB });
    writeFileSync(target, patternBuffer(2 * MiB, 2));
    await client.call('volume.import_data_end', { ...bigger, success: true });
    // import_volume from another pool.
    const copy = vol('copy', 'private', { size: 2 * MiB });
    await client.call('volume.create', { pool: poolB, volume: copy });
    expect(await client.call('volume.import_volume', { pool: poolB, volume: copy, source: bigger })).toMatch(/reflink|copy|read/);
    const copied = await client.call<string>('volume.export', { pool: poolB, volume: copy });
    expect(readFileSync(copied).equals(patternBuffer(2 * MiB, 2))).toBe(true);
    await client.call('volume.remove', { pool: poolB, volume: copy });
    await client.call('volume.remove', bigger);
    expect(existsSync(join(dir, 'a', 'appvms', 'work', 'private.img'))).toBe(false);
  });

  it('answers with the Qubes exception classes and messages, changing nothing', async () => {
    const v = vol('errs', 'private');
    const on = { pool: poolA, volume: v };
    await client.call('volume.create', on);
    await client.call('volume.start', on);
    const dirty = await client.request('volume.import_data', { ...on, size: MiB });
    expect(dirty.error).toMatchObject({ type: 'StoragePoolException', code: 'STORAGE_POOL', message: 'Cannot import data to dirty volume appvms/errs/private, stop the qube first' });
    expect((await client.request('volume.revert', on)).error).toMatchObject({ type: 'StoragePoolException', message: 'Cannot revert: appvms/errs/private is not cleanly stopped' });
    expect((await client.request('volume.info', { pool: poolA, volume: { ...v, ephemeral: true } })).error)
      .toMatchObject({ type: 'QubesValueError', message: 'Cannot enable ephemeral on snap_on_start or save_on_stop or non-dom0 or not writable volume' });
    expect((await client.request('volume.start', { pool: { ...poolA, driver: 'nope' }, volume: v })).error).toMatchObject({ code: 'UNKNOWN_DRIVER' });
    expect((await client.request('volume.start', { pool: poolA, volume: { ...v, size: 'big' } })).error)
      .toMatchObject({ type: 'UsageError', message: 'The call\'s volume\'s size is not a whole number.' });
    expect(await client.call('volume.is_dirty', on)).toBe(true);
    await client.call('volume.stop', on);
    expect((await client.request('volume.revert', { ...on, revision: 'nope' })).error).toMatchObject({ type: 'RevisionNotFoundError', code: 'REVISION_NOT_FOUND' });
    await client.call('volume.remove', on);
  });

  it('runs calls at once, each volume\'s in order, replies matched by id', async () => {
    const vms = Array.from({ length: 8 }, (_, i) => ({ pool: poolA, volume: vol(`par${i}`, 'private') }));
    await Promise.all(vms.map((on) => client.call('volume.create', on)));
    // Start and stop of each volume sent back to back, all volumes at once: each stop
    // comes after its start (the volume's lock), every reply reaches its caller.
    const replies = await Promise.all(vms.flatMap((on) => [client.request('volume.start', on), client.request('volume.stop', on)]));
    expect(replies.every((r) => r.error === undefined)).toBe(true);
    const dirty = await Promise.all(vms.map((on) => client.call('volume.is_dirty', on)));
    expect(dirty.every((d) => d === false)).toBe(true);
    await Promise.all(vms.map((on) => client.call('volume.remove', on)));
  });

  it('answers a bad request with an error and goes on; closes a connection whose request is too long', async () => {
    const raw = await DaemonClient.connect(socketPath);
    raw.writeRaw('not json\n');
    expect((await raw.nextUnmatched()).error).toMatchObject({ type: 'ProtocolError', message: 'The request is not JSON.' });
    raw.writeRaw(`${JSON.stringify({ v: 1, method: 'hello' })}\n`);
    expect((await raw.nextUnmatched()).error?.message).toMatch(/no id/);
    raw.writeRaw(`${JSON.stringify({ v: 2, id: 7, method: 'hello' })}\n`);
    expect(await raw.nextUnmatched()).toMatchObject({ id: 7, error: { message: 'The request speaks protocol 2; this daemon speaks 1.' } });
    raw.writeRaw(`${JSON.stringify({ v: 1, id: 8, method: 'hello', extra: 1 })}\n`);
    expect(await raw.nextUnmatched()).toMatchObject({ id: 8, error: { message: 'The request has an unknown field \'extra\'.' } });
    expect((await raw.request('volume.start', { pool: poolA, volume: [] })).error?.message).toBe('The call\'s volume is not an object.');
    raw.writeRaw('x'.repeat(2 * MiB));
    await raw.closed;
    expect(raw.unmatched.at(-1)?.error?.message).toMatch(/longer than 1048576 bytes/);
    // The daemon serves on.
    expect(await client.call('volume.verify', { pool: poolA, volume: vol('none', 'volatile', { save_on_stop: false }) })).toBe(true);
  });

  it('drops a client that stops reading its replies, and serves the others meanwhile', async () => {
    const stalled = await DaemonClient.connect(socketPath);
    stalled.socket.pause();
    // ~24 MiB of replies the client never reads: past the daemon's 16 MiB, it is dropped.
    stalled.writeRaw(Array.from({ length: 40_000 }, (_, id) => `${JSON.stringify({ v: 1, id, method: 'hello' })}\n`).join(''));
    const other = await DaemonClient.connect(socketPath);
    expect(await other.call('hello')).toMatchObject({ protocol: 1 });
    other.close();
    // Dropped: what it had been sent, then the end, whenever it reads again.
    stalled.socket.resume();
    await stalled.closed;
    expect(stalled.unmatched.length).toBeLessThan(40_000);
  });

  it('refuses a peer that is not root, by the kernel\'s word, even where the socket lets it connect; admits --group\'s members', async () => {
    /** What a hello from uid/gid 65534 (nobody) on `path` gets back. */
    const helloAsNobody = (path: string) => {
      const script = `import socket, json, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b'{"v":1,"id":1,"method":"hello"}\\n')
print(s.makefile().readline())`;
      const r = spawnSync('python3', ['-c', script, path], { uid: 65534, gid: 65534, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { error?: { type: string; message: string }; result?: unknown };
    };
    chmodSync(socketPath, 0o666);
    chmodSync(dir, 0o711);
    const grouped = join(dir, 'group.sock');
    const withGroup = spawn(process.execPath, [MAIN, 'daemon', '--socket', grouped, '--group', '65534'], { stdio: 'ignore' });
    try {
      expect(helloAsNobody(socketPath)).toMatchObject({ id: null, error: { type: 'PermissionDenied', message: 'Only root may use the qvol daemon.' } });
      // Answering, the daemon has given the socket to the group.
      (await DaemonClient.whenAnswering(grouped)).close();
      expect(statSync(grouped).mode & 0o777).toBe(0o660);
      expect(statSync(grouped).gid).toBe(65534);
      expect(helloAsNobody(grouped)).toMatchObject({ result: { protocol: 1 } });
    } finally {
      withGroup.kill('SIGTERM');
      await new Promise((r) => withGroup.once('exit', r));
      chmodSync(socketPath, 0o600);
      chmodSync(dir, 0o700);
    }
  });

  it('cancels an import when asked, leaving the volume as it was', async () => {
    const src = { pool: poolB, volume: vol('bigsrc', 'private', { size: 256 * MiB }) };
    const dst = { pool: poolA, volume: vol('bigdst', 'private', { size: 256 * MiB }) };
    await client.call('volume.create', src);
    await client.call('volume.create', dst);
    const target = await client.call<string>('volume.import_data', { ...src, size: 256 * MiB });
    writeFileSync(target, patternBuffer(256 * MiB, 3));
    await client.call('volume.import_data_end', { ...src, success: true });
    const importing = client.request('volume.import_volume', { ...dst, source: src }, 'big');
    await client.call('cancel', { id: 'big' });
    const reply = await importing;
    // The cancel is read with the call, so it lands before the copy ends.
    expect(reply.error).toMatchObject({ type: 'CancelledError', code: 'CANCELLED' });
    expect(readdirSync(join(dir, 'a', 'appvms', 'bigdst')).filter((f) => /import|tmp/.test(f))).toEqual([]);
  });

  it('loses nothing when killed in the middle of an import: a new daemon finds the volume as it was', async () => {
    const dst = { pool: poolA, volume: vol('bigdst', 'private', { size: 256 * MiB }) };
    const before = await client.call<Record<string, string>>('volume.revisions', dst);
    const importing = client.request('volume.import_volume', { ...dst, source: { pool: poolB, volume: vol('bigsrc', 'private', { size: 256 * MiB }) } });
    importing.catch(() => undefined);
    // Killed once the copy has made its staging file (or after 2 s, if it is that fast).
    const staging = () => readdirSync(join(dir, 'a', 'appvms', 'bigdst')).some((f) => /import|tmp/.test(f));
    for (let i = 0; i < 200 && !staging(); i++) await new Promise((r) => setTimeout(r, 10));
    await stopDaemon('SIGKILL');
    await expect(importing).rejects.toThrow(/closed the connection/);
    client = await startDaemon();
    expect(await client.call('volume.is_dirty', dst)).toBe(false);
    // The next operation cleans what the killed one left, and the volume works.
    await client.call('volume.start', dst);
    await client.call('volume.stop', dst);
    const after = await client.call<Record<string, string>>('volume.revisions', dst);
    expect(Object.keys(after).length).toBeGreaterThanOrEqual(Object.keys(before).length);
    await client.call('volume.remove', dst);
    await client.call('volume.remove', { pool: poolB, volume: vol('bigsrc', 'private', { size: 256 * MiB }) });
  });
});
