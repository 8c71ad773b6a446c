"""Requests to ``qvol daemon``: one connection per call, so a daemon restart costs only the
calls in flight, and a cancelled coroutine closes its connection, which cancels its call."""

import asyncio
import itertools
import json
import os
import socket

from . import compat

#: Where the daemon listens; QVOL_DAEMON_SOCKET overrides it.
DEFAULT_SOCKET = "/run/qvol/daemon.sock"
#: A reply longer than this is refused (the daemon never sends one).
MAX_REPLY_BYTES = 16 << 20
#: The blocking calls answer questions (is_dirty, revisions, usage); qubesd's event loop
#: waits for them, so a daemon that does not answer in this many seconds is an error.
SYNC_TIMEOUT_S = 60

_ids = itertools.count(1)


def socket_path():
    return os.environ.get("QVOL_DAEMON_SOCKET", DEFAULT_SOCKET)


def _request(method, params):
    return (json.dumps({"v": 1, "id": next(_ids), "method": method, "params": params}) + "\n").encode()


def _unavailable(path, err):
    return compat.StoragePoolException(
        "qvol daemon at {}: {} (is qvol-daemon.socket running?)".format(path, err))


def _result(line, path):
    if not line.endswith(b"\n"):
        raise compat.StoragePoolException(
            "qvol daemon at {} closed the connection before it replied: "
            "the operation may not have run; see its log".format(path))
    reply = json.loads(line)
    error = reply.get("error")
    if error is not None:
        raise exception_for(error)
    return reply.get("result")


def exception_for(error):
    """The Qubes exception for the daemon's error reply."""
    kind, message = error.get("type"), error.get("message", "qvol daemon: unknown error")
    if kind == "QubesValueError":
        return compat.QubesValueError(message)
    if kind == "NotImplementedError":
        return NotImplementedError(message)
    if kind == "RevisionNotFoundError":
        return compat.QubesVolumeRevisionNotFoundError(message)
    return compat.StoragePoolException(message)


def call(method, params):
    """One call, blocking: for the properties qubesd reads synchronously."""
    path = socket_path()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(SYNC_TIMEOUT_S)
        try:
            sock.connect(path)
            sock.sendall(_request(method, params))
            with sock.makefile("rb") as reader:
                line = reader.readline(MAX_REPLY_BYTES)
        except socket.timeout as err:
            raise compat.StoragePoolException(
                "qvol daemon at {}: no answer to {} in {} s".format(path, method, SYNC_TIMEOUT_S)) from err
        except OSError as err:
            raise _unavailable(path, err) from err
    return _result(line, path)


async def acall(method, params):
    """One call, awaited: for the operations qubesd awaits (start, stop, imports...)."""
    path = socket_path()
    try:
        reader, writer = await asyncio.open_unix_connection(path, limit=MAX_REPLY_BYTES)
    except OSError as err:
        raise _unavailable(path, err) from err
    try:
        writer.write(_request(method, params))
        await writer.drain()
        line = await reader.readline()
    finally:
        writer.close()
    return _result(line, path)
