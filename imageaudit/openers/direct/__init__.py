"""The direct VM disk reader: qcow2/raw/vmdk/vhd/vhdx/vdi disks read in user space.

No appliance is booted: container formats, partition tables, LVM2 and ext2/3/4 or XFS are
parsed in a confined child process (:mod:`.child`, :mod:`.confine`) with our own small
readers (qcow2 with compressed clusters, VDI, GPT/MBR) and libyal's Python bindings (libvmdk,
libvhdi, libvslvm, libfsext, libfsxfs), each given file objects over one descriptor, never a
path. The result is an :class:`~imageaudit.imagefs.ImageFS` with the same paths, modes,
owners, sizes and link targets as the libguestfs opener gives.

:class:`DirectUnsupported` marks what libguestfs may still read (btrfs, LUKS, non-linear
LVs, qcow2 subclusters): a caller choosing ``auto`` falls back to libguestfs on it, with
its ``reason`` as the one-line note.
"""

from __future__ import annotations

from imageaudit.openers.direct.fs import (
    DirectError,
    DirectFS,
    DirectUnsupported,
    Limits,
    open_direct,
)

__all__ = [
    "DirectError",
    "DirectFS",
    "DirectUnsupported",
    "Limits",
    "open_direct",

]
