"""Open an OVA (a tar holding an .ovf descriptor, an optional .mf manifest and disks).

Nothing is extracted. The tar index is read (headers only), the OVF is parsed with entity
and DTD declarations refused, each ``ovf:href`` is treated as untrusted (it must name a plain
member of this archive), the manifest's SHA1/SHA256 lines are checked against the members,
and each disk member must pass :mod:`~imageaudit.openers.formatcheck` *on its byte range*.
The direct reader then reads a one-disk OVA's member in place (:func:`open_ova_direct`). For
libguestfs (:func:`open_ova`), qemu reads the members in place: a small qcow2 overlay in a
private temporary directory has as backing ``json:{file: {driver: raw, offset, size, file:
OVA}}`` with the checked format, and libguestfs opens that overlay read-only.

Specs followed: DMTF DSP0243 (OVF 2.x, OVA packaging, manifest), POSIX ustar / GNU tar.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from imageaudit.imagefs import ImageFS
from imageaudit.openers.formatcheck import (
    DEFAULT_MAX_VIRTUAL_SIZE,
    UnsafeImageError,
    check_image,
    limit_child,
)

if TYPE_CHECKING:
    from imageaudit.openers.guestfs import GuestfsFS

MAX_MEMBERS = 1000
MAX_OVF_BYTES = 4 * 1024 * 1024
MAX_MF_BYTES = 1024 * 1024
_MF_LINE = re.compile(r"^(SHA1|SHA256|SHA512)\s*\(([^)]+)\)\s*=\s*([0-9a-fA-F]+)\s*$")


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    offset: int
    size: int


def ova_members(path: str | Path) -> dict[str, Member]:
    """Regular members by name, from the tar headers only."""
    members: dict[str, Member] = {}
    try:
        with tarfile.open(path, mode="r:") as tf:
            for count, ti in enumerate(tf):
                if count >= MAX_MEMBERS:
                    raise UnsafeImageError(f"{path}: OVA with more than {MAX_MEMBERS} members")
                if ti.isreg():
                    members[ti.name] = Member(ti.name, ti.offset_data, ti.size)
    except (tarfile.TarError, OSError) as exc:
        raise UnsafeImageError(f"{path}: not a readable OVA: {exc}") from exc
    return members


def _read(path: str | Path, m: Member, cap: int) -> bytes:
    if m.size > cap:
        raise UnsafeImageError(f"{path}: member {m.name} of {m.size} bytes is over {cap}")
    with Path(path).open("rb") as fh:
        fh.seek(m.offset)
        return fh.read(m.size)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def disk_hrefs(ovf: bytes, source: str) -> list[str]:
    """``ovf:href`` of each File that a Disk refers to, in Disk order (untrusted strings)."""
    if b"<!DOCTYPE" in ovf or b"<!ENTITY" in ovf:
        raise UnsafeImageError(f"{source}: OVF declares a DTD or entities")
    try:
        root = ET.fromstring(ovf)
    except ET.ParseError as exc:
        raise UnsafeImageError(f"{source}: OVF is not well-formed XML: {exc}") from exc
    files: dict[str, str] = {}
    refs: list[str] = []
    for el in root.iter():
        attrs = {_local(k): v for k, v in el.attrib.items()}
        if _local(el.tag) == "File" and "href" in attrs:
            files[attrs.get("id", attrs["href"])] = attrs["href"]
        elif _local(el.tag) == "Disk" and "fileRef" in attrs:
            refs.append(attrs["fileRef"])
    hrefs = [files[r] for r in refs if r in files] or list(files.values())
    for href in hrefs:
        if "/" in href or "\\" in href or href in ("", ".", "..") or ":" in href:
            raise UnsafeImageError(f"{source}: OVF href {href!r} leaves the archive")
    return hrefs


def verify_manifest(path: str | Path, members: dict[str, Member]) -> list[str]:
    """Check every manifest line; return notes. A mismatch or unknown name is refused."""
    mfs = [m for n, m in members.items() if n.endswith(".mf") and "/" not in n]
    if not mfs:
        return ["OVA has no manifest (.mf); member digests not verified"]
    text = _read(path, mfs[0], MAX_MF_BYTES).decode("utf-8", "replace")
    checked = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _MF_LINE.match(line.strip())
        if not m:
            raise UnsafeImageError(f"{path}: malformed manifest line {line[:80]!r}")
        algo, name, want = m.group(1).lower(), m.group(2).strip(), m.group(3).lower()
        member = members.get(name)
        if member is None or "/" in name:
            raise UnsafeImageError(f"{path}: manifest names {name!r}, not in the archive")
        h = hashlib.new(algo)
        with Path(path).open("rb") as fh:
            fh.seek(member.offset)
            remaining = member.size
            while remaining > 0:
                chunk = fh.read(min(remaining, 4 * 1024 * 1024))
                if not chunk:
                    break
                h.update(chunk)
                remaining -= len(chunk)
        if h.hexdigest() != want:
            raise UnsafeImageError(f"{path}: {algo.upper()} of {name} does not match the manifest")
        checked += 1
    return [f"manifest verified for {checked} members"]


def _overlay(ova: Path, m: Member, fmt: str, out: Path) -> None:
    backing = "json:" + json.dumps({"file": {
        "driver": "raw", "offset": m.offset, "size": m.size,
        "file": {"driver": "file", "filename": str(ova)},
    }})
    proc = subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", backing, str(out)],
        capture_output=True, preexec_fn=limit_child, timeout=30, check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[:300]
        raise UnsafeImageError(f"{ova}: cannot reference member {m.name} in place: {err}")


@dataclass(frozen=True)
class CheckedDisk:
    """A disk member of a verified OVA: where it lies in the archive and its checked format."""

    href: str
    member: Member
    format: str
    virtual_size: int


def checked_disks(path: str | Path, max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE,
                  use_qemu: bool = True) -> tuple[list[CheckedDisk], list[str]]:
    """The OVF's disks, each a plain member that passed the header check on its byte range
    (and ``qemu-img info``'s cross-check with ``use_qemu``, for qemu will read them), and
    the manifest notes; :class:`UnsafeImageError` for anything else."""
    ova = Path(path).absolute()
    members = ova_members(ova)
    ovfs = [m for n, m in members.items() if n.endswith(".ovf") and "/" not in n]
    if not ovfs:
        raise UnsafeImageError(f"{path}: no .ovf descriptor in the archive")
    hrefs = disk_hrefs(_read(ova, ovfs[0], MAX_OVF_BYTES), str(path))
    if not hrefs:
        raise UnsafeImageError(f"{path}: the OVF names no disk")
    notes = verify_manifest(ova, members)
    disks: list[CheckedDisk] = []
    for href in hrefs:
        member = members.get(href)
        if member is None:
            raise UnsafeImageError(f"{path}: OVF href {href!r} is not a member")
        info = check_image(ova, offset=member.offset, length=member.size,
                           max_virtual_size=max_virtual_size, use_qemu=use_qemu)
        disks.append(CheckedDisk(href, member, info.format, info.virtual_size))
    return disks, notes


def open_ova_direct(path: str | Path) -> ImageFS:
    """The OVA's one disk through the direct reader, read in place at its byte range."""
    from imageaudit.openers.direct import DirectUnsupported, open_direct

    # No qemu reads the disk here: the direct reader checks its header again on its own
    # descriptor, so qemu-img's cross-check would be a second run of the same check.
    disks, notes = checked_disks(path, use_qemu=False)
    if len(disks) > 1:
        raise DirectUnsupported(f"{path}: an OVA of {len(disks)} disks",
                                f"an OVA of {len(disks)} disks is read as one machine by "
                                "libguestfs only")
    disk = disks[0]
    fs = open_direct(path, offset=disk.member.offset, length=disk.member.size,
                     source=f"{path}:{disk.href}")
    fs.info.format = "ova"
    fs.info.source = str(path)
    fs.info.notes.extend(notes)
    fs.info.details["disks"] = [f"{path}:{disk.href}"]
    return fs


def open_ova(path: str | Path, max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE) -> GuestfsFS:
    """Verify the OVA and open its disks as one machine; returns a ``GuestfsFS``."""
    from imageaudit.openers.guestfs import Appliance, Drive, GuestfsFS

    ova = Path(path).absolute()
    disks, notes = checked_disks(path, max_virtual_size)
    tmp = Path(tempfile.mkdtemp(prefix="imageaudit-ova-"))
    drives: list[Drive] = []
    try:
        for i, disk in enumerate(disks):
            overlay = tmp / f"disk{i}.qcow2"
            _overlay(ova, disk.member, disk.format, overlay)
            drives.append(Drive(path=str(overlay), format="qcow2", source=f"{path}:{disk.href}",
                                virtual_size=disk.virtual_size))
        app = Appliance(drives)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    app.on_close.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    try:
        fs = GuestfsFS(app, 0, whole=True)
    except BaseException:
        app.close()
        raise
    fs.info.format = "ova"
    fs.info.source = str(path)
    fs.info.notes.extend(notes)
    fs.info.details["disks"] = [d.source for d in drives]
    return fs
