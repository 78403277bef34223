"""Openers turn what the user names into an :class:`~imageaudit.imagefs.ImageFS`.

``open_image`` decides by looking, never by trusting a file name: ``docker://`` references go to
the Docker daemon, directories are root trees or OCI layouts, and files are told apart by their
content (tar archives holding a manifest or an OVF; otherwise a disk image whose format the safe
format check determines before qemu ever sees it).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from imageaudit.imagefs import ImageFS, ImageFSError


class OpenError(ImageFSError):
    """The image cannot be opened; the message names it and says why."""


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def open_image(spec: str) -> ImageFS:
    """Open a VM disk, container image, OCI layout, ``docker://`` reference or root directory."""
    if spec.startswith("docker://"):
        from imageaudit.openers import container

        return container.open_container(spec)
    path = Path(spec)
    if not path.exists():
        raise OpenError(f"{spec}: no such file or directory")
    if path.is_dir():
        markers = ("oci-layout", "index.json", "manifest.json")
        if any((path / m).is_file() for m in markers):
            from imageaudit.openers import container

            return container.open_container(spec)
        from imageaudit.openers.directory import DirectoryFS

        return DirectoryFS(path, source=spec)
    if not path.is_file():
        raise OpenError(f"{spec}: not a regular file or directory")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise OpenError(f"{spec}: cannot read: {exc.strerror}") from exc
    if _is_tar(path):
        from imageaudit.openers import ova

        if ova.detect(spec):
            from imageaudit.openers import guestfs

            return guestfs.open_vm(spec)
        from imageaudit.openers import container

        if container.detect(spec):
            return container.open_container(spec)
    from imageaudit.openers import guestfs

    return guestfs.open_vm(spec)
