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
