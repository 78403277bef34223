"""Collector ``packages``: what dpkg, rpm and apk say is installed, in one schema.

Each manager's database is read by its own bounded reader in this folder (:mod:`.dpkg`,
:mod:`.rpmdb`, :mod:`.apk`, over the record of :mod:`.model`); nothing from the image is run
and no host package tool is pointed at it. Every record is kept, whatever its status;
a database that cannot be read is a :class:`PackageError`, not an exception. The files each
package owns are kept as an index for rules (``owned_paths``, not in JSON; ``owned_count``
is).

Specs: deb-control(5), dpkg-query(1), deb-version(7); rpm header format and rpm's
``lib/backend`` (sqlite, bdb_ro, ndb); apk-tools installed database (Apk_spec).
"""

from __future__ import annotations

from dataclasses import dataclass

from imageaudit.facts.base import CollectContext, Collector
from imageaudit.facts.packages import apk, dpkg, rpmdb
from imageaudit.facts.packages.model import (
    InstalledPackage,
    Manager,
    ManagerResult,
    PackageDatabase,
    PackageError,
)

__all__ = [
    "COLLECTOR",
    "InstalledPackage",
    "PackageDatabase",
    "PackageError",
    "PackagesFacts",
    "collect",
]


@dataclass(frozen=True, slots=True)
class PackagesFacts:
    """Installed packages of every manager found, the databases read, and read errors."""

    packages: tuple[InstalledPackage, ...] = ()
    databases: tuple[PackageDatabase, ...] = ()
    errors: tuple[PackageError, ...] = ()

    @property
    def managers(self) -> tuple[Manager, ...]:
        """Managers whose database was found (read or not), sorted."""
        return tuple(sorted({db.manager for db in self.databases}))

    def named(self, name: str, manager: Manager | None = None) -> tuple[InstalledPackage, ...]:
        """Packages called ``name`` (all architectures), optionally of one manager."""
        return tuple(p for p in self.packages if p.name == name and manager in (None, p.manager))

    def owners(self, path: str) -> tuple[InstalledPackage, ...]:
        """Packages whose file list names ``path`` (as the database spells it)."""
        return tuple(p for p in self.packages if path in p.owned_paths)


def _sort_key(pkg: InstalledPackage) -> tuple[str, str, str, str, str, int]:
    return (
        pkg.manager,
        pkg.name,
        pkg.arch or "",
        pkg.full_version,
        pkg.source.path,
        pkg.source.line or 0,
    )


def collect(ctx: CollectContext) -> PackagesFacts:
    """Read every package database of the image."""
    parts: list[ManagerResult] = [dpkg.read_dpkg(ctx), rpmdb.read_rpm(ctx), apk.read_apk(ctx)]
    packages = sorted((p for part in parts for p in part.packages), key=_sort_key)
    return PackagesFacts(
        packages=tuple(packages),
        databases=tuple(d for part in parts for d in part.databases),
        errors=tuple(e for part in parts for e in part.errors),
    )


COLLECTOR = Collector(
    name="packages",
    patterns=(*dpkg.PATTERNS, *rpmdb.PATTERNS, *apk.PATTERNS),
    collect=collect,
)
