"""Caps, errors and byte sources for container layers (SECURITY.md, containers).

Layers may be plain, gzip (possibly several concatenated members) or zstd. A compressed
layer is decompressed once, in one pass, and the output is spooled to a private, already
unlinked temporary file while the headers are parsed; file contents are later read from
the spool with ``pread``. Re-decompressing on every read would cost the whole prefix of the
layer per read (quadratic over a collector run); the spool costs disk bounded by the same
uncompressed-size caps and disappears when the file object is closed.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass, field
from typing import IO, cast

import zstandard

from imageaudit.imagefs import MAX_PATH_DEPTH, ImageFSError

_CHUNK = 1 << 20


class ContainerImageError(ImageFSError):
    """A container image (or one blob/member of it) is malformed, over a cap or forged."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ContainerLimits:
    """Caps on everything an image declares or makes us do. Sizes are bytes."""

    max_layer_compressed: int = 8 << 30
    max_layer_uncompressed: int = 16 << 30
    max_image_compressed: int = 32 << 30
    max_image_uncompressed: int = 64 << 30
    max_ratio: int = 200
    ratio_grace: int = 8 << 20  # below this much output the ratio is not judged
    max_members: int = 500_000  # tar headers over all layers (and the outer archive)
    max_layers: int = 256
    max_name_bytes: int = 4096
    max_path_depth: int = MAX_PATH_DEPTH
    max_pax_header: int = 1 << 20
    max_json: int = 4 << 20
    max_index_depth: int = 4
    max_read: int = 256 << 20
    max_notes: int = 200


@dataclass
class Budget:
    """Image-wide counters shared by every layer read, so per-image caps hold."""

    limits: ContainerLimits
    compressed: int = 0
    uncompressed: int = 0
    members: int = 0
    notes: list[str] = field(default_factory=list)
    dropped_notes: int = 0

    def note(self, text: str) -> None:
        if len(self.notes) < self.limits.max_notes:
            self.notes.append(text)
        else:
            self.dropped_notes += 1


class RangeFile:
    """``read``/``skip`` over ``size`` bytes at ``start`` of a host fd, via ``pread``."""

    def __init__(self, fd: int, start: int, size: int) -> None:
        self.fd = fd
        self.start = start
        self.size = size
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.pos
        if n < 0 or n > left:
            n = left
        if n <= 0:
            return b""
        data = os.pread(self.fd, n, self.start + self.pos)
        self.pos += len(data)
        return data

    def skip(self, n: int) -> None:
        self.pos += n


def sniff_compression(head: bytes) -> str:
    """``"gzip"``, ``"zstd"``, ``"none"`` from a blob's first bytes; other formats are refused."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if head.startswith((b"BZh", b"\xfd7zXZ\x00")):
        return "unsupported"
    return "none"


class PlainLayer:
    """An uncompressed layer: data offsets are offsets in the blob itself."""

    def __init__(self, raw: RangeFile, label: str, budget: Budget) -> None:
        self.raw = raw
        self.label = label
        self.budget = budget
        limits = budget.limits
        if raw.size > limits.max_layer_uncompressed:
            raise ContainerImageError(label, f"layer of {raw.size} bytes is over the cap")
        budget.uncompressed += raw.size
        if budget.uncompressed > limits.max_image_uncompressed:
            raise ContainerImageError(label, "image is over the uncompressed-size cap")

    def read(self, n: int) -> bytes:
        return self.raw.read(n)

    def skip(self, n: int) -> None:
        self.raw.skip(n)


class DecompressedLayer:
    """A gzip/zstd layer decompressed in one bounded pass, output teed into ``spool``."""

    def __init__(
        self,
        raw: RangeFile,
        kind: str,
        spool: IO[bytes],
        label: str,
        budget: Budget,
        diff_id_alg: str | None = None,
    ) -> None:
        self.raw = raw
        self.kind = kind
        self.spool = spool
        self.spool_base = spool.seek(0, os.SEEK_END)
        self.label = label
        self.budget = budget
        self.produced = 0
        self.hasher = hashlib.new(diff_id_alg) if diff_id_alg else None
        self._pending = b""
        self._gz: zlib._Decompress | None = None
        self._gz_started = False
        self._zst: zstandard.ZstdDecompressionReader | None = None
        if kind == "zstd":
            dctx = zstandard.ZstdDecompressor(max_window_size=1 << 27)
            self._zst = dctx.stream_reader(
                cast("IO[bytes]", raw), read_size=1 << 16, read_across_frames=True
            )

    def _gzip_read(self, n: int) -> bytes:
        while True:
            if self._gz is None:
                while len(self._pending) < 2:
                    more = self.raw.read(1 << 16)
                    if not more:
                        break
                    self._pending += more
                if not self._pending:
                    if not self._gz_started:
                        raise ContainerImageError(self.label, "empty gzip stream")
                    return b""
                if not self._pending.startswith(b"\x1f\x8b"):
                    if not self._gz_started:
                        raise ContainerImageError(self.label, "not a gzip stream")
                    self._check_zero_tail()
                    return b""
                self._gz = zlib.decompressobj(31)
                self._gz_started = True
            if not self._pending:
                self._pending = self.raw.read(1 << 16)
                if not self._pending:
                    raise ContainerImageError(self.label, "gzip stream is truncated")
            try:
                out = self._gz.decompress(self._pending, n)
            except zlib.error as exc:
                raise ContainerImageError(self.label, f"corrupt gzip data ({exc})") from exc
            if self._gz.eof:
                self._pending = self._gz.unused_data
                self._gz = None
            else:
                self._pending = self._gz.unconsumed_tail
            if out:
                return out

    def _check_zero_tail(self) -> None:
        """Trailing padding after the last gzip member must be zeros, nothing hidden there."""
        data = self._pending
        while data:
            if data.strip(b"\0"):
                raise ContainerImageError(self.label, "data after the end of the gzip stream")
            data = self.raw.read(1 << 16)
        self._pending = b""

    def read(self, n: int) -> bytes:
        if self._zst is not None:
            try:
                out = self._zst.read(n)
            except zstandard.ZstdError as exc:
                raise ContainerImageError(self.label, f"corrupt zstd data ({exc})") from exc
        else:
            out = self._gzip_read(n)
        if out:
            self._account(out)
        return out

    def _account(self, out: bytes) -> None:
        limits = self.budget.limits
        self.produced += len(out)
        self.budget.uncompressed += len(out)
        if self.produced > limits.max_layer_uncompressed:
            raise ContainerImageError(
                self.label, f"uncompressed layer over the cap of {limits.max_layer_uncompressed}"
            )
        if self.budget.uncompressed > limits.max_image_uncompressed:
            raise ContainerImageError(self.label, "image is over the uncompressed-size cap")
        if self.produced > limits.ratio_grace and self.produced > limits.max_ratio * max(
            self.raw.pos, 1
        ):
            raise ContainerImageError(
                self.label, f"compression ratio over {limits.max_ratio}:1 (decompression bomb?)"
            )
        if self.hasher is not None:
            self.hasher.update(out)
        self.spool.write(out)

    def skip(self, n: int) -> None:
        while n > 0:
            got = self.read(min(n, _CHUNK))
            if not got:
                return
            n -= len(got)

    def drain(self) -> None:
        """Decompress the rest (after the tar end marker) so the diff_id covers it all."""
        while self.read(_CHUNK):
            pass
