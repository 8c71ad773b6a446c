"""Pools and volumes for qubesd, each method one request to ``qvol daemon``.

Every request carries the pool's configuration and the volume's (qubes.xml is the registry;
the daemon keeps none): qubesd changes ``rw``, ``revisions_to_keep``, ``ephemeral`` and the
size on these objects in place, and the next request brings the new values along.
"""
# pylint: disable=invalid-overridden-method

import os

from . import compat
from .client import acall, call

_CHUNK = 1 << 20


def _scalar_options(options):
    """The options as the daemon takes them: strings, numbers and booleans, None left out."""
    return {k: v for k, v in options.items() if v is not None and isinstance(v, (str, int, bool))}


class QvolVolume(compat.Volume):
    """A volume of a qvol pool (Qubes' Volume contract, served by the daemon)."""

    def __init__(self, *args, vm_name=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._vm_name = vm_name
        self._import_size = None

    # -- what each request carries ---------------------------------------------------------

    def spec(self):
        """This volume's configuration, as the daemon takes it."""
        spec = {
            "name": self.name, "vid": self.vid, "rw": bool(self.rw),
            "snap_on_start": bool(self.snap_on_start), "save_on_stop": bool(self.save_on_stop),
            "revisions_to_keep": int(self.revisions_to_keep), "size": int(self._size),
        }
        if self._vm_name is not None:
            spec["vm"] = self._vm_name
        if self._ephemeral is not None:
            spec["ephemeral"] = bool(self._ephemeral)
        if self.source is not None:
            spec["source"] = self.source.spec()
        return spec

    def _params(self, **extra):
        params = {"pool": self.pool.qvol_config(), "volume": self.spec()}
        params.update(extra)
        return params

    # -- the contract ----------------------------------------------------------------------

    async def create(self):
        await acall("volume.create", self._params())

    async def remove(self):
        await acall("volume.remove", self._params())
        self.pool.forget(self.vid)

    async def start(self):
        await acall("volume.start", self._params())

    async def stop(self):
        await acall("volume.stop", self._params())

    async def start_encrypted(self, name):
        return await acall("volume.start_encrypted", self._params(name=name))

    async def stop_encrypted(self, name):
        await acall("volume.stop_encrypted", self._params(name=name))

    def encrypted_volume_path(self, qube_name, device_name):
        # qvol's drivers name the mapping from the volume, as Qubes' lvm driver does.
        del qube_name
        return call("volume.encrypted_volume_path", self._params(device_name=device_name))

    async def verify(self):
        return await acall("volume.verify", self._params())

    def is_dirty(self):
        return call("volume.is_dirty", self._params())

    def is_outdated(self):
        return call("volume.is_outdated", self._params())

    @property
    def revisions(self):
        return call("volume.revisions", self._params())

    async def revert(self, revision=None):
        await acall("volume.revert", self._params(revision=revision))

    async def resize(self, size):
        self._size = await acall("volume.resize", self._params(size=int(size)))

    @property
    def size(self):
        return self._size

    def _info(self):
        return call("volume.info", self._params())

    @property
    def usage(self):
        return self._info()["usage"]

    @property
    def path(self):
        return self._info()["path"]

    def block_device(self):
        return compat.BlockDevice(self._info()["path"], self.name, None, self.rw, self.domain,
                                  self.devtype)

    async def export(self):
        return await acall("volume.export", self._params())

    async def export_end(self, path):
        await acall("volume.export_end", self._params(path=path))

    async def import_data(self, size):
        path = await acall("volume.import_data", self._params(size=int(size)))
        self._import_size = int(size)
        return path

    async def import_data_end(self, success):
        await acall("volume.import_data_end", self._params(success=bool(success)))
        if success and self._import_size is not None:
            self._size = self._import_size
        self._import_size = None

    async def import_volume(self, src_volume):
        """A qvol volume's data by the daemon (reflink, zfs clone, thin snapshot, or the copy
        engine); another driver's by reading its export, zero blocks left as holes."""
        if isinstance(src_volume, QvolVolume):
            await acall("volume.import_volume", self._params(
                source={"pool": src_volume.pool.qvol_config(), "volume": src_volume.spec()}))
            self._size = src_volume.size
            return self
        src_path = await _maybe_await(src_volume.export())
        try:
            target = await self.import_data(src_volume.size)
            ok = False
            try:
                _sparse_copy(src_path, target, src_volume.size)
                ok = True
            finally:
                await self.import_data_end(ok)
        finally:
            await _maybe_await(src_volume.export_end(src_path))
        return self


async def _maybe_await(value):
    if hasattr(value, "__await__"):
        return await value
    return value


def _sparse_copy(src_path, dst_path, size):
    """Copies `size` bytes, seeking over whole zero chunks (the target reads zero there)."""
    zero = bytes(_CHUNK)
    with open(src_path, "rb") as src, open(dst_path, "r+b") as dst:
        done = 0
        while done < size:
            data = src.read(min(_CHUNK, size - done))
            if not data:
                break
            if data != zero[:len(data)]:
                dst.seek(done)
                dst.write(data)
            done += len(data)
        dst.flush()
        os.fsync(dst.fileno())


class QvolPool(compat.Pool):
    """A pool of a qvol driver. Subclasses give Qubes' driver name, qvol's, and the
    constructor signature that ``driver_parameters`` reads."""

    driver = None
    qvol_driver = None
    #: Options kept in the pool's config (qubes.xml); the others only reach the daemon.
    persisted = ()

    def __init__(self, *, name, revisions_to_keep=1, ephemeral_volatile=False, **options):
        super().__init__(name=name, revisions_to_keep=revisions_to_keep,
                         ephemeral_volatile=ephemeral_volatile)
        self._options = options
        self._volumes = {}

    def qvol_config(self):
        config = {"name": self.name, "driver": self.qvol_driver,
                  "revisions_to_keep": int(self.revisions_to_keep),
                  "ephemeral_volatile": bool(self.ephemeral_volatile)}
        config.update(_scalar_options(self._options))
        return config

    @property
    def config(self):
        config = {"name": self.name, "driver": self.driver,
                  "revisions_to_keep": self.revisions_to_keep,
                  "ephemeral_volatile": self.ephemeral_volatile}
        config.update({k: v for k, v in self._options.items() if k in self.persisted and v is not None})
        return config

    async def setup(self):
        await acall("pool.setup", {"pool": self.qvol_config()})

    async def destroy(self):
        await acall("pool.destroy", {"pool": self.qvol_config()})

    def init_volume(self, vm, volume_config):
        config = dict(volume_config)
        config.pop("internal", None)
        if "vid" not in config:
            config["vid"] = call("pool.init_volume", {
                "pool": self.qvol_config(), "vm": vm.name,
                "dir_path_prefix": getattr(vm, "dir_path_prefix", "appvms"),
                "volume": {"name": config["name"]}})["vid"]
        config.setdefault("revisions_to_keep", self.revisions_to_keep)
        config["pool"] = self
        volume = QvolVolume(vm_name=vm.name, **config)
        self._volumes[volume.vid] = volume
        return volume

    def forget(self, vid):
        self._volumes.pop(vid, None)

    def list_volumes(self):
        return list(self._volumes.values())

    def get_volume(self, vid):
        return self._volumes[vid]

    def _usage(self):
        return call("pool.usage", {"pool": self.qvol_config()})

    @property
    def size(self):
        return self._usage()["size"]

    @property
    def usage(self):
        return self._usage()["usage"]

    @property
    def usage_details(self):
        return self._usage()["usage_details"]

    def included_in(self, app):
        del app
        return None


class ReflinkPool(QvolPool):
    """qvol's file-reflink: Qubes' layout, so a file-reflink pool moves here as it is."""

    driver = "qvol_file_reflink"
    qvol_driver = "file-reflink"
    persisted = ("dir_path",)

    def __init__(self, *, name, revisions_to_keep=1, dir_path, setup_check=True,
                 ephemeral_volatile=False):
        super().__init__(name=name, revisions_to_keep=revisions_to_keep,
                         ephemeral_volatile=ephemeral_volatile,
                         dir_path=os.path.abspath(dir_path),
                         setup_check=str(setup_check).lower() not in ("false", "0", "no", "off"))


class ZfsPool(QvolPool):
    """qvol's zfs_zvol: volumes as zvols under zpool_name (or container)."""

    driver = "qvol_zfs"
    qvol_driver = "zfs_zvol"
    persisted = ("zpool_name", "container", "block_devices", "force")

    def __init__(self, *, name, zpool_name=None, container=None, block_devices=None, force=False,
                 revisions_to_keep=1, ephemeral_volatile=False):
        super().__init__(name=name, revisions_to_keep=revisions_to_keep,
                         ephemeral_volatile=ephemeral_volatile, zpool_name=zpool_name,
                         container=container, block_devices=block_devices, force=force)


class ZfsEncryptedPool(QvolPool):
    """qvol's zfs_encrypted: an encryption root unlocked by passphrase, unloaded when idle."""

    driver = "qvol_zfs_encrypted"
    qvol_driver = "zfs_encrypted"
    persisted = ("zpool_name", "unload_timeout", "passphrase_command")

    def __init__(self, *, name, zpool_name, unload_timeout=None, passphrase_command=None,
                 revisions_to_keep=1, ephemeral_volatile=False):
        super().__init__(name=name, revisions_to_keep=revisions_to_keep,
                         ephemeral_volatile=ephemeral_volatile, zpool_name=zpool_name,
                         unload_timeout=unload_timeout, passphrase_command=passphrase_command)


class ThinPool(QvolPool):
    """qvol's lvm_thin: Qubes' LV names, so an lvm_thin pool moves here as it is."""

    driver = "qvol_lvm_thin"
    qvol_driver = "lvm_thin"
    persisted = ("volume_group", "thin_pool", "create_thin_pool", "block_devices", "force")

    def __init__(self, *, name, volume_group, thin_pool, create_thin_pool=False,
                 block_devices=None, force=False, revisions_to_keep=1, ephemeral_volatile=False):
        super().__init__(name=name, revisions_to_keep=revisions_to_keep,
                         ephemeral_volatile=ephemeral_volatile, volume_group=volume_group,
                         thin_pool=thin_pool, create_thin_pool=create_thin_pool,
                         block_devices=block_devices, force=force)
