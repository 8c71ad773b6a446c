#!/usr/bin/env bash
# Runs qubes-core-admin's own storage tests with qvol's bridge in place of Qubes' driver:
#   integrations/qubes/run-upstream-tests.sh CHECKOUT [MODULE...]
# CHECKOUT is a qubes-core-admin source tree the user provides (nothing is fetched here,
# and no upstream code is copied into qvol). The bridge is registered under Qubes' driver
# name (file-reflink; with QVOL_UPSTREAM_AS=zfs, the zfs_zvol bridge as zfs, for the lab),
# a qvol daemon serves it on a socket of its own, and the modules run under Debian's
# python3 (default: qubes.tests.storage and the file-reflink pool tests). Needs root (the
# daemon admits root) and the built CLI (npm run build); installs the Debian packages the
# upstream code imports (python3-lxml, python3-jinja2, python3-libvirt) when they are missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
checkout=${1:?usage: run-upstream-tests.sh QUBES_CORE_ADMIN_CHECKOUT [MODULE...]}
checkout=$(cd "$checkout" && pwd)
shift
[ -f "$checkout/qubes/storage/__init__.py" ] || { echo "$checkout is not a qubes-core-admin tree" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run-upstream-tests.sh: needs root (the daemon admits root only)" >&2; exit 2; }
[ -f "$repo/dist/cli/main.js" ] || { echo "run-upstream-tests.sh: build qvol first (npm run build)" >&2; exit 2; }
python=/usr/bin/python3
if ! command -v sudo >/dev/null || ! "$python" -c 'import lxml, jinja2, libvirt, docutils, yaml, inotify' 2>/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-lxml python3-jinja2 python3-libvirt python3-docutils python3-yaml python3-inotify sudo >/dev/null
fi

work=$(mktemp -d /tmp/qvol-upstream.XXXXXX)
daemon_pid=
cleanup() {
  local rc=$?
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null || true; fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

# The bridge under Qubes' driver names: a shim module, and the checkout's own egg-info (made
# from its setup.py, as upstream's run-tests does) with the driver's entry point pointed at
# the shim, so qubes.storage finds the bridge where it looks for Qubes' driver.
as=${QVOL_UPSTREAM_AS:-file-reflink}
cat > "$work/qvol_upstream_shim.py" <<'EOF'
"""qvol's bridge under Qubes' driver names, for qubes-core-admin's own tests."""
from qvol_qubes import storage


class ReflinkPool(storage.ReflinkPool):
    driver = "file-reflink"


class ZfsPool(storage.ZfsPool):
    driver = "zfs"
EOF
case "$as" in
  file-reflink) shim=ReflinkPool ;;
  zfs) shim=ZfsPool ;;
  *) echo "QVOL_UPSTREAM_AS is file-reflink or zfs" >&2; exit 2 ;;
esac
(cd "$checkout" && "$python" setup.py -q egg_info --egg-base "$work" >/dev/null 2>&1)
entry_points=$(ls "$work"/*.egg-info/entry_points.txt)
# Only the VM classes and the storage drivers: the extensions need qrexec's sources too.
"$python" - "$entry_points" "$as" "qvol_upstream_shim:$shim" <<'EOF'
import configparser, sys
path, driver, target = sys.argv[1:]
points = configparser.ConfigParser(delimiters=("=",))
points.optionxform = str
points.read(path)
for group in list(points.sections()):
    if group not in ("qubes.vm", "qubes.storage", "qubes.tests.storage"):
        points.remove_section(group)
    elif group != "qubes.vm" and points.has_option(group, driver):
        points.set(group, driver, target)
with open(path, "w") as out:
    points.write(out)
EOF
grep -q "qvol_upstream_shim" "$entry_points" || { echo "no $as entry point in the checkout's setup.py" >&2; exit 2; }

export QVOL_DAEMON_SOCKET="$work/daemon.sock"
node "$repo/dist/cli/main.js" daemon --socket "$QVOL_DAEMON_SOCKET" 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 500); do [ -S "$QVOL_DAEMON_SOCKET" ] && break; sleep 0.01; done

if [ $# -eq 0 ]; then
  # Names are prefixes of MODULE/CLASS/FUNCTION (upstream's runner).
  if [ "$as" = zfs ]; then set -- qubes.tests.storage_zfs/; else set -- qubes.tests.storage/ qubes.tests.storage_reflink/TC_10_ReflinkPool/; fi
fi
cd "$checkout"
echo "== qubes-core-admin $(git -C "$checkout" log -1 --format=%h 2>/dev/null || echo '(not a git tree)'): $*, with qvol's bridge as $as"
# As upstream's run-tests runs them: its runner, its stand-ins for libvirt and qubesdb
# (test-packages), QUBES_TEST set, its egg-info (with the bridge's entry point).
QUBES_TEST=1 PYTHONPATH="$work:$here:$checkout/test-packages:$checkout" "$python" -m qubes.tests.run -v "$@"
