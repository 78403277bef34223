"""The identity a certification is bound to: the SHA-512 and size of the image as distributed."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ImageIdentity:
    """What the user named, and for a single-file image its SHA-512 (hex) and size in bytes."""

    source: str
    sha512: str | None = None
    size: int | None = None


class HashingStopped(Exception):
    """The caller no longer wants the hash (``stop`` was set); nothing is returned."""


def sha512_file(path: Path, chunk_size: int = CHUNK,
                stop: threading.Event | None = None) -> tuple[str, int]:
    """Stream ``path`` once; return its SHA-512 hex digest and the number of bytes read.

    ``stop``, when set, ends the read at the next chunk with :class:`HashingStopped`.
    """
    digest = hashlib.sha512()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(chunk_size):
            if stop is not None and stop.is_set():
                raise HashingStopped(str(path))
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def identify_image(path: Path | str, source: str | None = None,
                   stop: threading.Event | None = None) -> ImageIdentity:
    """The identity of an image file; a directory root has no single content hash (``None``).

    ``stop`` as for :func:`sha512_file`.
    """
    path = Path(path)
    name = source if source is not None else str(path)
    if path.is_dir():
        return ImageIdentity(source=name)
    sha512, size = sha512_file(path, stop=stop)
    return ImageIdentity(source=name, sha512=sha512, size=size)


__all__ = ["HashingStopped", "ImageIdentity", "identify_image", "sha512_file"]
