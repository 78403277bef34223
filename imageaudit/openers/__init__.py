"""Openers turn what the user names into an :class:`~imageaudit.imagefs.ImageFS`.

What kind of image an input is gets decided once, in :mod:`imageaudit.openers.detect` (by
content, never by file name; an input that reads as two kinds is refused unless the user names
the kind); :func:`open_image` then hands it to the one opener for that kind.

A VM disk or OVA is read by the direct reader (:mod:`imageaudit.openers.direct`, user space,
no appliance) unless the user chooses ``--opener guestfs``; with ``auto`` (the default), what the
direct reader does not read (btrfs, LUKS, an OVA of several disks...) goes to libguestfs with a
one-line note saying why. A disk the direct reader refuses as unsafe is refused, never retried.
"""

from __future__ import annotations

from collections.abc import Callable

from imageaudit.imagefs import ImageFS
from imageaudit.openers.detect import (
    AUTO,
    CONTAINER_FORMATS,
    INPUT_KINDS,
    AmbiguousInput,
    OpenError,
    detect_input,
)

# How a VM disk is read: ``auto`` is the direct reader, and libguestfs for what it cannot read.
OPENERS = (AUTO, "direct", "guestfs")

__all__ = ["AUTO", "INPUT_KINDS", "OPENERS", "AmbiguousInput", "OpenError", "open_image"]


def open_image(spec: str, kind: str = AUTO, opener: str = AUTO) -> ImageFS:
    """Open a VM disk, OVA, container archive, OCI layout, ``docker://`` reference or root dir.

    ``kind`` is one of :data:`INPUT_KINDS`: ``auto`` detects it, anything else is the user's
    choice (``--input-kind``). ``opener`` (one of :data:`OPENERS`) says how a VM disk or OVA is
    read (``--opener``).
    """
    if opener not in OPENERS:
        raise OpenError(f"unknown opener {opener!r} (openers: {', '.join(OPENERS)})")
    kind = detect_input(spec, kind)
    if kind == "directory":
        from imageaudit.openers.directory import DirectoryFS

        return DirectoryFS(spec, source=spec)
    if kind == "docker":
        from imageaudit.openers import container

        return container.open_container(spec, fmt="docker-daemon")
    if kind in CONTAINER_FORMATS:
        from imageaudit.openers import container

        return container.open_container(spec, fmt=CONTAINER_FORMATS[kind])
    if kind == "ova":
        from imageaudit.openers import ova

        return _vm(spec, opener, ova.open_ova_direct, ova.open_ova)
    from imageaudit.openers import guestfs
    from imageaudit.openers.direct import open_direct

    # Not through an OVA check: "vm" was chosen or detected, an OVA-looking tar stays a disk.
    return _vm(spec, opener, open_direct, lambda path: guestfs.open_vms([path])[0])


def _vm(spec: str, opener: str, direct: Callable[[str], ImageFS],
        appliance: Callable[[str], ImageFS]) -> ImageFS:
    """The direct reader first (unless ``guestfs`` was chosen); libguestfs for what it
    does not read, under ``auto``, with the reason as a note."""
    from imageaudit.openers.direct import DirectUnsupported

    if opener == "guestfs":
        return appliance(spec)
    try:
        return direct(spec)
    except DirectUnsupported as exc:
        if opener == "direct":
            raise
        reason = exc.reason
    fs = appliance(spec)
    fs.info.notes.insert(0, f"read through libguestfs: {reason}")
    return fs
