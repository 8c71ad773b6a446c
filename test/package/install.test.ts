/**
 * The package as a user gets it: `npm pack`, a global install of the tarball into a scratch
 * prefix (its dependencies from the registry, the addon built by its install script), then
 * the `qvol` command and `import('qvol')` from there. Nothing here reaches into the source tree.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const scratch = mkdtempSync(join(tmpdir(), 'qvol-package-'));
const prefix = join(scratch, 'prefix');
const installed = join(prefix, 'lib', 'node_modules', 'qvol');
const qvol = join(prefix, 'bin', 'qvol');

function run(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd ?? scratch, env: { ...process.env, ...options.env } });
}

/** Runs an ES module in a project whose node_modules/qvol is the installed package. */
function useLibrary(code: string): string {
  const project = join(scratch, 'user');
  mkdirSync(join(project, 'node_modules'), { recursive: true });
  rmSync(join(project, 'node_modules', 'qvol'), { force: true });
  symlinkSync(installed, join(project, 'node_modules', 'qvol'));
  writeFileSync(join(project, 'main.mjs'), code);
  return run(process.execPath, ['main.mjs'], { cwd: project });
}

beforeAll(() => {
  run('npm', ['pack', '--silent', '--pack-destination', scratch], { cwd: root });
  const tarball = readdirSync(scratch).find((f) => f.endsWith('.tgz'))!;
  run('npm', ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error', join(scratch, tarball)]);
}, 600_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the installed package', () => {
  it('ships the library, the addon sources, the qubesd bridge and its units, and a LICENSE, nothing else', () => {
    const top = readdirSync(installed).filter((f) => f !== 'node_modules' && f !== 'build').sort();
    expect(top).toEqual(['LICENSE', 'README.md', 'binding.gyp', 'contrib', 'dist', 'integrations', 'native', 'package.json', 'scripts']);
    expect(readdirSync(join(installed, 'contrib')).sort()).toEqual(['qvol-daemon.service', 'qvol-daemon.socket']);
    expect(readdirSync(join(installed, 'integrations', 'qubes')).sort()).toEqual(['pyproject.toml', 'qvol_qubes']);
    const dist = readdirSync(join(installed, 'dist'));
    expect(dist).toContain('index.js');
    expect(dist).not.toContain('src');
    expect(dist).not.toContain('bench');
    expect(dist).not.toContain('test');
  });

  it('gives a qvol command that prints the package version', () => {
    expect(run(qvol, ['--version']).trim()).toBe(version);
  });

  it('runs the demo from the installed command', () => {
    const home = join(scratch, 'demo-home');
    const out = run(qvol, ['demo', '--home', home]);
    expect(out).toMatch(/template/);
    expect(out).toMatch(/reverted debian:root/);
    expect(out).toMatch(/^done/m);
  }, 300_000);

  it('is a library: import("qvol") gives the documented API', () => {
    const out = useLibrary(`
      const q = await import('qvol');
      const cli = await import('qvol/cli');
      console.log(JSON.stringify({
        api: ['QvolApp', 'Pool', 'Volume', 'createPool', 'copyVolume', 'exportVolume', 'importVolume', 'ZfsPool', 'parseSize', 'QvolError']
          .filter((n) => typeof q[n] !== 'function'),
        runCli: typeof cli.runCli,
        size: q.parseSize('1M', 'size'),
      }));`);
    expect(JSON.parse(out)).toEqual({ api: [], runCli: 'function', size: 2 ** 20 });
  });

  it('without its addon still imports, and says what was tried and how to fix it', () => {
    const addon = join(installed, 'build', 'Release', 'qvol.node');
    renameSync(addon, `${addon}.away`);
    try {
      const out = useLibrary(`
        const q = await import('qvol');
        const size = q.parseSize('4K', 'size');
        try { q.capabilities(); console.log('loaded?'); } catch (err) { console.log(JSON.stringify({ size, code: err.code, message: err.message })); }`);
      const r = JSON.parse(out) as { size: number; code: string; message: string };
      expect(r.size).toBe(4096);
      expect(r.code).toBe('ADDON_NOT_LOADED');
      expect(r.message).toContain(join(installed, 'build', 'Release', 'qvol.node'));
      expect(r.message).toMatch(/Possible solutions:[\s\S]*npm rebuild qvol/);
      expect(run(qvol, ['--version']).trim()).toBe(version);
    } finally {
      renameSync(`${addon}.away`, addon);
    }
  });
});
