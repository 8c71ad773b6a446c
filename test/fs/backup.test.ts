/**
 * Backup through the CLI, as a user runs it: init, send, an incremental send after a
 * change, ls, restore into an empty QVOL_HOME (every VM, templates first, equal bytes,
 * holes kept), verify --data; and an archive that was tampered with or rolled back is
 * refused, naming what is wrong.
 */
import { cpSync, existsSync, openSync, rmSync, closeSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runQvol } from '../helpers/cli.js';
import { sameBytes } from '../helpers/files.js';
import { scratchDir } from '../helpers/scratch.js';

const MiB = 2 ** 20;
const MAIN = join(import.meta.dirname, '../../dist/cli/main.js');
const EXTRACTOR = join(import.meta.dirname, '../../contrib/qvol-extract.py');

async function run(home: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  process.env.QVOL_HOME = home;
  process.env.QVOL_BACKUP_PASSPHRASE_COMMAND = 'printf %s "correct horse"';
  return runQvol(args);
}

async function ok(home: string, ...args: string[]): Promise<string> {
  const r = await run(home, ...args);
  expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(0);
  return r.out;
}

async function json<T>(home: string, ...args: string[]): Promise<T> {
  return JSON.parse(await ok(home, ...args, '--json')) as T;
}

/** Starts `vm`, writes `data` at `offset` of its `volume`, stops it (a commit). */
async function write(home: string, vm: string, volume: string, offset: number, data: Buffer): Promise<void> {
  const devices = await json<Array<{ volume: string; path: string }>>(home, 'vm', 'start', vm);
  const fd = openSync(devices.find((d) => d.volume === volume)!.path, 'r+');
  writeSync(fd, data, 0, data.length, offset);
  closeSync(fd);
  await ok(home, 'vm', 'stop', vm);
}

/** A file holding a volume's committed bytes, through `volume export -f raw`. */
async function exported(home: string, ref: string): Promise<string> {
  const out = join(scratchDir('exp'), 'out.img');
  await ok(home, 'volume', 'export', ref, '-f', 'raw', '-o', out);
  return out;
}

function sameFiles(a: string, b: string): boolean {
  return spawnSync('cmp', ['-s', a, b]).status === 0;
}

const pattern = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));

/** A home holding VM `s` whose private volume (`size`) has `data` at `at`, and a new archive of 64 KiB chunks. */
async function vmAndArchive(label: string, size: string, at: number, data: Buffer): Promise<{ home: string; dest: string; env: NodeJS.ProcessEnv }> {
  const home = scratchDir(`bk-${label}`);
  const dest = join(scratchDir(`bk-${label}-dest`), 'archive');
  await ok(home, 'vm', 'create', '--class', 'standalone', 's');
  await ok(home, 'volume', 'resize', 's:private', size);
  await write(home, 's', 'private', at, data);
  await ok(home, 'backup', 'init', dest, '--chunk-size', '64K');
  return { home, dest, env: { ...process.env, QVOL_HOME: home, QVOL_BACKUP_PASSPHRASE_COMMAND: 'printf %s "correct horse"' } };
}

describe('backup', () => {
  it('sends, sends again incrementally, restores every VM into an empty home, equal and sparse', async () => {
    const home = scratchDir('bk-home');
    const dest = join(scratchDir('bk-dest'), 'archive');
    await ok(home, 'vm', 'create', '--class', 'template', 'debian');
    await ok(home, 'volume', 'resize', 'debian:root', '64M');
    await write(home, 'debian', 'root', 3 * MiB, pattern(2 * MiB, 1));
    await ok(home, 'vm', 'create', '--class', 'app', '--template', 'debian', 'work');
    await ok(home, 'volume', 'resize', 'work:private', '32M');
    await write(home, 'work', 'private', 8 * MiB, pattern(MiB, 2));

    expect((await json<{ encrypted: boolean }>(home, 'backup', 'init', dest)).encrypted).toBe(true);
    const first = await json<{ vms: Array<{ name: string; volumes: Array<{ name: string; new: number }> }> }>(home, 'backup', 'send', dest, '--all');
    expect(first.vms.map((v) => v.name).sort()).toEqual(['debian', 'work']);
    // The app VM's root is its template's: only its private is stored.
    expect(first.vms.find((v) => v.name === 'work')!.volumes.map((v) => v.name)).toEqual(['private']);

    // Unchanged since the last send: known by its committed image's identity, not read again.
    const unchanged = await json<{ vms: Array<{ volumes: Array<{ read: boolean; new: number }> }> }>(home, 'backup', 'send', dest, 'work');
    expect(unchanged.vms[0]!.volumes[0]).toMatchObject({ read: false, new: 0 });
    await write(home, 'work', 'private', 20 * MiB, pattern(4096, 3));
    const second = await json<{ vms: Array<{ volumes: Array<{ new: number; chunks: number; read: boolean }> }> }>(home, 'backup', 'send', dest, 'work', '--tag', 'before-upgrade');
    expect(second.vms[0]!.volumes[0]).toMatchObject({ new: 1, read: true });

    const sessions = await json<Array<{ id: string }>>(home, 'backup', 'ls', dest);
    expect(sessions.length).toBe(3);
    const tagged = await json<Array<{ id: string; tag: string }>>(home, 'backup', 'ls', dest, '--tag', 'before-upgrade');
    expect(tagged.map((t) => t.id)).toEqual([sessions[2]!.id]);
    expect(await ok(home, 'backup', 'ls', dest, 'work')).toMatch(/before-upgrade +work +private 32\.0 MiB/);
    expect((await json<{ problems: unknown[]; chunksChecked: number }>(home, 'backup', 'verify', dest, '--data')).problems).toEqual([]);

    const fresh = scratchDir('bk-restored');
    const checked = await json<{ verifyOnly: boolean; vms: Array<{ volumes: Array<{ written: number }> }> }>(fresh, 'backup', 'restore', dest, '--verify-only');
    expect(checked.verifyOnly).toBe(true);
    expect(checked.vms.flatMap((v) => v.volumes).reduce((n, v) => n + v.written, 0)).toBeGreaterThan(3 * MiB);
    expect(JSON.parse(await ok(fresh, 'vm', 'ls', '--json'))).toEqual([]); // nothing made
    const restored = await json<{ vms: Array<{ name: string }> }>(fresh, 'backup', 'restore', dest);
    expect(restored.vms.map((v) => v.name)).toEqual(['debian', 'work']);
    for (const ref of ['debian:root', 'debian:private', 'work:private']) {
      expect(sameFiles(await exported(fresh, ref), await exported(home, ref)), ref).toBe(true);
    }
    // The emergency extractor, with nothing but Debian's Python, restores the same bytes.
    const extracted = join(scratchDir('bk-extract'), 'private.img');
    const ex = spawnSync('/usr/bin/python3', [EXTRACTOR, dest, 'work:private', extracted], { env: { ...process.env, QVOL_BACKUP_PASSPHRASE: 'correct horse' }, encoding: 'utf8' });
    expect(ex.status, ex.stderr).toBe(0);
    expect(sameFiles(extracted, await exported(home, 'work:private'))).toBe(true);
    expect(statSync(extracted).blocks * 512).toBeLessThan(4 * MiB);
    const img = join(fresh, 'pools', 'default', 'appvms', 'work', 'private.img');
    expect(statSync(img).blocks * 512).toBeLessThan(4 * MiB);

    // An older session of one VM, under another name.
    await ok(fresh, 'backup', 'restore', dest, 'work', '--session', sessions[0]!.id.slice(0, 8), '--rename', 'work=old');
    const old = readFileSync(await exported(fresh, 'old:private'));
    expect(old.subarray(20 * MiB, 20 * MiB + 4096).every((b) => b === 0)).toBe(true);
    expect(old.subarray(8 * MiB, 9 * MiB).equals(pattern(MiB, 2))).toBe(true);
    // Not over an existing VM.
    expect((await run(fresh, 'backup', 'restore', dest, 'work')).code).toBe(1);
  });

  it('a wrong passphrase, a changed pack, a swapped session and a rolled-back archive are refused by name', async () => {
    const home = scratchDir('bk-home');
    const dest = join(scratchDir('bk-dest'), 'archive');
    await ok(home, 'vm', 'create', '--class', 'standalone', 's');
    await ok(home, 'volume', 'resize', 's:private', '8M');
    await write(home, 's', 'private', MiB, pattern(MiB, 4));
    await ok(home, 'backup', 'init', dest, '--chunk-size', '64K');
    await ok(home, 'backup', 'send', dest, 's');
    const before = join(scratchDir('bk-copy'), 'archive');
    cpSync(dest, before, { recursive: true });
    await write(home, 's', 'private', 2 * MiB, pattern(MiB, 5));
    await ok(home, 'backup', 'send', dest, 's');

    process.env.QVOL_BACKUP_PASSPHRASE_COMMAND = 'printf wrong';
    expect((await runQvol(['backup', 'ls', dest])).code).toBe(1);

    // Rolled back to the copy taken before the second send: refused, then accepted when told.
    const rolled = await run(home, 'backup', 'ls', before);
    expect(rolled.code).toBe(1);
    expect(rolled.err).toContain('rolled back');
    await ok(home, 'backup', 'ls', before, '--accept-rollback');

    // A flipped byte in a pack: verify --data names it, a restore refuses it and leaves no VM.
    const packs = readdirSync(join(dest, 'packs'), { recursive: true }).map(String).filter((p) => p.includes('/'));
    const pack = join(dest, 'packs', packs[0]!);
    const good = readFileSync(pack);
    const bad = Buffer.from(good);
    bad[100]! ^= 1;
    writeFileSync(pack, bad);
    const verify = await run(home, 'backup', 'verify', dest, '--data');
    expect(verify.code).toBe(1);
    expect(verify.err).toContain(packs[0]!.split('/')[1]!);
    const fresh = scratchDir('bk-restored');
    const restore = await run(fresh, 'backup', 'restore', dest);
    expect(restore.code).toBe(1);
    expect(restore.err).toContain('failed authentication');
    const checkOnly = await run(fresh, 'backup', 'restore', dest, '--verify-only');
    expect(checkOnly.code).toBe(1);
    expect(checkOnly.err).toContain('failed authentication');
    expect(JSON.parse(await ok(fresh, 'vm', 'ls', '--json'))).toEqual([]);
    const ex = spawnSync('/usr/bin/python3', [EXTRACTOR, dest, 's:private', join(fresh, 'x.img')], { env: { ...process.env, QVOL_BACKUP_PASSPHRASE: 'correct horse' }, encoding: 'utf8' });
    expect(ex.status).not.toBe(0);
    expect(ex.stderr).toContain('failed authentication');
    writeFileSync(pack, good);

    // The newest session's object replaced by the older (authentic) one: refused by name.
    const names = readdirSync(join(dest, 'sessions'));
    const [a, b] = names.map((n) => join(dest, 'sessions', n));
    const [sa, sb] = [readFileSync(a!), readFileSync(b!)];
    writeFileSync(a!, sb);
    writeFileSync(b!, sa);
    const swapped = await run(home, 'backup', 'ls', dest);
    expect(swapped.code).toBe(1);
    expect(swapped.err).toMatch(/sessions\/[0-9a-f]{32}/);
    writeFileSync(a!, sa);
    writeFileSync(b!, sb);

    // An index object lost: a send names the repair; verify --repair-index rebuilds it from
    // the packs' own headers, and sends and restores work again.
    for (const idx of readdirSync(join(dest, 'index'))) rmSync(join(dest, 'index', idx));
    const lost = await run(home, 'backup', 'send', dest, 's');
    expect(lost.code).toBe(1);
    expect(lost.err).toMatch(/Index object index\/[0-9a-f]{32} is missing: run `qvol backup verify --repair-index`/);
    const repaired = await run(home, 'backup', 'verify', dest, '--repair-index', '--data');
    expect(repaired.code, repaired.err).toBe(0);
    expect(repaired.out).toMatch(/index rebuilt from \d+ packs: \d+ blobs in 1 index object/);
    const again = JSON.parse(await ok(home, 'backup', 'send', dest, 's', '--json')) as { vms: Array<{ volumes: Array<{ new: number }> }> };
    expect(again.vms[0]!.volumes[0]!.new).toBe(0); // everything found through the rebuilt index
    const back = scratchDir('bk-repaired');
    await ok(back, 'backup', 'restore', dest);
    expect(sameFiles(await exported(back, 's:private'), await exported(home, 's:private'))).toBe(true);
  });
});

describe('backup cat, prune, passwd, and crashes', () => {
  it('cat writes a volume to a file, to a pipe and as a sparse image; prune keeps the policy and frees packs; passwd changes the passphrase', async () => {
    const home = scratchDir('bk-home');
    const dest = join(scratchDir('bk-dest'), 'archive');
    await ok(home, 'vm', 'create', '--class', 'standalone', 's');
    await ok(home, 'volume', 'resize', 's:private', '8M');
    await ok(home, 'backup', 'init', dest, '--chunk-size', '64K');
    for (let i = 0; i < 3; i++) {
      await write(home, 's', 'private', i * MiB, pattern(MiB, 10 + i));
      await ok(home, 'backup', 'send', dest, 's');
    }
    const file = join(scratchDir('bk-cat'), 'private.img');
    await ok(home, 'backup', 'cat', dest, 's:private', '-o', file);
    expect(sameFiles(file, await exported(home, 's:private'))).toBe(true);
    const hashed = join(scratchDir('bk-cat'), 'hashed.img');
    await ok(home, 'backup', 'cat', dest, 's:private', '-o', hashed, '--check-ids'); // each chunk hashed to its id too
    expect(sameFiles(hashed, file)).toBe(true);
    const piped = join(scratchDir('bk-cat'), 'piped.img');
    const fifo = join(scratchDir('bk-cat'), 'fifo');
    spawnSync('mkfifo', [fifo]);
    const reader = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', fifo, piped], { stdio: 'ignore' });
    const drained = new Promise((resolve) => reader.on('close', resolve));
    await ok(home, 'backup', 'cat', dest, 's:private', '-o', fifo);
    await drained;
    expect(sameFiles(piped, file)).toBe(true);
    // As an Android sparse image: the holes stay out of it, and `volume import -f sparse` reads it back.
    const image = join(scratchDir('bk-cat'), 'private.simg');
    await ok(home, 'backup', 'cat', dest, 's:private', '-f', 'sparse', '-o', image);
    expect(statSync(image).size).toBeLessThan(3 * MiB + 4096);
    await ok(home, 'vm', 'create', '--class', 'standalone', 'twin');
    await ok(home, 'volume', 'import', 'twin:private', '-f', 'sparse', '-i', image);
    expect(sameFiles(await exported(home, 'twin:private'), file)).toBe(true);
    await ok(home, 'vm', 'rm', 'twin');

    const dry = await json<{ sessionsRemoved: string[]; dryRun: boolean }>(home, 'backup', 'prune', dest, '--keep-last', '1', '--dry-run');
    expect(dry.sessionsRemoved.length).toBe(2);
    const pruned = await json<{ sessionsKept: number }>(home, 'backup', 'prune', dest, '--keep-last', '1');
    expect(pruned.sessionsKept).toBe(1);
    expect((await json<unknown[]>(home, 'backup', 'ls', dest)).length).toBe(1);
    expect((await json<{ problems: unknown[] }>(home, 'backup', 'verify', dest, '--data')).problems).toEqual([]);
    const after = join(scratchDir('bk-cat'), 'after.img');
    await ok(home, 'backup', 'cat', dest, 's:private', '-o', after);
    expect(sameFiles(after, file)).toBe(true);

    expect(await json(home, 'backup', 'passwd', dest, '--new-passphrase-command', 'printf %s "battery staple"')).toEqual({ archive: dest, passphraseChanged: true });
    expect((await run(home, 'backup', 'ls', dest)).code).toBe(1);
    process.env.QVOL_BACKUP_PASSPHRASE_COMMAND = 'printf %s "battery staple"';
    expect((await runQvol(['backup', 'ls', dest])).code).toBe(0);
  });

  it('a send killed after each of its object writes leaves an archive that verifies, and the next send completes', async () => {
    const { home, dest, env } = await vmAndArchive('crash', '8M', 0, pattern(2 * MiB, 20));
    await ok(home, 'backup', 'send', dest, 's');
    await write(home, 's', 'private', 4 * MiB, pattern(MiB, 21));
    let completed = false;
    for (let step = 1; step <= 40 && !completed; step++) {
      const r = spawnSync(process.execPath, [MAIN, 'backup', 'send', dest, 's'], { env: { ...env, QVOL_CRASH_AFTER_STEP: String(step) }, encoding: 'utf8' });
      completed = r.status === 0;
      if (!completed) expect(r.signal, r.stderr).toBe('SIGKILL');
      const v = spawnSync(process.execPath, [MAIN, 'backup', 'verify', dest, '--data', '--json'], { env, encoding: 'utf8' });
      expect(v.status, `after a kill at step ${step}: ${v.stdout}${v.stderr}`).toBe(0);
    }
    expect(completed).toBe(true);
    // Two sessions, or three when a kill came after the root that completed a send was stored.
    const sessions = await json<unknown[]>(home, 'backup', 'ls', dest);
    expect(sessions.length).toBeGreaterThanOrEqual(2);
    const restored = scratchDir('bk-crash-restored');
    await ok(restored, 'backup', 'restore', dest);
    expect(sameFiles(await exported(restored, 's:private'), await exported(home, 's:private'))).toBe(true);
  });

  it('a restore killed after each durable step leaves the VM whole or, after recover, nothing of it', async () => {
    const { home, dest } = await vmAndArchive('rcrash', '8M', MiB, pattern(3 * MiB, 30));
    await ok(home, 'backup', 'send', dest, 's');
    const want = await exported(home, 's:private');
    let completed = false;
    for (let step = 1; step <= 30 && !completed; step++) {
      const target = scratchDir('bk-rtarget');
      const env = { ...process.env, QVOL_HOME: target, QVOL_BACKUP_PASSPHRASE_COMMAND: 'printf %s "correct horse"' };
      const r = spawnSync(process.execPath, [MAIN, 'backup', 'restore', dest, 's'], { env: { ...env, QVOL_CRASH_AFTER_STEP: String(step) }, encoding: 'utf8' });
      completed = r.status === 0;
      if (!completed) {
        expect(r.signal, r.stderr).toBe('SIGKILL');
        // Until recover runs, a half-restored VM is marked and refused, never used as whole.
        const statePath = join(target, 'state.json');
        const state = existsSync(statePath) ? JSON.parse(readFileSync(statePath, 'utf8')) as { vms: Record<string, { pending?: string }> } : { vms: {} as Record<string, { pending?: string }> };
        if (state.vms.s?.pending !== undefined) {
          expect(state.vms.s.pending).toBe('restore');
          expect((await run(target, 'vm', 'start', 's')).err).toMatch(/not whole: a restore did not finish/);
          await ok(target, 'recover');
          expect(JSON.parse(await ok(target, 'vm', 'ls', '--json'))).toEqual([]);
        }
        // Killed after the VM was recorded whole, it stays; else it is restored again.
        if (!state.vms.s || state.vms.s.pending !== undefined) await ok(target, 'backup', 'restore', dest, 's');
      }
      expect(sameFiles(await exported(target, 's:private'), want), `after a kill at step ${step}`).toBe(true);
    }
    expect(completed).toBe(true);
  });

  it('two sends at once: each completes or is refused naming the other, one completes, and the archive verifies', async () => {
    const { dest, env } = await vmAndArchive('two', '64M', 0, pattern(32 * MiB, 40));
    const send = () => new Promise<{ code: number | null; err: string }>((resolve) => {
      const child = spawn(process.execPath, [MAIN, 'backup', 'send', dest, 's'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (c: Buffer) => { err += String(c); });
      child.on('close', (code) => resolve({ code, err }));
    });
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all([send(), send()]);
      for (const r of results) {
        if (r.code !== 0) {
          expect(r.err).toMatch(/The archive in .* is in use \((backup send by pid \d+|a writer)/);
        }
      }
      expect(results.some((r) => r.code === 0)).toBe(true);
    }
    const v = spawnSync(process.execPath, [MAIN, 'backup', 'verify', dest, '--data', '--json'], { env, encoding: 'utf8' });
    expect(v.status, v.stdout + v.stderr).toBe(0);
  });

  it('a prune or passwd killed after each of its object writes leaves an archive that verifies; the next run completes and leaves no garbage', async () => {
    const { home, dest } = await vmAndArchive('pcrash', '8M', 0, pattern(2 * MiB, 50));
    for (let i = 0; i < 3; i++) {
      if (i > 0) await write(home, 's', 'private', i * 2 * MiB, pattern(2 * MiB, 50 + i));
      await ok(home, 'backup', 'send', dest, 's');
    }
    const want = await exported(home, 's:private');
    const env = (pass: string) => ({ ...process.env, QVOL_HOME: home, QVOL_BACKUP_PASSPHRASE_COMMAND: `printf %s "${pass}"` });
    // (Each step starts from the same copy, older than what this host saw last: told so.)
    const verifies = (pass: string) => spawnSync(process.execPath, [MAIN, 'backup', 'verify', dest, '--data', '--json', '--accept-rollback'], { env: env(pass), encoding: 'utf8' });
    // A prune that keeps the newest session frees the others' chunks; kill it after each write.
    const base = join(scratchDir('bk-pbase'), 'archive');
    cpSync(dest, base, { recursive: true });
    let completed = false;
    for (let step = 1; step <= 40 && !completed; step++) {
      rmSync(dest, { recursive: true });
      cpSync(base, dest, { recursive: true });
      const r = spawnSync(process.execPath, [MAIN, 'backup', 'prune', dest, '--keep-last', '1', '--accept-rollback'], { env: { ...env('correct horse'), QVOL_CRASH_AFTER_STEP: String(step) }, encoding: 'utf8' });
      completed = r.status === 0;
      if (!completed) expect(r.signal, r.stderr).toBe('SIGKILL');
      const v = verifies('correct horse');
      expect(v.status, `after a kill at step ${step}: ${v.stdout}${v.stderr}`).toBe(0);
      await ok(home, 'backup', 'prune', dest, '--keep-last', '1', '--accept-rollback');
      // Nothing is left but the root, its one session, its index and the packs it uses.
      const files = readdirSync(dest, { recursive: true }).map(String).filter((f) => statSync(join(dest, f)).isFile());
      expect(files.filter((f) => f.startsWith('roots/')), `step ${step}`).toHaveLength(1);
      expect(files.filter((f) => f.startsWith('sessions/')), `step ${step}`).toHaveLength(1);
      expect(files.filter((f) => f.includes('.partial-')), `step ${step}`).toEqual([]);
      const restored = scratchDir('bk-prestored');
      await ok(restored, 'backup', 'restore', dest, 's', '--accept-rollback');
      expect(sameFiles(await exported(restored, 's:private'), want), `after a kill at step ${step}`).toBe(true);
    }
    expect(completed).toBe(true);

    // passwd: killed after each write, the old passphrase or the new one opens the archive.
    completed = false;
    rmSync(base, { recursive: true });
    cpSync(dest, base, { recursive: true });
    for (let step = 1; step <= 10 && !completed; step++) {
      rmSync(dest, { recursive: true });
      cpSync(base, dest, { recursive: true });
      const r = spawnSync(process.execPath, [MAIN, 'backup', 'passwd', dest, '--new-passphrase-command', 'printf %s "battery staple"'], { env: { ...env('correct horse'), QVOL_CRASH_AFTER_STEP: String(step) }, encoding: 'utf8' });
      completed = r.status === 0;
      if (!completed) {
        expect(r.signal, r.stderr).toBe('SIGKILL');
        expect(verifies('correct horse').status === 0 || verifies('battery staple').status === 0, `after a kill at step ${step}`).toBe(true);
      }
    }
    expect(completed).toBe(true);
    expect(verifies('battery staple').status).toBe(0);
    expect(verifies('correct horse').status).toBe(1);
  });

  it('prune repacks a pack that is mostly garbage; sessions, the extractor and later prunes find the moved chunks', async () => {
    const { home, dest } = await vmAndArchive('repack', '8M', 0, randomBytes(4 * MiB));
    await ok(home, 'backup', 'send', dest, 's');
    await write(home, 's', 'private', 0, randomBytes(3 * MiB)); // three quarters of the first pack now garbage
    await ok(home, 'backup', 'send', dest, 's');
    const want = await exported(home, 's:private');
    const dry = await json<{ packsRepacked: number; dryRun: boolean }>(home, 'backup', 'prune', dest, '--keep-last', '1', '--dry-run');
    expect(dry).toMatchObject({ packsRepacked: 1, dryRun: true });
    const pruned = await json<{ packsRepacked: number; bytesMoved: number; packsRemoved: number }>(home, 'backup', 'prune', dest, '--keep-last', '1');
    expect(pruned.packsRepacked).toBe(1);
    expect(pruned.bytesMoved).toBeGreaterThanOrEqual(MiB);
    expect(pruned.bytesMoved).toBeLessThan(MiB + 64 * 1024);
    expect((await json<{ problems: unknown[] }>(home, 'backup', 'verify', dest, '--data')).problems).toEqual([]);
    const back = scratchDir('bk-repacked');
    await ok(back, 'backup', 'restore', dest);
    expect(sameFiles(await exported(back, 's:private'), want)).toBe(true);
    const extracted = join(scratchDir('bk-repack-extract'), 'private.img');
    const ex = spawnSync('/usr/bin/python3', [EXTRACTOR, dest, 's:private', extracted], { env: { ...process.env, QVOL_BACKUP_PASSPHRASE: 'correct horse' }, encoding: 'utf8' });
    expect(ex.status, ex.stderr).toBe(0);
    expect(sameFiles(extracted, want)).toBe(true);
    // The kept session's pages still name the old pack: a later prune finds the chunks at
    // their new places and keeps them; a send finds them too.
    const again = await json<{ packsRemoved: number; packsRepacked: number }>(home, 'backup', 'prune', dest, '--keep-last', '1');
    expect(again).toMatchObject({ packsRemoved: 0, packsRepacked: 0 });
    await write(home, 's', 'private', 6 * MiB, randomBytes(64 * 1024));
    const sent = await json<{ vms: Array<{ volumes: Array<{ name: string; new: number }> }> }>(home, 'backup', 'send', dest, 's');
    expect(sent.vms[0]!.volumes.find((v) => v.name === 'private')!.new).toBe(1);
    expect((await json<{ problems: unknown[] }>(home, 'backup', 'verify', dest, '--data')).problems).toEqual([]);
  });

  it('restore --replace puts the backup into an existing VM, each volume whole even when killed, the former data kept as a revision', async () => {
    const { home, dest } = await vmAndArchive('replace', '8M', MiB, pattern(2 * MiB, 40));
    await write(home, 's', 'root', 0, pattern(MiB, 41));
    await ok(home, 'backup', 'send', dest, 's');
    const want = { root: await exported(home, 's:root'), private: await exported(home, 's:private') };
    // The data is in the first 3 MiB; the 10 GiB root is not read whole for each comparison.
    const same = (a: string, b: string) => statSync(a).size === statSync(b).size && sameBytes(a, b, 4 * MiB);
    const both = async () => ({ root: await exported(home, 's:root'), private: await exported(home, 's:private') });
    await write(home, 's', 'root', 0, pattern(MiB, 50));
    await write(home, 's', 'private', MiB, pattern(MiB, 51));
    const changed = await both();

    // Refused, naming the way, and nothing written: without --replace, while running, for another class.
    expect((await run(home, 'backup', 'restore', dest, 's')).err).toMatch(/VM s exists already: .*--replace/);
    await json(home, 'vm', 'start', 's');
    expect((await run(home, 'backup', 'restore', dest, 's', '--replace')).err).toMatch(/VM s is running/);
    await ok(home, 'vm', 'stop', 's');
    await ok(home, 'vm', 'create', '--class', 'template', 't');
    expect((await run(home, 'backup', 'restore', dest, 's', '--rename', 's=t', '--replace')).err).toMatch(/class template here and standalone in the archive/);
    for (const v of ['root', 'private'] as const) expect(same(await exported(home, `s:${v}`), changed[v])).toBe(true);

    // Killed after each durable step: every volume holds its former data or the backup's, never a mix.
    let completed = false;
    let kills = 0;
    for (let step = 1; step <= 30 && !completed; step++) {
      const before = step === 1 ? changed : await both();
      const env = { ...process.env, QVOL_HOME: home, QVOL_BACKUP_PASSPHRASE_COMMAND: 'printf %s "correct horse"' };
      const r = spawnSync(process.execPath, [MAIN, 'backup', 'restore', dest, 's', '--replace'], { env: { ...env, QVOL_CRASH_AFTER_STEP: String(step) }, encoding: 'utf8' });
      completed = r.status === 0;
      if (!completed) {
        expect(r.signal, r.stderr).toBe('SIGKILL');
        kills++;
      }
      for (const v of ['root', 'private'] as const) {
        const now = await exported(home, `s:${v}`);
        expect(same(now, want[v]) || (!completed && same(now, before[v])), `${v} after a kill at step ${step}`).toBe(true);
      }
    }
    expect(completed).toBe(true);
    expect(kills).toBeGreaterThan(2); // killed before, between and after the volumes' commits
    // The data a replace replaced is a revision: revert brings it back.
    await write(home, 's', 'private', MiB, pattern(MiB, 60));
    const mine = await exported(home, 's:private');
    await ok(home, 'backup', 'restore', dest, 's', '--replace', '--check-ids');
    expect(same(await exported(home, 's:private'), want.private)).toBe(true);
    await ok(home, 'volume', 'revert', 's:private');
    expect(same(await exported(home, 's:private'), mine)).toBe(true);
  });
});

