"""Openers turn what the user names into an :class:`~imageaudit.imagefs.ImageFS`.

What kind of image an input is gets decided once, in :mod:`imageaudit.openers.detect` (by
content, never by file name; an input that reads as two kinds is refused unless the user names
the kind); :func:`open_image` then hands it to the one opener for that kind.
"""

from __future__ import annotations

from imageaudit.imagefs import ImageFS
from imageaudit.openers.detect import (
    AUTO,
    CONTAINER_FORMATS,
    INPUT_KINDS,
    AmbiguousInput,
    OpenError,
    detect_input,
)

__all__ = ["AUTO", "INPUT_KINDS", "AmbiguousInput", "OpenError", "open_image"]


def open_image(spec: str, kind: str = AUTO) -> ImageFS:
    """Open a VM disk, OVA, container archive, OCI layout, ``docker://`` reference or root dir.

    ``kind`` is one of :data:`INPUT_KINDS`: ``auto`` detects it, anything else is the user's
    choice (``--input-kind``).
    """
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

        return ova.open_ova(spec)
    from imageaudit.openers import guestfs

    # Not open_vm: it would take an OVA-looking tar as an OVA even when "vm" was chosen.
    return guestfs.open_vms([spec])[0]
