"""The bounded wire format between the parser child and the parent.

A frame is one type byte, a big-endian ``u32`` length and that many bytes; no frame is
larger than :data:`MAX_FRAME`. The parent checks every field of what it is sent against
the same caps the child applies, so a child that went wrong cannot make the parent build
more than the caps allow.

Child to parent: ``T`` a batch of tree records, ``I`` the open details (JSON), ``D`` the
bytes of a read, ``E`` an error, ``U`` "unsupported" (libguestfs may read it).
Parent to child: ``C`` the configuration (JSON, first), ``R`` a read request.

A tree record: ``mode u32, uid u32, gid u32, size u64, mtime i64, nlink u32, handle i32,
path_len u16, link_len u16`` then the path and the link target (UTF-8). ``handle`` is the
number the parent names in a read request (``-1`` for anything but a regular file).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

MAX_FRAME = 8 * 1024 * 1024
MAX_READ_CHUNK = 4 * 1024 * 1024
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
MAX_LINK_BYTES = 4096
MAX_ERROR_BYTES = 4096

_HEAD = struct.Struct(">cI")
_RECORD = struct.Struct(">IIIQqIiHH")
_READ = struct.Struct(">IQI")


class ProtocolError(Exception):
    """A frame or record is malformed or over a cap."""


@dataclass(frozen=True, slots=True)
class Record:
    path: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    nlink: int
    handle: int
    link: str | None


def frame(kind: bytes, payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(payload)} bytes is over {MAX_FRAME}")
    return _HEAD.pack(kind, len(payload)) + payload


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def encode_record(path: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
                  nlink: int, handle: int, link: bytes | None) -> bytes:
    target = link or b""
    return _RECORD.pack(mode & 0xFFFFFFFF, uid & 0xFFFFFFFF, gid & 0xFFFFFFFF,
                        min(size, (1 << 64) - 1), max(min(mtime, (1 << 63) - 1), -(1 << 63)),
                        min(nlink, 0xFFFFFFFF), handle, len(path), len(target)) + path + target


def decode_records(payload: bytes) -> Iterator[Record]:
    pos = 0
    while pos < len(payload):
        if pos + _RECORD.size > len(payload):
            raise ProtocolError("truncated tree record")
        mode, uid, gid, size, mtime, nlink, handle, plen, llen = _RECORD.unpack_from(
            payload, pos)
        pos += _RECORD.size
        if plen > MAX_PATH_BYTES or llen > MAX_LINK_BYTES or pos + plen + llen > len(payload):
            raise ProtocolError("tree record with an over-long path or link")
        try:
            path = payload[pos: pos + plen].decode("utf-8")
            link = payload[pos + plen: pos + plen + llen].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("tree record that is not UTF-8") from exc
        pos += plen + llen
        parts = path.split("/")
        if path != "/" and (not path.startswith("/")
                            or any(p in ("", ".", "..") for p in parts[1:])
                            or any(len(p.encode()) > MAX_NAME_BYTES for p in parts)):
            raise ProtocolError(f"tree record with a non-canonical path {path[:100]!r}")
        is_link = (mode & 0o170000) == 0o120000
        yield Record(path, mode, uid, gid, size, mtime, nlink, handle, link if is_link else None)


def encode_read(handle: int, offset: int, size: int) -> bytes:
    return frame(b"R", _READ.pack(handle, offset, size))


def decode_read(payload: bytes) -> tuple[int, int, int]:
    if len(payload) != _READ.size:
        raise ProtocolError("malformed read request")
    handle, offset, size = _READ.unpack(payload)
    return handle, offset, size


class FrameReader:
    """Whole frames from a blocking fd (the child's side); ``None`` at end of input."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def _exact(self, n: int) -> bytes | None:
        out = bytearray()
        while len(out) < n:
            chunk = os.read(self.fd, n - len(out))
            if not chunk:
                if out:
                    raise ProtocolError("input ended inside a frame")
                return None
            out += chunk
        return bytes(out)

    def next(self) -> tuple[bytes, bytes] | None:
        head = self._exact(_HEAD.size)
        if head is None:
            return None
        kind, length = _HEAD.unpack(head)
        if length > MAX_FRAME:
            raise ProtocolError(f"frame of {length} bytes is over {MAX_FRAME}")
        payload = self._exact(length) if length else b""
        if payload is None:
            raise ProtocolError("input ended inside a frame")
        return kind, payload


HEAD_SIZE = _HEAD.size


def parse_head(head: bytes) -> tuple[bytes, int]:
    kind, length = _HEAD.unpack(head)
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes is over {MAX_FRAME}")
    return kind, length
