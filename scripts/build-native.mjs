#!/usr/bin/env node
// Builds the addon with node-gyp against the headers of the Node that runs us, so nothing
// is downloaded: Debian's nodejs and the official tarballs both ship include/node.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));

function nodeGypScript() {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    // npm hands its bundled node-gyp to install scripts through this variable.
    return process.env.npm_config_node_gyp;
  }
}

// The backup archive's primitives come from Debian's libsodium and libzstd (no crypto or
// compression code of ours, nothing downloaded): their headers must be there to build.
// As root on Debian we install them, as the project's scripts install every tool they
// need; otherwise we say what to install.
const BUILD_PACKAGES = { '/usr/include/sodium.h': 'libsodium-dev', '/usr/include/zstd.h': 'libzstd-dev' };
const missing = Object.entries(BUILD_PACKAGES).filter(([header]) => !existsSync(header)).map(([, pkg]) => pkg);
if (missing.length > 0) {
  const canInstall = process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
  if (!canInstall) {
    console.error(`qvol: building the addon needs ${missing.join(' and ')}: run \`apt-get install ${missing.join(' ')}\` as root, then retry.`);
    process.exit(1);
  }
  console.error(`qvol: installing the addon's build dependencies from Debian: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args) => spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
  if (!apt(['install', '-y', '-qq', '--no-install-recommends', ...missing]) &&
      !(apt(['update', '-qq']) && apt(['install', '-y', '-qq', '--no-install-recommends', ...missing]))) {
    console.error(`qvol: apt-get could not install ${missing.join(' ')}; install them and retry.`);
    process.exit(1);
  }
}

const prefix = resolve(dirname(process.execPath), '..');
const args = ['rebuild', '--release'];
if (existsSync(join(prefix, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${prefix}`);
const script = nodeGypScript();
if (!script) {
  console.error('qvol: node-gyp not found; install it with npm (it ships with npm) and retry.');
  process.exit(1);
}
const res = spawnSync(process.execPath, [script, ...args], { cwd: root, stdio: 'inherit' });
process.exit(res.status ?? 1);
