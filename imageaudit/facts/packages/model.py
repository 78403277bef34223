"""Records shared by the package readers (dpkg, rpm, apk) and the ``packages`` collector.

They live apart from :mod:`imageaudit.facts.packages` so that the per-manager readers can
build them without importing the collector that imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from imageaudit.facts.base import CollectContext
from imageaudit.model import Source

Manager = Literal["dpkg", "rpm", "apk"]

# dpkg states in which the package's files are (at least partly) on disk; see dpkg-query(1).
_DPKG_ABSENT_STATES = frozenset({"not-installed", "config-files"})


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    """One package as its manager's database records it, in one schema for all managers.

    ``version``/``epoch``/``release`` follow rpm's E:V-R split: for dpkg the epoch, upstream
    version and Debian revision; for apk the whole version stays in ``version``.
    ``owned_paths`` (left out of JSON) are the in-image paths the package's file list names.
    """

    name: str
    version: str
    epoch: int | None
    release: str | None
    arch: str | None
    source_name: str | None
    source_version: str | None
    manager: Manager
    status: str | None
    source: Source
    owned_count: int = 0
    owned_paths: frozenset[str] = field(
        default=frozenset(), repr=False, metadata={"internal": True}
    )

    @property
    def full_version(self) -> str:
        """The version as the manager writes it (``[epoch:]version[-release]``)."""
        text = self.version
        if self.release:
            text = f"{text}-{self.release}"
        if self.epoch is not None:
            text = f"{self.epoch}:{text}"
        return text

    @property
    def present(self) -> bool:
        """Whether the database says the package's files are on disk (dpkg tracks removals)."""
        if self.manager != "dpkg" or not self.status:
            return True
        words = self.status.split()
        return not (len(words) == 3 and words[2] in _DPKG_ABSENT_STATES)


@dataclass(frozen=True, slots=True)
class PackageDatabase:
    """A package database found in the image and whether its packages were reported."""

    manager: Manager
    format: str  # dpkg-status, dpkg-status.d, rpm-sqlite, rpm-bdb, rpm-ndb, apk-installed
    path: str
    package_count: int
    used: bool = True
    note: str | None = None


@dataclass(frozen=True, slots=True)
class PackageError:
    """A database, stanza or header that could not be read; a fact, not a crash."""

    manager: Manager
    source: Source
    message: str


@dataclass(frozen=True, slots=True)
class ManagerResult:
    """What one manager's reader found."""

    packages: tuple[InstalledPackage, ...] = ()
    databases: tuple[PackageDatabase, ...] = ()
    errors: tuple[PackageError, ...] = ()


def read_database(
    ctx: CollectContext, manager: Manager, path: str, limit: int
) -> tuple[str, list[PackageError]] | None:
    """A text database's contents (``None`` when absent) and the error if it was cut at ``limit``.

    A database over the cap is still parsed as far as it was read: its first packages are
    facts too, and the error says the list is incomplete.
    """
    result = ctx.read(path, limit)
    if result is None:
        return None
    errors: list[PackageError] = []
    if result.truncated:
        errors.append(
            PackageError(
                manager, Source(path), f"read only the first {limit} of {result.size} bytes"
            )
        )
    return result.text(), errors


def split_source_rpm(sourcerpm: str) -> tuple[str | None, str | None]:
    """``bash-5.1.8-6.el9.src.rpm`` -> (``bash``, ``5.1.8-6.el9``); unknown shapes -> Nones."""
    stem = sourcerpm
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    else:
        return None, None
    name, _, rest = stem.rpartition("-")
    name, _, version = name.rpartition("-")
    if not name or not version or not rest:
        return None, None
    return name, f"{version}-{rest}"
