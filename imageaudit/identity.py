"""The identity a certification is bound to: the SHA-512 and size of the image as distributed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ImageIdentity:
    """What the user named, and for a single-file image its SHA-512 (hex) and size in bytes."""

    source: str
    sha512: str | None = None
    size: int | None = None


def sha512_file(path: Path, chunk_size: int = CHUNK) -> tuple[str, int]:
    """Stream ``path`` once; return its SHA-512 hex digest and the number of bytes read."""
    digest = hashlib.sha512()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def identify_image(path: Path | str, source: str | None = None) -> ImageIdentity:
    """The identity of an image file; a directory root has no single content hash (``None``)."""
    path = Path(path)
    name = source if source is not None else str(path)
    if path.is_dir():
        return ImageIdentity(source=name)
    sha512, size = sha512_file(path)
    return ImageIdentity(source=name, sha512=sha512, size=size)


__all__ = ["ImageIdentity", "identify_image", "sha512_file"]
