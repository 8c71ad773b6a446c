#!/usr/bin/env bash
# qvol's test command: every tier this machine allows, each skipped tier named with why,
# then the quick benchmark so it stays runnable. Ends with one "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

bash scripts/install-deps.sh || exit 1
[ -f build/Release/qvol.node ] || node scripts/build-native.mjs || exit 1
npx --no-install tsc -p tsconfig.build.json || exit 1
if command -v clang-format >/dev/null; then
  npm run --silent lint || exit 1  # tsc and eslint over the tests and benchmarks too, clang-format over native/
else
  npx --no-install tsc -p tsconfig.json || exit 1
  npx --no-install eslint --max-warnings 0 . || exit 1
  echo "== lint: clang-format skipped: not installed (scripts/install-deps.sh installs it as root)"
fi

results=$(mktemp -d)   # one vitest JSON report per tier
scratch=$(mktemp -d)
trap 'rm -rf "$results" "$scratch"' EXIT

# What the tests and benchmarks leave behind: scratch directories, mounts, loop devices.
leftovers() {
  { ls -d /tmp/qvol-* /var/tmp/qvol-* 2>/dev/null | grep -v '/qvol-lab\.'
    findmnt -rn -o TARGET 2>/dev/null | grep '/qvol-' | sed 's/^/mounted: /'
    losetup -a 2>/dev/null | grep '/qvol-' | cut -d' ' -f1,3 | sed 's/^/attached: /'; } | sort
}
leftovers > "$scratch/before.txt"
timings=()
# Each tier's wall time, printed as it ends and again in the summary.
timed() {  # name, then the command
  local name=$1; shift
  local t0=$SECONDS rc=0
  "$@" || rc=$?
  timings+=("$name $((SECONDS - t0)) s")
  echo "== tier $name: $((SECONDS - t0)) s"
  return $rc
}
vitest_tier() {  # name, node binary, then the vitest arguments
  local name=$1 node=$2; shift 2
  echo "== tier $name"
  timed "$name" "$node" node_modules/vitest/vitest.mjs run "$@" --reporter=default --reporter=json \
    --outputFile="$results/$name.json"
}
has_loop() { [ "$(id -u)" = 0 ] && [ -e /dev/loop-control ]; }
fs_tier() {  # suffix, node binary
  if has_loop; then
    vitest_tier "fs$1" "$2" --project fs
  else
    echo "== tier fs$1: skipped: needs root and /dev/loop-control for loop-mounted ext4, btrfs and XFS"
    # the host-filesystem part needs neither
    vitest_tier "fs-host$1" "$2" --project fs test/fs/copy-host.test.ts
  fi
}

# The qubesd bridge (integrations/qubes) against a real daemon, under Debian's python3.
python_tier() {
  if [ "$(id -u)" != 0 ]; then
    echo "== tier python: skipped: needs root (the daemon admits root only)"
  elif ! command -v /usr/bin/python3 >/dev/null; then
    echo "== tier python: skipped: no /usr/bin/python3"
  else
    echo "== tier python"
    timed python /usr/bin/python3 integrations/qubes/run_tests.py "$results/python.json"
  fi
}

node=$(command -v node)
vitest_tier unit "$node" --project unit
fs_tier "" "$node"
python_tier
vitest_tier package "$node" --project package

# The same unit and fs tiers under the other LTS line (the addon is N-API: one build serves both).
other=24; [ "$(node -p 'process.versions.node.split(".")[0]')" = 24 ] && other=22
if node_other=$(bash scripts/install-node.sh "$other"); then
  vitest_tier "unit@node$other" "$node_other" --project unit
  fs_tier "@node$other" "$node_other"
else
  echo "== tier unit@node$other, fs@node$other: skipped: Node $other could not be installed from the npm registry"
fi
if [ "$(id -u)" != 0 ]; then
  echo "== tier lab: skipped: needs root to install the lab (QEMU, a Debian kernel with OpenZFS)"
elif ! bash test/lab/setup.sh; then
  echo "== tier lab: skipped: the lab could not be installed (test/lab/setup.sh failed, see above)"
else
  # Inside the VM the working directory is shared, /tmp is not: the report comes back here.
  # The same boot then runs the lab's quick benches (ephemeral volumes and LVM need
  # device-mapper), which leave .lab-bench-failed behind on a gross regression or a failure.
  echo "== tier lab"
  rm -f .lab-results.json .lab-bench-failed
  npx --no-install tsc -p tsconfig.bench.json || exit 1
  timed lab bash test/lab/run.sh -m 3072 -t 3600 -- sh -c 'npx --no-install vitest run --project lab \
    --reporter=default --reporter=json --outputFile=.lab-results.json
    echo "== bench (quick, in the lab)"; node dist-dev/bench/lab-ephemeral.js --quick || touch .lab-bench-failed
    node dist-dev/bench/lab-lvm.js --quick || touch .lab-bench-failed'
  if [ -f .lab-results.json ]; then mv .lab-results.json "$results/lab.json"; else
    echo '{"numPassedTests":0,"numFailedTests":1,"numPendingTests":0,"numTodoTests":0,"success":false}' > "$results/lab.json"
  fi
fi

echo "== bench (quick)"
bench_failed=0
if [ -f .lab-bench-failed ]; then bench_failed=1; rm -f .lab-bench-failed; fi
timed bench bash -c 'npx --no-install tsc -p tsconfig.bench.json && node dist-dev/bench/run.js --quick' || bench_failed=1

echo "== time per tier: ${timings[*]/%/;}"

# Nothing of the run may stay mounted or attached (a failure); scratch files are named.
leftovers | comm -13 "$scratch/before.txt" - > "$scratch/after.txt"
cleanup_failed=0
if [ -s "$scratch/after.txt" ]; then
  echo "== cleanup: the run left behind:"; sed 's/^/  /' "$scratch/after.txt"
  grep -q '^\(mounted\|attached\): ' "$scratch/after.txt" && cleanup_failed=1
else
  echo "== cleanup: nothing left mounted, attached or on disk"
fi

node -e '
  const fs = require("fs"); let p = 0, f = 0, s = 0;
  for (const file of fs.readdirSync(process.argv[1])) {
    const r = JSON.parse(fs.readFileSync(process.argv[1] + "/" + file, "utf8"));
    p += r.numPassedTests; f += r.numFailedTests + (r.success ? 0 : 0); s += r.numPendingTests + r.numTodoTests;
    if (!r.success && r.numFailedTests === 0) f += 1; // a file that failed to load
  }
  f += Number(process.argv[2]) + Number(process.argv[3]);
  console.log(`tests: ${p} passed, ${f} failed, ${s} skipped`);
  process.exit(f > 0 ? 1 : 0);
' "$results" "$bench_failed" "$cleanup_failed"
