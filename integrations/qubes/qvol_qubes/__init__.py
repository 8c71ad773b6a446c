"""qubesd storage pool drivers that run qvol's drivers through ``qvol daemon``.

The classes in :mod:`qvol_qubes.storage` have the constructor signatures of Qubes' own
drivers, so ``qvm-pool --help-drivers`` and ``driver_parameters`` read them; every Pool and
Volume method is one request to the daemon (docs/daemon-protocol.md in qvol), carrying the
pool's and the volume's configuration, since in Qubes qubes.xml is the registry.
"""
