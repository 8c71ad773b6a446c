#!/usr/bin/env bash
# Installs a second Node line for the tests, from the npm registry's node-linux-<arch>
# package (the official binary, shipped inside a registry package: nothing else is
# downloaded), into a cache outside the repository. Prints the node binary's path; prints
# nothing and fails when it cannot be had.
#   scripts/install-node.sh 24
set -euo pipefail
major=${1:?usage: install-node.sh MAJOR}
case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) exit 1 ;; esac
dir="${XDG_CACHE_HOME:-$HOME/.cache}/qvol/node-$major"
bin="$dir/node_modules/node-linux-$arch/bin/node"
if [ ! -x "$bin" ]; then
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "node-linux-$arch@$major" >&2 </dev/null
fi
"$bin" --version >/dev/null
echo "$bin"
