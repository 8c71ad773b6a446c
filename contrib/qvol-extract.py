#!/usr/bin/python3
"""Emergency extractor for qvol backup archives (docs/archive-format.md, format 1).

Restores one volume of one session from an archive directory and its passphrase, with
nothing but Debian's Python packages: python3-nacl (libsodium) and python3-zstandard.
Every object is authenticated before it is parsed, as qvol itself does.

    qvol-extract.py ARCHIVE VM:VOLUME OUTPUT [--session ID] [--list]

The passphrase comes from $QVOL_BACKUP_PASSPHRASE, else it is asked on the terminal.
OUTPUT is made sparse: chunks that were zero are not written.
"""
import argparse
import getpass
import hashlib
import hmac
import json
import os
import re
import struct
import sys

import nacl.bindings as sodium
import nacl.pwhash.argon2id as argon2id
import zstandard

MAGIC = b"QVOL"
TYPES = {"config": 1, "key": 2, "root": 3, "session": 4, "index": 5, "packheader": 6, "chunk": 7, "page": 8}
MiB = 1 << 20
PAGE_MAX = 4096 * 64


class Corrupt(Exception):
    pass


def header(kind):
    return MAGIC + bytes([1, TYPES[kind], 0, 0])


def read_object(root, name, limit):
    if not re.fullmatch(r"[a-z0-9/-]+", name) or ".." in name:
        raise Corrupt(f"{name}: not an object name")
    path = os.path.join(root, name)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise Corrupt(f"{name}: {size} bytes, more than {limit}")
        return os.read(fd, size) if size else b""
    finally:
        os.close(fd)


def read_range(root, name, offset, length):
    fd = os.open(os.path.join(root, name), os.O_RDONLY | os.O_NOFOLLOW)
    try:
        data = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(data) != length:
        raise Corrupt(f"{name}: ends before byte {offset + length}")
    return data


def hkdf(master, salt, purpose):
    prk = hmac.new(salt, master, hashlib.sha256).digest()
    return hmac.new(prk, b"qvol archive 1 " + purpose.encode() + b"\x01", hashlib.sha256).digest()


def blake(data, key=None):
    return hashlib.blake2b(data, digest_size=32, key=key or b"").digest()


def aead_open(key, sealed, ad, what):
    if len(sealed) < 40:
        raise Corrupt(f"{what}: too short")
    try:
        return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(sealed[24:], ad, sealed[:24], key)
    except Exception:
        raise Corrupt(f"{what}: failed authentication") from None


def unzstd(frame, limit, what):
    try:
        size = zstandard.get_frame_parameters(frame).content_size
        if size in (zstandard.CONTENTSIZE_UNKNOWN, zstandard.CONTENTSIZE_ERROR) or size > limit:
            raise Corrupt(f"{what}: a zstd frame without a size within {limit} bytes")
        out = zstandard.ZstdDecompressor().decompress(frame, max_output_size=limit)
    except zstandard.ZstdError:
        raise Corrupt(f"{what}: a zstd frame that does not decompress") from None
    if len(out) != size:
        raise Corrupt(f"{what}: frame shorter than its size")
    return out


class Archive:
    def __init__(self, root, passphrase_fn):
        self.root = root
        raw = read_object(root, "qvol-archive", 72)
        if len(raw) != 72 or raw[:8] != header("config"):
            raise Corrupt("qvol-archive: not a format 1 config")
        self.id = raw[8:24]
        encrypted, codec, log2 = raw[24], raw[25], raw[27]
        if encrypted > 1 or codec > 1 or not 16 <= log2 <= 22:
            raise Corrupt("qvol-archive: a field out of range")
        self.chunk_size = 1 << log2
        master = self.unlock(passphrase_fn()) if encrypted else bytes(32)
        self.keys = {p: hkdf(master, self.id, p) for p in ("config", "chunk-id", "data", "meta")}
        if not hmac.compare_digest(blake(raw[:40], self.keys["config"]), raw[40:]):
            raise Corrupt("qvol-archive: failed authentication")

    def unlock(self, passphrase):
        names = sorted(os.listdir(os.path.join(self.root, "keys")))[:16]
        for n in names:
            name = f"keys/{n}"
            b = read_object(self.root, name, 128)
            if len(b) != 128 or b[:8] != header("key") or b[8:24] != self.id:
                raise Corrupt(f"{name}: not a key of this archive")
            ops, mem = struct.unpack_from("<QQ", b, 40)
            if not (1 <= ops <= 16 and 8 * MiB <= mem <= 4 << 30):
                raise Corrupt(f"{name}: Argon2id limits out of range")
            kek = argon2id.kdf(32, passphrase.encode(), b[24:40], opslimit=ops, memlimit=mem)
            try:
                return aead_open(kek, b[56:], b[:56] + name.encode(), name)
            except Corrupt:
                continue
        sys.exit("qvol-extract: the passphrase does not open this archive")

    def opened(self, kind, name, expect_hash=None):
        b = read_object(self.root, name, 64 * MiB)
        if expect_hash is not None and blake(b).hex() != expect_hash:
            raise Corrupt(f"{name}: not the object its parent names")
        if b[:8] != header(kind):
            raise Corrupt(f"{name}: not a {kind}")
        plain = aead_open(self.keys["meta"], b[8:], b[:8] + name.encode(), name)
        return unzstd(plain, 256 * MiB, name)

    def metadata(self, kind, name, expect_hash=None):
        return json.loads(self.opened(kind, name, expect_hash))

    def moved(self, rid):
        """Where a blob whose pack is gone is now: prune moved it, and the index says (§10)."""
        if self.index is None:
            self.index = {}
            for ref in self.root_object["indexes"]:
                body = self.opened("index", ref["name"], ref["hash"])
                count = struct.unpack_from("<I", body)[0] if len(body) >= 4 else -1
                if len(body) != 4 + 64 * count:
                    raise Corrupt(f"{ref['name']}: a malformed index")
                for i in range(4, len(body), 64):
                    self.index[body[i:i + 32]] = body[i:i + 64]
        return self.index.get(rid)

    def current_root(self):
        names = [f"roots/{n}" for n in os.listdir(os.path.join(self.root, "roots"))]
        names = [n for n in names if re.fullmatch(r"roots/[0-9a-f]{16}-[0-9a-f]{16}", n)]
        if not names:
            sys.exit("qvol-extract: the archive has no sessions")
        top = max(int(n[6:22], 16) for n in names)
        chosen = [n for n in names if int(n[6:22], 16) == top]
        if len(chosen) != 1:
            raise Corrupt(f"{len(chosen)} roots of generation {top}")
        root = self.metadata("root", chosen[0])
        if root.get("generation") != top or root.get("archive") != self.id.hex():
            raise Corrupt(f"{chosen[0]}: not the root of this archive at generation {top}")
        self.root_object, self.index = root, None
        return root

    def blob(self, ref, kind, limit):
        rid, pack, offset, stored, plain_len = ref[:32], ref[32:48].hex(), *struct.unpack_from("<QII", ref, 48)
        name = f"packs/{pack[:2]}/{pack}"
        if stored > limit + 1100:
            raise Corrupt(f"{name}: a blob larger than allowed")
        if not os.path.lexists(os.path.join(self.root, name)):
            moved = self.moved(rid)
            if moved is None or moved[32:48].hex() == pack or moved[60:64] != ref[60:64]:
                raise Corrupt(f"{name}: missing, and the index has no other place for its blob")
            return self.blob(moved, kind, limit)
        b = read_range(self.root, name, offset, stored)
        if b[:8] != header(kind):
            raise Corrupt(f"{name}@{offset}: not a {kind}")
        plain = aead_open(self.keys["data"], b[8:], b[:8] + rid, f"{name}@{offset}")
        data = plain[1:] if plain[0] == 0 else unzstd(plain[1:], limit, f"{name}@{offset}") if plain[0] == 1 else None
        if data is None or len(data) != plain_len or not hmac.compare_digest(blake(data, self.keys["chunk-id"]), rid):
            raise Corrupt(f"{name}@{offset}: not the {kind} its reference names")
        return data

    def walk(self, ref, level, first, chunks, visit):
        page = self.blob(ref, "page", PAGE_MAX)
        if len(page) % 64:
            raise Corrupt("a page that is not whole references")
        span = 4096 ** level
        for i in range(len(page) // 64):
            child = page[i * 64:(i + 1) * 64]
            if child == bytes(64):
                continue
            index = first + i * span
            if index >= chunks:
                raise Corrupt("a page listing more chunks than its volume has")
            if level == 0:
                visit(index, self.blob(child, "chunk", self.chunk_size))
            else:
                self.walk(child, level - 1, index, chunks, visit)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("archive")
    ap.add_argument("volume", help="VM:VOLUME")
    ap.add_argument("output")
    ap.add_argument("--session", help="a session id or its prefix (default: the newest holding the VM)")
    args = ap.parse_args()
    vm_name, _, vol_name = args.volume.partition(":")
    ask = lambda: os.environ.get("QVOL_BACKUP_PASSPHRASE") or getpass.getpass("Passphrase: ")
    try:
        a = Archive(args.archive, ask)
        root = a.current_root()
        found = None
        for ref in root["sessions"]:
            s = a.metadata("session", ref["name"], ref["hash"])
            if args.session and not s["id"].startswith(args.session):
                continue
            for vm in s["vms"]:
                if vm["name"] == vm_name:
                    for vol in vm["volumes"]:
                        if vol["name"] == vol_name:
                            found = (s["id"], vol)
        if found is None:
            sys.exit(f"qvol-extract: no backup of {args.volume} in this archive")
        session, vol = found
        size, depth, top = int(vol["size"]), int(vol["tree"]["depth"]), vol["tree"]["root"]
        chunks = -(-size // a.chunk_size)
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, size)

            def visit(index, data):
                if len(data) != min(a.chunk_size, size - index * a.chunk_size):
                    raise Corrupt(f"chunk {index} has the wrong length")
                os.pwrite(fd, data, index * a.chunk_size)

            if top is not None:
                a.walk(bytes.fromhex(top), depth - 1, 0, chunks, visit)
            os.fsync(fd)
        finally:
            os.close(fd)
        print(f"{args.volume} of session {session}: {size} bytes written to {args.output}")
    except Corrupt as e:
        sys.exit(f"qvol-extract: the archive is damaged or was changed: {e}")


if __name__ == "__main__":
    main()
