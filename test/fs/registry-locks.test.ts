/**
 * The registry lock is held while state changes, never across data movement: while one VM's
 * volume imports a 2 GiB stream (stalled half-way, so it is surely in progress), other
 * commands on other VMs run at once, and a command on the importing VM waits for it.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { scratchDir } from '../helpers/scratch.js';

const MAIN = join(import.meta.dirname, '../../dist/cli/main.js');
const GiB = 2 ** 30;
const MiB = 2 ** 20;
const home = scratchDir('locks');
const env = { ...process.env, QVOL_HOME: home };
const run = promisify(execFile);

async function qvol(...args: string[]): Promise<{ out: string; seconds: number }> {
  const t0 = process.hrtime.bigint();
  const { stdout } = await run(process.execPath, [MAIN, ...args], { env });
  return { out: stdout, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

describe('locks', () => {
  it('another VM starts and stops in well under a second while a 2 GiB import streams', async () => {
    await qvol('vm', 'create', '--class', 'standalone', 'big');
    await qvol('vm', 'create', '--class', 'standalone', 'other');
    const importer = spawn(process.execPath, [MAIN, 'volume', 'import', 'big:private', '--size', '2G', '--json'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      let out = '';
      let err = '';
      importer.stdout.on('data', (c: Buffer) => { out += String(c); });
      importer.stderr.on('data', (c: Buffer) => { err += String(c); });
      importer.on('close', (code) => resolve({ code, out, err }));
    });
    // A patterned first MiB, then zeros: the import is half-way when the writer pauses.
    const chunk = Buffer.alloc(MiB);
    const write = (b: Buffer) => new Promise<void>((resolve, reject) => importer.stdin.write(b, (e) => (e ? reject(e) : resolve())));
    await write(Buffer.alloc(MiB, 0x5a));
    for (let i = 1; i < 1024; i++) await write(chunk);
    // The importer holds VM big's lock now; the registry lock is free.
    const start = await qvol('vm', 'start', 'other');
    const stop = await qvol('vm', 'stop', 'other');
    const list = await qvol('vm', 'ls', '--json');
    expect(start.seconds).toBeLessThan(1);
    expect(stop.seconds).toBeLessThan(1);
    expect(JSON.parse(list.out).map((v: { name: string }) => v.name).sort()).toEqual(['big', 'other']);
    // A command on the importing VM waits for the import instead of racing it.
    const waiting = qvol('volume', 'resize', 'big:private', '3G');
    for (let i = 1024; i < 2048; i++) await write(chunk);
    importer.stdin.end();
    const imported = await done;
    expect(imported.code, imported.err).toBe(0);
    expect(JSON.parse(imported.out)).toMatchObject({ size: 2 * GiB });
    await waiting;
    const state = JSON.parse(readFileSync(join(home, 'state.json'), 'utf8'));
    expect(state.vms.big.volumes.private.size).toBe(3 * GiB);
  }, 120_000);
});
