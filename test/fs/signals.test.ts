/**
 * Ctrl-C, SIGTERM and SIGHUP during a long command: it ends promptly, leaves no temporary
 * and no half import behind, and exits with 128 + the signal's number.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratchDir } from '../helpers/scratch.js';

const MAIN = join(import.meta.dirname, '../../dist/cli/main.js');
const MiB = 2 ** 20;

describe('signals', () => {
  it.each([['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129]] as const)('%s during an import: exit %i, the volume unchanged, nothing left', async (signal, status) => {
    const home = scratchDir('signals');
    const env = { ...process.env, QVOL_HOME: home };
    execFileSync(process.execPath, [MAIN, 'vm', 'create', '--class', 'standalone', 's'], { env, stdio: 'ignore' });
    const before = execFileSync(process.execPath, [MAIN, 'volume', 'export', 's:private', '-f', 'sparse'], { env }).length;
    const importer = spawn(process.execPath, [MAIN, 'volume', 'import', 's:private', '--size', '1G', '-i', '-'], { env, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    importer.stderr.on('data', (c: Buffer) => { stderr += String(c); });
    const exited = new Promise<number | null>((resolve) => importer.on('exit', (code) => resolve(code)));
    importer.stdin.on('error', () => undefined); // the importer goes away mid-write
    // A writer that keeps the import busy: 4 MiB of data every 20 ms.
    let writing = true;
    const chunk = Buffer.alloc(4 * MiB, 0x33);
    void (async () => {
      while (writing) {
        if (!importer.stdin.write(chunk)) await new Promise((r) => importer.stdin.once('drain', r));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await new Promise((r) => setTimeout(r, 1500));
    const sent = Date.now();
    importer.kill(signal);
    const code = await exited;
    writing = false;
    expect(code, stderr).toBe(status);
    expect(Date.now() - sent).toBeLessThan(2000);
    const vmDir = join(home, 'pools', 'default', 'appvms', 's');
    expect(readdirSync(vmDir).filter((f) => f.includes('import') || f.includes('~'))).toEqual([]);
    expect(execFileSync(process.execPath, [MAIN, 'volume', 'export', 's:private', '-f', 'sparse'], { env }).length).toBe(before);
  });
});

/** Resolves once a name with `~` (a temporary of an atomic copy) is in `dir` or below it. */
async function temporaryAppears(dir: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const names = readdirSync(dir, { recursive: true }).map(String);
    if (names.some((n) => n.includes('~'))) return;
    if (Date.now() > deadline) throw new Error(`no temporary appeared in ${dir}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('signals during a clone', () => {
  it('SIGTERM during a vm clone into another pool: exit 143, no clone, no temporary left', async () => {
    const home = scratchDir('signals-clone');
    const env = { ...process.env, QVOL_HOME: home };
    const qvol = (...args: string[]) => execFileSync(process.execPath, [MAIN, ...args], { env, encoding: 'utf8' });
    const other = join(home, 'other-pool');
    qvol('pool', 'add', 'other', 'file-reflink', '-o', `dir_path=${other}`, '-o', 'setup_check=False');
    qvol('vm', 'create', '--class', 'standalone', 's');
    // 768 MiB of data (not zeros, so every byte is copied): long enough to be caught mid-copy.
    const input = join(home, 'input.img');
    execFileSync('sh', ['-c', `yes qvol | head -c ${768 * MiB} > "$1"`, 'sh', input]);
    qvol('volume', 'import', 's:private', '-f', 'raw', '-i', input);
    const cloner = spawn(process.execPath, [MAIN, 'vm', 'clone', 's', 'c', '--pool', 'other'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    cloner.stderr.on('data', (c: Buffer) => { stderr += String(c); });
    const exited = new Promise<number | null>((resolve) => cloner.on('exit', (code) => resolve(code)));
    await temporaryAppears(other);
    const sent = Date.now();
    cloner.kill('SIGTERM');
    const code = await exited;
    expect(code, stderr).toBe(143);
    expect(Date.now() - sent).toBeLessThan(2000);
    expect(readdirSync(other, { recursive: true }).map(String).filter((n) => n.includes('~') || n.includes('import'))).toEqual([]);
    expect(qvol('vm', 'ls')).not.toMatch(/^c\b/m);
  });
});
