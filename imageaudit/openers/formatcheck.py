"""Decide a disk image's format in Python before qemu parses a single byte of it.

qemu parses qcow2/vmdk/vdi/vhdx/vpc headers in the host process, and some of those formats
can point qemu at *other host files* (a qcow2 backing file or external data file, a VMDK
extent, a differencing VHD/VHDX parent). So the header is read here first, with plain
``struct`` unpacking of a bounded prefix, and anything that could reach outside the file,
or that looks like two formats at once, is refused (SECURITY.md, "VM disk images" 2–3).

Only then is ``qemu-img info -f FMT --output=json -U`` run, in a child with an address-space
and CPU limit, and its answer is cross-checked against ours: same format, same virtual size,
no backing file, no data file, no extent but the file itself.

The check can also run on a byte range of a file (an OVA member): see ``offset``/``length``.

Specs followed: qemu ``docs/interop/qcow2.txt``, qemu ``block/qed.h``, VMware "Virtual Disk
Format 1.1", VirtualBox VDI header (qemu ``block/vdi.c``), MS-VHDX v1.0, Microsoft "Virtual
Hard Disk Image Format Specification" (VHD footer), ECMA-119 (ISO 9660), UEFI 2.x (GPT).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from imageaudit.imagefs import ImageFSError
from imageaudit.openers import formatparse as fp

DEFAULT_MAX_VIRTUAL_SIZE = 2 * 1024**4  # 2 TiB
QEMU_IMG_AS_LIMIT = 1024**3  # the limits libguestfs itself puts on qemu-img
QEMU_IMG_CPU_LIMIT = 10
QEMU_IMG_TIMEOUT = 30.0


class UnsafeImageError(ImageFSError):
    """The image is refused before qemu opens it; the message names the file and reason."""


@dataclass(frozen=True, slots=True)
class FormatInfo:
    """What the format check found: the qemu format name and the virtual disk size."""

    format: str
    virtual_size: int
    details: Mapping[str, object] = field(default_factory=dict)


class _Window:
    """Bounded, offset-shifted reads of a file (the whole file or one OVA member)."""

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self.fd = fd
        self.offset = offset
        self.length = length

    def read(self, pos: int, size: int) -> bytes:
        if pos < 0 or pos >= self.length:
            return b""
        size = min(size, self.length - pos)
        return os.pread(self.fd, size, self.offset + pos)


def sniff(path: str | Path, offset: int = 0, length: int | None = None,
          max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE) -> FormatInfo:
    """Detect the format from headers alone (no qemu); raise :class:`UnsafeImageError`."""
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise UnsafeImageError(f"{name}: cannot open: {exc.strerror}") from exc
    try:
        length = byte_range(fd, name, offset, length)
        return sniff_fd(fd, name, offset, length, max_virtual_size)
    finally:
        os.close(fd)


def byte_range(fd: int, name: str, offset: int, length: int | None) -> int:
    """The length of the image at ``offset`` in the open file (to its end when ``None``);
    :class:`UnsafeImageError` when the range does not lie inside the file."""
    file_size = os.fstat(fd).st_size
    if length is None:
        length = file_size - offset
    if offset < 0 or length < 0 or offset + length > file_size:
        raise UnsafeImageError(f"{name}: byte range {offset}+{length} outside the file")
    return length


def sniff_fd(fd: int, name: str, offset: int, length: int,
             max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE) -> FormatInfo:
    """:func:`sniff` on an open descriptor, for the ``length`` bytes at ``offset``."""
    win = _Window(fd, offset, length)
    try:
        fmt, vsize, details = fp.detect(win.read, length)
    except fp.Refused as exc:
        raise UnsafeImageError(f"{name}: {exc}") from None
    if vsize > max_virtual_size:
        raise UnsafeImageError(
            f"{name}: virtual size {vsize} bytes is over the cap of {max_virtual_size} bytes"
        )
    return FormatInfo(format=fmt, virtual_size=vsize, details=details)


def limit_child() -> None:  # pragma: no cover - runs in the child
    """``preexec_fn`` for qemu tools: the address-space and CPU limits libguestfs uses."""
    resource.setrlimit(resource.RLIMIT_AS, (QEMU_IMG_AS_LIMIT, QEMU_IMG_AS_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (QEMU_IMG_CPU_LIMIT, QEMU_IMG_CPU_LIMIT))


def image_opts(path: str | Path, fmt: str, offset: int = 0, length: int | None = None) -> str:
    """``--image-opts`` string for ``fmt`` on ``path`` (or on a byte range of it)."""
    escaped = str(path).replace(",", ",,")
    if length is None:
        return f"driver={fmt},file.driver=file,file.filename={escaped}"
    return (
        f"driver={fmt},file.driver=raw,file.offset={offset},file.size={length},"
        f"file.file.driver=file,file.file.filename={escaped}"
    )


def qemu_img_info(path: str | Path, fmt: str, offset: int = 0,
                  length: int | None = None) -> dict[str, object]:
    """``qemu-img info`` with an explicit format, no locking, under rlimits; parsed JSON."""
    name = str(path)
    if offset == 0 and length is None:
        cmd = ["qemu-img", "info", "-f", fmt, "--output=json", "-U", "--", name]
    else:
        cmd = ["qemu-img", "info", "--image-opts", "--output=json", "-U",
               image_opts(path, fmt, offset, length)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, timeout=QEMU_IMG_TIMEOUT, preexec_fn=limit_child,
            check=False, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UnsafeImageError(f"{name}: qemu-img info failed: {exc}") from exc
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[:500]
        raise UnsafeImageError(f"{name}: qemu-img info -f {fmt} refused the image: {err}")
    try:
        info = json.loads(proc.stdout[: 1 << 20])
    except ValueError as exc:
        raise UnsafeImageError(f"{name}: qemu-img info printed no JSON") from exc
    if not isinstance(info, dict):
        raise UnsafeImageError(f"{name}: qemu-img info printed no JSON object")
    return info


def cross_check(name: str, sniffed: FormatInfo, info: Mapping[str, object]) -> None:
    """Refuse when qemu sees the image differently from the header check."""
    if info.get("format") != sniffed.format:
        raise UnsafeImageError(
            f"{name}: qemu-img sees format {info.get('format')!r}, header says {sniffed.format!r}"
        )
    for key in ("backing-filename", "full-backing-filename", "backing-filename-format"):
        if key in info:
            raise UnsafeImageError(f"{name}: qemu-img reports a backing file ({key})")
    spec = info.get("format-specific")
    data = spec.get("data", {}) if isinstance(spec, dict) else {}
    if not isinstance(data, dict):
        data = {}
    if "data-file" in data or data.get("data-file-raw"):
        raise UnsafeImageError(f"{name}: qemu-img reports an external data file")
    extents = data.get("extents")
    if isinstance(extents, list) and len(extents) > 1:
        raise UnsafeImageError(f"{name}: qemu-img reports {len(extents)} VMDK extents")
    vsize = info.get("virtual-size")
    # qemu derives a VHD's size from its CHS geometry, which can round it down a little.
    ok = vsize == sniffed.virtual_size or (
        sniffed.format == "vpc" and isinstance(vsize, int)
        and 0 < sniffed.virtual_size - vsize < 64 * 1024**2
    )
    if not ok:
        raise UnsafeImageError(
            f"{name}: qemu-img sees virtual size {vsize}, header says {sniffed.virtual_size}"
        )


def check_image(path: str | Path, *, offset: int = 0, length: int | None = None,
                max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE,
                use_qemu: bool = True) -> FormatInfo:
    """Header check in Python, then ``qemu-img info`` under limits, then a cross-check.

    Raises :class:`UnsafeImageError` naming the file and the reason on any refusal.
    """
    sniffed = sniff(path, offset, length, max_virtual_size)
    if not use_qemu:
        return sniffed
    info = qemu_img_info(path, sniffed.format, offset, length)
    cross_check(str(path), sniffed, info)
    return sniffed
