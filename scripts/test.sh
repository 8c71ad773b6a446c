#!/usr/bin/env bash
# qvol's test command: every tier this machine allows, each skipped tier named with why,
# then the quick benchmark so it stays runnable. Ends with one "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

bash scripts/install-deps.sh || exit 1
[ -f build/Release/qvol.node ] || node scripts/build-native.mjs || exit 1
npx --no-install tsc -p tsconfig.json || exit 1

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
tiers=()
run_tier() {  # name, then the vitest arguments
  local name=$1; shift
  echo "== tier $name"
  npx --no-install vitest run "$@" --reporter=default --reporter=json --outputFile="$results/$name.json"
  tiers+=("$name")
}

run_tier unit --project unit
if [ "$(id -u)" = 0 ] && [ -e /dev/loop-control ]; then
  run_tier fs --project fs
else
  echo "== tier fs: skipped: needs root and /dev/loop-control for loop-mounted ext4, btrfs and XFS"
  # the host-filesystem part needs neither
  run_tier fs-host --project fs test/fs/copy-host.test.ts
fi
if [ "$(id -u)" != 0 ]; then
  echo "== tier lab: skipped: needs root to install the lab (QEMU, a Debian kernel with OpenZFS)"
elif ! bash test/lab/setup.sh; then
  echo "== tier lab: skipped: the lab could not be installed (test/lab/setup.sh failed, see above)"
else
  # Inside the VM the working directory is shared, /tmp is not: the report comes back here.
  echo "== tier lab"
  rm -f .lab-results.json
  bash test/lab/run.sh -m 3072 -t 3600 -- npx --no-install vitest run --project lab --reporter=default \
    --reporter=json --outputFile=.lab-results.json
  if [ -f .lab-results.json ]; then mv .lab-results.json "$results/lab.json"; else
    echo '{"numPassedTests":0,"numFailedTests":1,"numPendingTests":0,"numTodoTests":0,"success":false}' > "$results/lab.json"
  fi
  tiers+=(lab)
fi

echo "== bench (quick)"
bench_failed=0
node dist/bench/run.js --quick || bench_failed=1

node -e '
  const fs = require("fs"); let p = 0, f = 0, s = 0;
  for (const file of fs.readdirSync(process.argv[1])) {
    const r = JSON.parse(fs.readFileSync(process.argv[1] + "/" + file, "utf8"));
    p += r.numPassedTests; f += r.numFailedTests + (r.success ? 0 : 0); s += r.numPendingTests + r.numTodoTests;
    if (!r.success && r.numFailedTests === 0) f += 1; // a file that failed to load
  }
  f += Number(process.argv[2]);
  console.log(`tests: ${p} passed, ${f} failed, ${s} skipped`);
  process.exit(f > 0 ? 1 : 0);
' "$results" "$bench_failed"
