"""Qubes' base classes and exceptions: qubesd's own inside dom0, small stand-ins elsewhere.

The stand-ins keep what the bridge relies on (the constructor checks of qubes.storage.Volume,
the exception classes), so the bridge runs and is tested on a machine without qubesd.
"""
# pylint: disable=too-few-public-methods,unused-import

try:  # inside dom0
    from qubes.exc import QubesException, QubesValueError
    from qubes.storage import BlockDevice, Pool, StoragePoolException, Volume

    try:
        from qubes.exc import QubesVolumeRevisionNotFoundError
    except ImportError:  # older qubes-core-admin
        QubesVolumeRevisionNotFoundError = StoragePoolException
    IN_QUBES = True
except ImportError:
    IN_QUBES = False

    class QubesException(Exception):
        """qubes.exc.QubesException"""

    class QubesValueError(QubesException, ValueError):
        """qubes.exc.QubesValueError"""

    class StoragePoolException(QubesException):
        """qubes.storage.StoragePoolException"""

    class QubesVolumeRevisionNotFoundError(StoragePoolException, KeyError):
        """qubes.exc.QubesVolumeRevisionNotFoundError"""

    class BlockDevice:
        """qubes.storage.BlockDevice"""

        def __init__(self, path, name, script=None, rw=True, domain=None, devtype="disk"):
            self.path, self.name, self.script = path, name, script
            self.rw, self.domain, self.devtype = rw, domain, devtype

    class Pool:
        """qubes.storage.Pool: name, revisions_to_keep, ephemeral_volatile."""

        def __init__(self, *, name, revisions_to_keep=1, ephemeral_volatile=False):
            self.name = name
            self.revisions_to_keep = revisions_to_keep
            self.ephemeral_volatile = ephemeral_volatile in (True, "True", "1", "on")

        def __str__(self):
            return self.name

    class Volume:
        """qubes.storage.Volume: the constructor's checks (qubes-storage spec 1.1)."""

        devtype = "disk"
        domain = None

        def __init__(self, name, pool, vid, *, revisions_to_keep=0, rw=False, save_on_stop=False,
                     size=0, snap_on_start=False, source=None, ephemeral=None):
            if snap_on_start and source is None:
                raise StoragePoolException(
                    "snap_on_start specified on {!r} but no volume source set".format(name))
            if not snap_on_start and source is not None:
                raise StoragePoolException(
                    "source specified on {!r} but no snap_on_start set".format(name))
            self.name, self.pool, self.vid = str(name), pool, vid
            self.revisions_to_keep = int(revisions_to_keep)
            self.rw, self.save_on_stop, self.snap_on_start = rw, save_on_stop, snap_on_start
            self.source = source
            self._size = int(size)
            self._ephemeral = ephemeral

        @property
        def ephemeral(self):
            if self._ephemeral is not None:
                return self._ephemeral
            if self.snap_on_start or self.save_on_stop or self.domain is not None or not self.rw:
                return False
            return self.pool.ephemeral_volatile

        @ephemeral.setter
        def ephemeral(self, value):
            if value and (self.snap_on_start or self.save_on_stop or self.domain is not None
                          or not self.rw):
                raise QubesValueError(
                    "Cannot enable ephemeral on snap_on_start or save_on_stop or non-dom0 "
                    "or not writable volume")
            self._ephemeral = bool(value)

        def __str__(self):
            return self.vid
