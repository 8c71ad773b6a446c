"""The bridge's Pool and Volume classes against a real ``qvol daemon`` process, on
file-reflink pools in a scratch directory: the driver contract as qubesd drives it,
Qubes' exception classes, calls at once, a daemon killed and restarted mid-operation,
malformed and oversized requests, and a peer that is not root."""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
MAIN = os.path.join(REPO, "dist", "cli", "main.js")
MIB = 1 << 20

from qvol_qubes import compat  # noqa: E402  pylint: disable=wrong-import-position
from qvol_qubes.storage import ReflinkPool  # noqa: E402  pylint: disable=wrong-import-position

SKIP = None
if os.geteuid() != 0:
    SKIP = "needs root: the daemon admits root only"
elif not os.path.exists(MAIN):
    SKIP = "needs the built CLI (npm run build)"


class VM:  # pylint: disable=too-few-public-methods
    """What init_volume reads of a qube."""

    def __init__(self, name, template=False):
        self.name = name
        self.dir_path_prefix = "vm-templates" if template else "appvms"


def run(coro):
    return asyncio.run(coro)


@unittest.skipIf(SKIP, SKIP)
class BridgeTest(unittest.TestCase):
    daemon = None

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="qvol-bridge-")
        cls.sock = os.path.join(cls.dir, "daemon.sock")
        os.environ["QVOL_DAEMON_SOCKET"] = cls.sock
        cls.start_daemon()
        cls.pool = ReflinkPool(name="a", dir_path=os.path.join(cls.dir, "a"), setup_check="False")
        cls.other = ReflinkPool(name="b", dir_path=os.path.join(cls.dir, "b"), setup_check=False)
        run(cls.pool.setup())
        run(cls.other.setup())

    @classmethod
    def tearDownClass(cls):
        cls.stop_daemon()
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def start_daemon(cls):
        cls.daemon = subprocess.Popen(["node", MAIN, "daemon", "--socket", cls.sock],
                                      stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(cls.sock)
                    s.sendall(b'{"v":1,"id":1,"method":"hello"}\n')
                    if b'"result"' in s.makefile("rb").readline():
                        return
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError("the daemon did not start")

    @classmethod
    def stop_daemon(cls, sig=signal.SIGTERM):
        if cls.daemon and cls.daemon.poll() is None:
            cls.daemon.send_signal(sig)
            cls.daemon.wait(30)

    def origin(self, vm, name="private", size=MIB, pool=None):
        volume = (pool or self.pool).init_volume(VM(vm), {
            "name": name, "rw": True, "save_on_stop": True, "size": size})
        run(volume.create())
        return volume

    def test_contract(self):
        """create, start, commit, revisions, revert, resize, import_data, export, remove."""
        vol = self.origin("work")
        self.assertEqual(vol.vid, "appvms/work/private")
        self.assertIs(self.pool.get_volume(vol.vid), vol)
        self.assertTrue(run(vol.verify()))
        run(vol.start())
        self.assertTrue(vol.is_dirty())
        with open(vol.block_device().path, "r+b") as f:
            f.write(b"hello qubes")
        run(vol.stop())
        self.assertFalse(vol.is_dirty())
        self.assertEqual(len(vol.revisions), 1)
        path = run(vol.export())
        with open(path, "rb") as f:
            self.assertEqual(f.read(11), b"hello qubes")
        run(vol.export_end(path))
        run(vol.revert(next(iter(vol.revisions))))
        run(vol.resize(2 * MIB))
        self.assertEqual(vol.size, 2 * MIB)
        target = run(vol.import_data(4 * MIB))
        with open(target, "r+b") as f:
            f.write(b"imported")
        run(vol.import_data_end(True))
        self.assertEqual(vol.size, 4 * MIB)
        self.assertEqual(self.pool.config, {
            "name": "a", "driver": "qvol_file_reflink", "revisions_to_keep": 1,
            "ephemeral_volatile": False, "dir_path": os.path.join(self.dir, "a")})
        self.assertGreater(self.pool.size, 0)
        run(vol.remove())
        self.assertNotIn(vol.vid, [v.vid for v in self.pool.list_volumes()])

    def test_snapshot_and_clone_across_pools(self):
        tmpl = self.pool.init_volume(VM("tmpl", template=True), {
            "name": "root", "rw": False, "save_on_stop": True, "size": MIB})
        run(tmpl.create())
        app = self.pool.init_volume(VM("app"), {
            "name": "root", "rw": True, "snap_on_start": True, "source": tmpl, "size": MIB})
        run(app.create())
        run(app.start())
        self.assertFalse(app.is_outdated())
        run(app.stop())
        copy = self.origin("copy", name="root", pool=self.other)
        run(copy.import_volume(tmpl))
        self.assertEqual(copy.size, MIB)
        for v in (app, tmpl, copy):
            run(v.remove())

    def test_errors_are_qubes_exceptions(self):
        vol = self.origin("errs")
        run(vol.start())
        with self.assertRaisesRegex(compat.StoragePoolException,
                                    "^Cannot import data to dirty volume appvms/errs/private, "
                                    "stop the qube first$"):
            run(vol.import_data(MIB))
        run(vol.stop())
        with self.assertRaises(compat.QubesVolumeRevisionNotFoundError):
            run(vol.revert("nope"))
        # An ephemeral flag sent for a save_on_stop volume: the daemon refuses it too.
        vol._ephemeral = True  # pylint: disable=protected-access
        with self.assertRaisesRegex(compat.QubesValueError, "Cannot enable ephemeral"):
            vol.is_dirty()
        vol._ephemeral = None  # pylint: disable=protected-access
        run(vol.remove())

    def test_calls_at_once(self):
        vols = [self.origin("par%d" % i) for i in range(8)]

        async def cycle(v):
            await v.start()
            await v.stop()

        async def all_at_once():
            await asyncio.gather(*(cycle(v) for v in vols))

        run(all_at_once())
        self.assertFalse(any(v.is_dirty() for v in vols))
        for v in vols:
            run(v.remove())

    def test_malformed_and_oversized_requests(self):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.sock)
            s.sendall(b"not json\n")
            reply = json.loads(s.makefile("rb").readline())
            self.assertEqual(reply["error"]["type"], "ProtocolError")
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.sock)
            try:
                s.sendall(b"x" * (2 * MIB))
            except OSError:
                pass  # the daemon may close first
            reply = json.loads(s.makefile("rb").readline())
            self.assertIn("longer than", reply["error"]["message"])
        self.assertTrue(run(self.origin("after").verify()))

    def test_non_root_refused(self):
        os.chmod(self.sock, 0o666)
        os.chmod(self.dir, 0o711)
        try:
            script = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
                      "s.sendall(b'{\"v\":1,\"id\":1,\"method\":\"hello\"}\\n');"
                      "print(s.makefile().readline())")
            python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
            out = subprocess.run([python, "-c", script, self.sock], user=65534, group=65534,
                                 capture_output=True, text=True, check=True).stdout
            self.assertEqual(json.loads(out)["error"]["type"], "PermissionDenied")
        finally:
            os.chmod(self.sock, 0o600)
            os.chmod(self.dir, 0o700)

    def test_socket_activation(self):
        """The daemon takes the listening socket systemd passes (fd 3, LISTEN_PID, LISTEN_FDS)."""
        path = os.path.join(self.dir, "activated.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen()
        fd = listener.fileno()
        script = 'export LISTEN_PID=$$ LISTEN_FDS=1; exec node "$0" daemon'
        daemon = subprocess.Popen(["sh", "-c", script, MAIN], stdin=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, pass_fds=(fd,),
                                  preexec_fn=lambda: os.dup2(fd, 3) if fd != 3 else None)
        listener.close()
        try:
            for _ in range(500):
                try:
                    with socket.socket(socket.AF_UNIX) as s:
                        s.connect(path)
                        s.sendall(b'{"v":1,"id":1,"method":"hello"}\n')
                        reply = json.loads(s.makefile("rb").readline())
                        break
                except (OSError, ValueError):
                    time.sleep(0.01)
            self.assertEqual(reply["result"]["protocol"], 1)
        finally:
            daemon.terminate()
            daemon.wait(30)

    def test_daemon_killed_and_restarted(self):
        src = self.origin("bigsrc", size=256 * MIB, pool=self.other)
        target = run(src.import_data(256 * MIB))
        with open(target, "r+b") as f:
            for i in range(256):
                f.write(bytes([i % 251 + 1]) * MIB)
        run(src.import_data_end(True))
        dst = self.origin("bigdst", size=256 * MIB)

        async def kill_mid_import():
            task = asyncio.ensure_future(dst.import_volume(src))
            await asyncio.sleep(0.05)
            type(self).stop_daemon(signal.SIGKILL)
            with self.assertRaisesRegex(compat.StoragePoolException, "closed the connection|qvol daemon"):
                await task

        run(kill_mid_import())
        with self.assertRaisesRegex(compat.StoragePoolException, "qvol daemon at .*: "):
            dst.is_dirty()
        type(self).start_daemon()
        self.assertFalse(dst.is_dirty())
        run(dst.start())
        run(dst.stop())
        run(dst.remove())
        run(src.remove())


if __name__ == "__main__":
    unittest.main()
