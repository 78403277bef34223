"""Byte ranges the direct reader stacks: the image fd, a window of it, a partition, a LV.

Every layer answers ``pread(offset, size)`` (short only at its end) and knows its ``size``.
:class:`FileObject` turns a layer into the file-like object libyal's bindings read through
(``read``/``seek``/``tell``/``get_size``), so a library is only ever given bytes we hand it,
never a path it could resolve. Nothing here writes.
"""

from __future__ import annotations

import os
import re
from typing import Protocol

_LIBYAL_FRAME = re.compile(r"^\w+: ")


class DiskError(Exception):
    """The disk cannot be read as it claims to be; the message says where and why."""


class Unsupported(DiskError):
    """The disk is well formed but holds what the direct reader does not read (btrfs, LUKS,
    a non-linear LV, qcow2 subclusters): libguestfs may read it."""


class BlockDevice(Protocol):
    size: int

    def pread(self, offset: int, size: int) -> bytes: ...


class FdWindow:
    """``length`` bytes at ``start`` of a host file descriptor (the image, or an OVA member)."""

    def __init__(self, fd: int, start: int, length: int) -> None:
        self.fd = fd
        self.start = start
        self.size = length

    def pread(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0:
            raise DiskError(f"negative read {offset}+{size}")
        size = min(size, self.size - offset)
        if size <= 0:
            return b""
        out = bytearray()
        while len(out) < size:
            chunk = os.pread(self.fd, size - len(out), self.start + offset + len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)


def libyal_reason(exc: BaseException) -> str:
    """The why of a libyal error, short enough for one line.

    libyal chains one message a frame: ``pyX_...: unable to read data. libX_inner: unable to
    read grain data. libfdata_...: unable to read element data at offset: N. ...`` (the
    binding first, then innermost to outermost). The binding's generic message goes, each
    frame loses its function name, and the three innermost say what and where.
    """
    parts = [p.strip().rstrip(".") for p in str(exc).split(". ") if p.strip()]
    if len(parts) > 1 and parts[0].startswith("py"):
        parts = parts[1:]
    kept: list[str] = []
    for part in parts:
        text = _LIBYAL_FRAME.sub("", part)
        if text not in kept:
            kept.append(text)
    return "; ".join(kept[:3])[:400]


def read_exact(dev: BlockDevice, offset: int, size: int, what: str) -> bytes:
    """``size`` bytes at ``offset`` or :class:`DiskError` naming ``what``."""
    if offset < 0 or offset + size > dev.size:
        raise DiskError(f"{what} at {offset}+{size} lies past the end ({dev.size} bytes)")
    data = dev.pread(offset, size)
    if len(data) != size:
        raise DiskError(f"{what} at {offset}: short read ({len(data)} of {size} bytes)")
    return data


class Slice:
    """A sub-range of another device (a partition)."""

    def __init__(self, base: BlockDevice, start: int, length: int) -> None:
        if start < 0 or length < 0 or start + length > base.size:
            raise DiskError(f"range {start}+{length} outside the device of {base.size} bytes")
        self.base = base
        self.start = start
        self.size = length

    def pread(self, offset: int, size: int) -> bytes:
        size = min(size, self.size - offset)
        if offset < 0 or size <= 0:
            return b""
        return self.base.pread(self.start + offset, size)


class Zeros:
    """A device of ``size`` zero bytes (used for tests and empty disks)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def pread(self, offset: int, size: int) -> bytes:
        size = min(size, self.size - offset)
        return bytes(max(size, 0))


class FileObject:
    """The file-like object a libyal binding reads: read/seek/tell/get_size over a device."""

    def __init__(self, dev: BlockDevice) -> None:
        self.dev = dev
        self.pos = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.dev.size - self.pos
        data = self.dev.pread(self.pos, size) if self.pos < self.dev.size else b""
        self.pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self.pos + offset
        elif whence == os.SEEK_END:
            pos = self.dev.size + offset
        else:
            raise OSError(f"bad whence {whence}")
        if pos < 0:
            raise OSError("seek before the start")
        self.pos = pos
        return pos

    def tell(self) -> int:
        return self.pos

    def get_size(self) -> int:
        return self.dev.size

    def close(self) -> None:
        """libyal calls close on the objects it was given; the fd stays ours."""


class LibyalDevice:
    """A device over a libyal object with ``read_buffer_at_offset`` and a media size."""

    def __init__(self, handle: object, size: int, what: str) -> None:
        self.handle = handle
        self.size = size
        self.what = what

    def pread(self, offset: int, size: int) -> bytes:
        size = min(size, self.size - offset)
        if offset < 0 or size <= 0:
            return b""
        try:
            data = self.handle.read_buffer_at_offset(size, offset)  # type: ignore[attr-defined]
        except (OSError, OverflowError) as exc:
            raise DiskError(f"{self.what}: cannot read {size} bytes at {offset}: "
                            f"{libyal_reason(exc)}") from exc
        return bytes(data)
