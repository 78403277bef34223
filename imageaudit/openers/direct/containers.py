"""The disk a container format holds, as a :class:`~.blockdev.BlockDevice`.

qcow2 and VDI are read by our own small readers (:mod:`.qcow2`, :mod:`.vdi`); VMDK
(monolithicSparse, streamOptimized) by libvmdk and VHD/VHDX by libvhdi, each given a file
object over our own fd window, never a path. ``raw`` is the window itself. The format is the
one the header check decided; nothing here probes.
"""

from __future__ import annotations

from imageaudit.openers.direct.blockdev import (
    BlockDevice,
    DiskError,
    FileObject,
    LibyalDevice,
    libyal_reason,
)
from imageaudit.openers.direct.qcow2 import Qcow2
from imageaudit.openers.direct.vdi import Vdi

FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vpc", "vhdx")


def _vmdk(file: BlockDevice) -> BlockDevice:
    import pyvmdk  # type: ignore[import-not-found]

    handle = pyvmdk.handle()
    obj = FileObject(file)
    try:
        handle.open_file_object(obj)
        if handle.get_number_of_extents() != 1:
            raise DiskError(f"VMDK with {handle.get_number_of_extents()} extents")
        # The one extent is this file (the header check refused any other): give libvmdk our
        # object for it, so it never opens a file by the name the descriptor carries.
        handle.open_extent_data_files_as_file_objects([FileObject(file)])
        return LibyalDevice(handle, handle.get_media_size(), "vmdk")
    except OSError as exc:
        raise DiskError(f"libvmdk cannot read the VMDK: {libyal_reason(exc)}") from exc


def _vhdi(file: BlockDevice, fmt: str) -> BlockDevice:
    import pyvhdi  # type: ignore[import-not-found]

    handle = pyvhdi.file()
    try:
        handle.open_file_object(FileObject(file))
        if handle.get_parent_identifier() is not None:
            raise DiskError(f"{fmt} image is differencing (has a parent)")
        return LibyalDevice(handle, handle.get_media_size(), fmt)
    except OSError as exc:
        raise DiskError(f"libvhdi cannot read the {fmt}: {libyal_reason(exc)}") from exc


def open_container(fmt: str, file: BlockDevice) -> BlockDevice:
    """The guest disk inside ``file`` read as ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "raw":
        return file
    if fmt == "qcow2":
        return Qcow2(file)
    if fmt == "vdi":
        return Vdi(file)
    if fmt == "vmdk":
        return _vmdk(file)
    if fmt in ("vpc", "vhdx"):
        return _vhdi(file, fmt)
    raise DiskError(f"format {fmt!r} is not read by the direct reader")
