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
