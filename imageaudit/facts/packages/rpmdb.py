"""The rpm package inventory, read from any of rpm's three database formats by our own code.

Databases are looked for in ``/usr/lib/sysimage/rpm`` and ``/var/lib/rpm``: ``rpmdb.sqlite``
(rpm >= 4.16), ``Packages.db`` (ndb) and ``Packages`` (Berkeley DB hash). One database is
read: the newest format found (a migration may leave the old one behind, and reading both
would report stale versions); the others are listed as found but not used. Nothing on the
image is run and neither the host's ``rpm`` nor librpm is used: the SQLite file is copied
to a private temporary file and opened read-only, immutable, with limits; the other two
are parsed by :mod:`imageaudit.facts.packages.bdb` and
:mod:`imageaudit.facts.packages.ndb`, and each header by
:mod:`imageaudit.facts.packages.rpm_header`.

Specs: rpm ``lib/backend/sqlite.c`` (table ``Packages(hnum, blob)``), ``bdb_ro.c``,
``ndb/rpmpkg.c``; rpm header format; sqlite.org/uri.html (``mode=ro&immutable=1``).
"""

from __future__ import annotations

import sqlite3
import struct
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path

from imageaudit.facts.base import CollectContext
from imageaudit.facts.packages.bdb import BDBError, iter_hash_items
from imageaudit.facts.packages.model import (
    InstalledPackage,
    ManagerResult,
    PackageDatabase,
    PackageError,
    split_source_rpm,
)
from imageaudit.facts.packages.ndb import NDBError, iter_ndb_blobs
from imageaudit.facts.packages.rpm_header import (
    TAG_ARCH,
    TAG_EPOCH,
    TAG_NAME,
    TAG_RELEASE,
    TAG_SOURCERPM,
    TAG_VERSION,
    HeaderError,
    parse_header,
)
from imageaudit.imagefs import ImageFSError
from imageaudit.model import Source

RPM_DIRS = ("/usr/lib/sysimage/rpm", "/var/lib/rpm")
# In order of preference: the newest format first.
RPM_FORMATS = (("rpmdb.sqlite", "rpm-sqlite"), ("Packages.db", "rpm-ndb"), ("Packages", "rpm-bdb"))
PATTERNS = tuple(f"{d}/{name}" for d in RPM_DIRS for name, _ in RPM_FORMATS)

MAX_DB_BYTES = 1024 * 1024 * 1024
MAX_PACKAGES = 200_000
MAX_OWNED_PATHS = 5_000_000
SQLITE_SECONDS = 60.0
SQLITE_MAX_BLOB = 256 * 1024 * 1024

Blob = tuple[str, bytes | Exception]  # (record id, header blob or why it could not be read)


def _found(ctx: CollectContext) -> list[tuple[str, str]]:
    """(path, format) of every distinct rpm database file, most preferred first."""
    found: list[tuple[int, str, str]] = []
    seen: set[str] = set()
    for rank, (name, fmt) in enumerate(RPM_FORMATS):
        for directory in RPM_DIRS:
            path = f"{directory}/{name}"
            try:
                canon = ctx.fs.resolve(path)
                is_file = ctx.fs.stat(path).is_file
            except ImageFSError:
                continue
            if is_file and canon not in seen:
                seen.add(canon)
                found.append((rank, path, fmt))
    return [(path, fmt) for _, path, fmt in sorted(found, key=lambda t: t[0])]


def _sqlite_blobs(data: bytes, blobs: list[Blob]) -> None:
    deadline = time.monotonic() + SQLITE_SECONDS

    def progress() -> int:
        return 1 if time.monotonic() > deadline else 0

    with tempfile.TemporaryDirectory(prefix="imageaudit-rpmdb-") as tmp:
        copy = Path(tmp) / "rpmdb.sqlite"
        copy.write_bytes(data)
        copy.chmod(0o400)
        uri = f"file:{urllib.parse.quote(str(copy))}?mode=ro&immutable=1"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=True)
        try:
            conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, SQLITE_MAX_BLOB)
            conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 100_000)
            conn.set_progress_handler(progress, 10_000)
            # A hostile schema must not run functions or views on our behalf.
            conn.execute("PRAGMA trusted_schema=OFF")
            conn.execute("PRAGMA query_only=ON")
            conn.execute("PRAGMA cell_size_check=ON")
            kind = conn.execute("SELECT type FROM sqlite_master WHERE name = 'Packages'").fetchone()
            if kind is None or kind[0] != "table":
                raise sqlite3.DatabaseError("no Packages table")
            for hnum, blob in conn.execute("SELECT hnum, blob FROM Packages ORDER BY hnum"):
                if len(blobs) >= MAX_PACKAGES:
                    raise sqlite3.DatabaseError(f"more than {MAX_PACKAGES} packages")
                if isinstance(blob, bytes):
                    blobs.append((str(hnum), blob))
                else:
                    blobs.append((str(hnum), HeaderError(f"blob is {type(blob).__name__}")))
        finally:
            conn.close()


def _bdb_blobs(data: bytes, blobs: list[Blob]) -> None:
    for key, value in iter_hash_items(data, max_items=MAX_PACKAGES):
        # Key 0 holds rpm's next-instance counter, not a header.
        if key == b"\0\0\0\0":
            continue
        ident = str(int.from_bytes(key, "little")) if len(key) == 4 else key.hex()
        blobs.append((ident, value))


def _ndb_blobs(data: bytes, blobs: list[Blob]) -> None:
    for idx, blob in iter_ndb_blobs(data):
        if len(blobs) >= MAX_PACKAGES:
            raise NDBError(f"more than {MAX_PACKAGES} packages")
        blobs.append((str(idx), blob))


_READERS: dict[str, Callable[[bytes, list[Blob]], None]] = {
    "rpm-sqlite": _sqlite_blobs,
    "rpm-bdb": _bdb_blobs,
    "rpm-ndb": _ndb_blobs,
}


def header_package(blob: bytes, source: Source, owned_budget: int) -> InstalledPackage:
    """Turn one header blob into an :class:`InstalledPackage`; raises ``HeaderError``."""
    header = parse_header(blob)
    name = header.string(TAG_NAME)
    if not name:
        raise HeaderError("header has no NAME")
    epochs = header.ints(TAG_EPOCH)
    sourcerpm = header.string(TAG_SOURCERPM)
    src_name, src_version = split_source_rpm(sourcerpm) if sourcerpm else (None, None)
    paths = header.file_paths()
    owned = frozenset(paths[:owned_budget]) if owned_budget > 0 else frozenset()
    return InstalledPackage(
        name=name,
        version=header.string(TAG_VERSION) or "",
        epoch=epochs[0] if epochs else None,
        release=header.string(TAG_RELEASE),
        arch=header.string(TAG_ARCH),
        source_name=src_name,
        source_version=src_version,
        manager="rpm",
        status="installed",
        source=source,
        owned_count=len(set(paths)),
        owned_paths=owned,
    )


def _packages(
    blobs: Iterable[Blob], path: str
) -> tuple[list[InstalledPackage], list[PackageError]]:
    packages: list[InstalledPackage] = []
    errors: list[PackageError] = []
    budget = MAX_OWNED_PATHS
    source = Source(path)
    for ident, blob in blobs:
        if isinstance(blob, Exception):
            errors.append(PackageError("rpm", source, f"record {ident}: {blob}"))
            continue
        try:
            pkg = header_package(blob, source, budget)
        except (HeaderError, struct.error) as exc:
            errors.append(PackageError("rpm", source, f"record {ident}: {exc}"))
            continue
        budget -= len(pkg.owned_paths)
        packages.append(pkg)
    if budget <= 0:
        errors.append(PackageError("rpm", source, f"file lists cut after {MAX_OWNED_PATHS} paths"))
    return packages, errors


def read_rpm(ctx: CollectContext) -> ManagerResult:
    """Read the preferred rpm database; a broken one yields errors, never an exception."""
    found = _found(ctx)
    if not found:
        return ManagerResult()
    path, fmt = found[0]
    others = tuple(
        PackageDatabase("rpm", f, p, 0, used=False, note=f"not read: {path} is preferred")
        for p, f in found[1:]
    )
    errors: list[PackageError] = []
    packages: list[InstalledPackage] = []
    result = ctx.read(path, MAX_DB_BYTES)
    if result is None:
        errors.append(PackageError("rpm", Source(path), "database could not be read"))
    elif result.truncated:
        errors.append(
            PackageError("rpm", Source(path), f"database of {result.size} bytes exceeds the cap")
        )
    else:
        # Records read before a structural error are still reported, then the error.
        blobs: list[Blob] = []
        failure: PackageError | None = None
        try:
            _READERS[fmt](result.data, blobs)
        except (sqlite3.Error, BDBError, NDBError, struct.error, OSError) as exc:
            failure = PackageError("rpm", Source(path), f"{fmt} database: {exc}")
        packages, errs = _packages(blobs, path)
        errors.extend(errs)
        if failure is not None:
            errors.append(failure)
    database = PackageDatabase("rpm", fmt, path, len(packages))
    return ManagerResult(
        packages=tuple(packages), databases=(database, *others), errors=tuple(errors)
    )
