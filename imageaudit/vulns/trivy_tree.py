"""The minimal tree trivy is pointed at: package databases and release files, nothing else.

trivy never sees the image. The few files it needs to know the distribution and the
installed packages are read through :class:`~imageaudit.imagefs.ImageFS` (in-image path
resolution, size caps) and written as plain files into a private directory of ours; no
host path is built from an image name except ``status.d`` entries, which are checked to be
single path components.

Specs: os-release(5); dpkg-query(1) (``/var/lib/dpkg/status``, ``status.d``); rpm database
locations (``/var/lib/rpm``, ``/usr/lib/sysimage/rpm``); apk-tools (``/lib/apk/db/installed``).
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from imageaudit.imagefs import ImageFS, ImageFSError

RELEASE_FILES = (
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/lsb-release",
    "/etc/debian_version",
    "/etc/redhat-release",
    "/etc/centos-release",
    "/etc/rocky-release",
    "/etc/almalinux-release",
    "/etc/fedora-release",
    "/etc/oracle-release",
    "/etc/system-release",
    "/etc/SuSE-release",
    "/etc/alpine-release",
    "/etc/apk/repositories",
)
DATABASE_FILES = (
    "/var/lib/dpkg/status",
    "/lib/apk/db/installed",
    "/var/lib/rpm/rpmdb.sqlite",
    "/var/lib/rpm/Packages.db",
    "/var/lib/rpm/Packages",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/Packages.db",
    "/usr/lib/sysimage/rpm/Packages",
)
STATUS_D = "/var/lib/dpkg/status.d"


@dataclass(frozen=True, slots=True)
class TreeLimits:
    """Caps on the copy: per file, in total, and on ``status.d`` entries."""

    max_file_bytes: int = 512 * 1024 * 1024
    max_release_bytes: int = 64 * 1024
    max_total_bytes: int = 1024 * 1024 * 1024
    max_status_d: int = 20_000


@dataclass(frozen=True, slots=True)
class MinimalTree:
    """What was copied (in-image paths), and what was left out and why."""

    root: Path
    copied: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    total_bytes: int

    @property
    def has_database(self) -> bool:
        """Whether any package database made it into the tree."""
        return any(p not in RELEASE_FILES for p in self.copied)


def _safe_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\x00" not in name


def _write(root: Path, path: str, data: bytes) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    fd = os.open(target, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def build_minimal_tree(fs: ImageFS, root: Path, limits: TreeLimits | None = None) -> MinimalTree:
    """Copy the release files and package databases of ``fs`` into the empty dir ``root``."""
    limits = limits or TreeLimits()
    wanted: list[tuple[str, int]] = [(p, limits.max_release_bytes) for p in RELEASE_FILES]
    wanted += [(p, limits.max_file_bytes) for p in DATABASE_FILES]
    try:
        names = fs.listdir(STATUS_D) if fs.is_dir(STATUS_D) else []
    except ImageFSError:
        names = []
    skipped: list[tuple[str, str]] = []
    if len(names) > limits.max_status_d:
        skipped.append((STATUS_D, f"more than {limits.max_status_d} entries; the rest left out"))
        names = names[: limits.max_status_d]
    wanted += [
        (posixpath.join(STATUS_D, n), limits.max_file_bytes) for n in names if _safe_name(n)
    ]
    copied: list[str] = []
    total = 0
    for path, cap in wanted:
        try:
            if not fs.exists(path):
                continue
            st = fs.stat(path)
            if not st.is_file:
                skipped.append((path, f"not a regular file ({st.type.value})"))
                continue
            if st.size > cap:
                skipped.append((path, f"larger than {cap} bytes"))
                continue
            if total + st.size > limits.max_total_bytes:
                skipped.append((path, f"the tree would exceed {limits.max_total_bytes} bytes"))
                continue
            result = fs.read(path, cap)
        except ImageFSError as exc:
            skipped.append((path, str(exc)))
            continue
        if result.truncated:
            skipped.append((path, f"larger than {cap} bytes"))
            continue
        _write(root, path, result.data)
        copied.append(path)
        total += len(result.data)
    return MinimalTree(root, tuple(copied), tuple(skipped), total)
