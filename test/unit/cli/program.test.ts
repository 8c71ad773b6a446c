import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';

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
