"""Collector ``integrity``: the offline ``debsums`` / ``rpm -V`` / ``apk audit`` of the code.

Each installed package's recorded file digests (dpkg ``info/<pkg>[:<arch>].md5sums`` and
distroless ``status.d/<pkg>.md5sums`` and apk ``Z:`` lines of ``/lib/apk/db/installed``, read
by :mod:`imageaudit.facts.integrity_db`; rpm ``FILEDIGESTS`` in the rpm database, read by
:mod:`imageaudit.facts.integrity_rpm`) are
compared with the files in the image, for the files where a change means tampering: programs
(``/bin``, ``/sbin``, ``/usr/bin``, ``/usr/sbin``, ``/usr/libexec``), libraries, PAM modules and
kernel modules (``/lib*``, ``/usr/lib*``, device firmware excepted). ``/etc`` is left out on
purpose: it is the administrator's (dpkg and rpm leave configuration files out or flag them),
the few other files packages put there are rewritten by tools (certificate bundles, SELinux
policy), and what matters there for persistence (PAM stacks, preload lists, cron, units) has
rules of its own.

Not compared, as ``debsums`` and ``rpm -V`` do not: symlinks, configuration files (dpkg
``Conffiles``, rpm ``%config``), rpm ``%ghost`` files and files whose ``%verify`` excludes the
digest, files a dpkg package no longer owns (taken over by another package through
``Replaces``: dropped from its ``.list``), and diverted files, which are compared at the name
dpkg moved them to (``/var/lib/dpkg/diversions``). A path several packages list (Multi-Arch
``same``, rpm multilib) matches when it matches any of them.

Bounded: a file over :data:`MAX_FILE_BYTES`, the bytes after :data:`MAX_TOTAL_BYTES` and the
files after :data:`MAX_FILES` are not read; they, unreadable files and digest lists that could
not be read whole are ``unverified`` (with a few examples), never left out silently. A file
the ``filehashes`` collector already hashed is not read again.

Specs: deb-control(5) (``Conffiles``), dpkg(1) ``--verify``, dpkg-divert(1), debsums(1);
rpm ``rpmtag.h`` (FILEDIGESTS, FILEDIGESTALGO, FILEFLAGS, FILEVERIFYFLAGS), rpm(8) ``-V``;
apk-tools Apk_spec (``Z:`` is ``Q1`` + base64 SHA-1).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field

from imageaudit.facts import integrity_rpm
from imageaudit.facts.base import CollectContext, Collector
from imageaudit.facts.filehashes import FileHash, FileHashesFacts
from imageaudit.facts.integrity_db import (
    Expected,
    Gather,
    Kind,
    Unverified,
    kind_of,
    read_apk,
    read_dpkg,
)
from imageaudit.facts.packages import PackagesFacts
from imageaudit.facts.packages.model import Manager
from imageaudit.imagefs import FileStat, ImageFSError, NotFoundInImage
from imageaudit.model import Source

NAME = "integrity"
MAX_FILE_BYTES = 128 * 2**20
MAX_TOTAL_BYTES = 2 * 2**30
MAX_FILES = 200_000
MAX_REPORTED = 5_000
# Digest algorithms the filehashes collector keeps, by hashlib name.
_REUSABLE = ("md5", "sha1", "sha256")


@dataclass(frozen=True, slots=True)
class ChangedFile:
    """A package file whose content (or type) is not what the package recorded."""

    path: str  # as the package lists it
    read_path: str  # where it was compared: the in-image canonical path
    diverted_to: str | None  # the name dpkg-divert moved the packaged file to
    package: str
    manager: Manager
    kind: Kind
    algorithm: str
    expected: str
    actual: str | None  # None when the path is not a regular file any more
    found: str  # "content differs" or what is there instead ("a directory")
    source: Source  # where the expected digest is recorded


@dataclass(frozen=True, slots=True)
class MissingFile:
    path: str
    package: str
    manager: Manager
    kind: Kind
    source: Source


@dataclass(frozen=True, slots=True)
class IntegrityFacts:
    """The outcome of comparing package files with their recorded digests."""

    databases: tuple[str, ...] = ()  # digest lists read (paths), one per manager or package
    packages: int = 0  # packages with recorded digests
    verified: int = 0  # in-scope paths compared (matching or not)
    changed: tuple[ChangedFile, ...] = ()
    changed_count: int = 0
    missing: tuple[MissingFile, ...] = ()
    missing_count: int = 0
    unverified: tuple[Unverified, ...] = ()  # the first examples
    unverified_count: int = 0
    # Of those, the ones where whether the file is there is unknown too (stage not ``read``).
    presence_unverified_count: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # why paths were not compared
    bytes_read: int = 0
    reused_digests: int = 0  # digests taken from the filehashes collector
    max_file_bytes: int = MAX_FILE_BYTES
    max_total_bytes: int = MAX_TOTAL_BYTES


# -- comparing ------------------------------------------------------------------------------


class _Compare:
    def __init__(self, g: Gather, hashed: dict[str, FileHash]) -> None:
        self.g = g
        self.hashed = hashed
        self.index = {st.path: st for st in g.ctx.walk()}
        self.dirs: dict[str, str] = {}
        self.changed: list[ChangedFile] = []
        self.changed_count = 0
        self.missing: list[MissingFile] = []
        self.missing_count = 0
        self.verified = 0
        self.bytes_read = 0
        self.reused = 0

    def run(self) -> None:
        groups: dict[str, list[Expected]] = {}
        for entry in self.g.expected:
            groups.setdefault(self._location(entry), []).append(entry)
        for where in sorted(groups):
            self.compare(where, groups[where])

    def _location(self, entry: Expected) -> str:
        diverted = self.g.diverted.get(entry.path)
        if diverted is None:
            return entry.path
        target, by = diverted
        if by == entry.package.partition(":")[0]:
            return entry.path
        self.g.skip("diverted (compared at the diverted name)")
        return target

    def compare(self, where: str, entries: list[Expected]) -> None:
        first = entries[0]
        try:
            canon, st = self._lstat(where)
        except NotFoundInImage:
            self._missing(first)
            return
        except (ImageFSError, OSError) as exc:
            self.g.not_verified(where, f"cannot be looked up: {exc}", "lookup", first.package)
            return
        if st.is_symlink:
            self.g.skip("symlink")
            return
        if not st.is_file:
            self._changed(first, where, canon, None, f"a {st.type.value}")
            return
        if self.verified >= MAX_FILES:
            self.g.not_verified(canon, f"more than {MAX_FILES} files to compare", "read",
                                first.package)
            return
        digests = self._digests(canon, st.size, {e.algorithm for e in entries}, first.package)
        if digests is None:
            return
        self.verified += 1
        if any(digests.get(e.algorithm) == e.digest for e in entries):
            return
        self._changed(first, where, canon, digests.get(first.algorithm), "content differs")

    def _lstat(self, where: str) -> tuple[str, FileStat]:
        """The canonical path and metadata of ``where`` (not following it), from the shared
        walk when it holds it: one resolution per directory instead of one per file."""
        fs = self.g.ctx.fs
        parent, base = posixpath.split(where)
        if base in ("", ".", ".."):
            canon = fs.resolve(where, follow_last=False)
            return canon, fs.lstat(canon)
        canon_parent = self.dirs.get(parent)
        if canon_parent is None:
            canon_parent = self.dirs[parent] = fs.resolve(parent)
        canon = posixpath.join(canon_parent, base)
        st = self.index.get(canon)
        return canon, st if st is not None else fs.lstat(canon)

    def _digests(self, canon: str, size: int, algorithms: set[str],
                 package: str) -> dict[str, str] | None:
        known = self.hashed.get(canon)
        if known is not None and known.size == size and algorithms <= set(_REUSABLE):
            self.reused += 1
            return {a: getattr(known, a) for a in algorithms}
        if size > MAX_FILE_BYTES:
            self.g.not_verified(canon, f"larger than {_size(MAX_FILE_BYTES)}", "read", package)
            return None
        if self.bytes_read + size > MAX_TOTAL_BYTES:
            self.g.not_verified(canon, f"over the {_size(MAX_TOTAL_BYTES)} read per image",
                                "read", package)
            return None
        try:
            result = self.g.ctx.fs.read(canon, MAX_FILE_BYTES)
        except (ImageFSError, OSError) as exc:
            self.g.not_verified(canon, f"cannot be read: {exc}", "read", package)
            return None
        if result.truncated:
            self.g.not_verified(canon, f"larger than {_size(MAX_FILE_BYTES)}", "read", package)
            return None
        self.bytes_read += len(result.data)
        return {a: hashlib.new(a, result.data, usedforsecurity=False).hexdigest()
                for a in algorithms}

    def _changed(self, e: Expected, where: str, canon: str, actual: str | None,
                 found: str) -> None:
        self.changed_count += 1
        if len(self.changed) < MAX_REPORTED:
            self.changed.append(ChangedFile(
                e.path, canon, where if where != e.path else None, e.package, e.manager,
                kind_of(canon), e.algorithm, e.digest, actual, found, e.source))

    def _missing(self, e: Expected) -> None:
        self.missing_count += 1
        if len(self.missing) < MAX_REPORTED:
            self.missing.append(MissingFile(e.path, e.package, e.manager, kind_of(e.path),
                                            e.source))


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n} bytes"


def _hashed(facts: object) -> dict[str, FileHash]:
    if not isinstance(facts, FileHashesFacts):
        return {}
    return {f.path: f for f in facts.files}


def collect(ctx: CollectContext) -> IntegrityFacts:
    g = Gather(ctx)
    packages = ctx.collected.get("packages")
    read_dpkg(g, packages if isinstance(packages, PackagesFacts) else None)
    integrity_rpm.read_rpm_digests(g)
    read_apk(g)
    cmp = _Compare(g, _hashed(ctx.collected.get("filehashes")))
    cmp.run()
    return IntegrityFacts(
        databases=tuple(_dedupe(g.databases)), packages=g.packages, verified=cmp.verified,
        changed=tuple(cmp.changed), changed_count=cmp.changed_count,
        missing=tuple(cmp.missing), missing_count=cmp.missing_count,
        unverified=tuple(g.unverified), unverified_count=g.unverified_count,
        presence_unverified_count=g.presence_unverified, skipped=dict(sorted(g.skipped.items())),
        bytes_read=cmp.bytes_read, reused_digests=cmp.reused,
    )


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


COLLECTOR = Collector(NAME, (), collect, needs_walk=True)

__all__ = ["COLLECTOR", "ChangedFile", "IntegrityFacts", "MissingFile", "Unverified", "collect"]
