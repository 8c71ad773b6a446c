import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { scratchDir } from '../../helpers/scratch.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  const stream = (into: string[]) => new Writable({ write(chunk, _enc, cb) { into.push(String(chunk)); cb(); } });
  return { io: { stdout: stream(out), stderr: stream(err) }, out: () => out.join(''), err: () => err.join('') };
}

describe('qvol CLI', () => {
  it('prints help for copy with every option and examples', async () => {
    const c = capture();
    expect(await runCli(['copy', '--help'], c.io)).toBe(0);
    for (const word of ['--sparse', '--reflink', '--size', '--json', '--target-is-zero', 'Examples:']) expect(c.out()).toContain(word);
  });

  it('exits 2 on a usage error and says what is wrong', async () => {
    const c = capture();
    expect(await runCli(['copy', '--sparse', 'sometimes', 'a', 'b'], c.io)).toBe(2);
    expect(c.err()).toContain("argument 'sometimes' is invalid");
  });

  it('exits 2 on a bad size, naming the option', async () => {
    const c = capture();
    expect(await runCli(['copy', '--size', '10X', '/etc/hostname', '/tmp/x'], c.io)).toBe(2);
    expect(c.err()).toContain("Invalid --size '10X'");
  });

  it('exits 1 with one sentence for a missing source', async () => {
    const c = capture();
    expect(await runCli(['copy', '/nonexistent/src.img', '/tmp/dst.img'], c.io)).toBe(1);
    expect(c.err()).toBe("qvol: Source '/nonexistent/src.img' does not exist: check the path.\n");
  });

  it('reports errors as JSON with --json', async () => {
    const c = capture();
    expect(await runCli(['copy', '--json', '/nonexistent/src.img', '/tmp/dst.img'], c.io)).toBe(1);
    expect(JSON.parse(c.out())).toEqual({ error: { code: 'SOURCE_NOT_FOUND', message: expect.stringContaining('does not exist'), path: '/nonexistent/src.img' } });
  });

  it('exits 2 on an unknown command', async () => {
    const c = capture();
    expect(await runCli(['frobnicate'], c.io)).toBe(2);
  });
});

describe('qvol copy output', () => {
  it('prints a JSON result for scripts and draws progress only on a terminal', async () => {
    const { truncateSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const dir = scratchDir('cli');
    const src = join(dir, 'src.img');
    writeFileSync(src, Buffer.alloc(4096, 7));
    truncateSync(src, 64 * 2 ** 20);
    const c = capture();
    expect(await runCli(['copy', '--json', src, join(dir, 'dst.img')], c.io)).toBe(0);
    const result = JSON.parse(c.out());
    expect(result).toMatchObject({ source: src, target: join(dir, 'dst.img'), size: 64 * 2 ** 20, targetKind: 'file', bytesWritten: 4096 });
    expect(['clone', 'copy_file_range', 'readwrite']).toContain(result.method);
    expect(c.err()).toBe('');

    const tty = capture();
    Object.assign(tty.io.stderr, { isTTY: true, columns: 100 });
    expect(await runCli(['copy', '--reflink', 'never', '--sparse', 'never', src, join(dir, 'tty.img')], tty.io)).toBe(0);
    expect(tty.out()).toContain('copied by');
    // The bar is drawn and then cleared, leaving the terminal line empty.
    expect(tty.err().endsWith('\r\x1b[K')).toBe(true);
  });
});
