"""The dpkg package inventory: ``/var/lib/dpkg/status``, ``status.d/*`` and the file lists.

Every stanza of the status file becomes an :class:`InstalledPackage`, whatever its
``Status`` says (``deinstall ok config-files`` is a fact too). Distroless images keep one
stanza file per package under ``status.d/`` (with ``<name>.md5sums`` beside it); they are
read the same way. The files a package owns come from ``info/<name>[:<arch>].list`` (or the
``.md5sums`` of ``status.d``), bounded per file and in total.

Specs: deb-control(5) / deb822(5) (stanza syntax), dpkg-query(1) (``Status``,
``${source:Package}``, ``${source:Version}``), deb-version(7) (epoch:upstream-revision).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from imageaudit.facts.base import CollectContext
from imageaudit.facts.packages.model import (
    InstalledPackage,
    ManagerResult,
    PackageDatabase,
    PackageError,
    read_database,
)
from imageaudit.facts.textlines import glibc_lines
from imageaudit.imagefs import ImageFSError
from imageaudit.model import Source

STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d"
INFO = "/var/lib/dpkg/info"
PATTERNS = (STATUS, f"{STATUS_D}/*", f"{INFO}/*.list")

MAX_STATUS_BYTES = 64 * 1024 * 1024
MAX_LIST_BYTES = 16 * 1024 * 1024
MAX_STATUS_D_FILES = 20_000
MAX_OWNED_PATHS = 5_000_000
MAX_ERRORS_PER_FILE = 200

_SOURCE_RE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?\s*$")
_FIELD_RE = re.compile(r"^([^\s:][^:]*):(.*)$")


@dataclass
class Stanza:
    """One paragraph of a control file: fields in order of appearance, and where it starts."""

    line: int
    fields: dict[str, str]


def parse_stanzas(text: str, path: str) -> tuple[list[Stanza], list[PackageError]]:
    """Split deb822 text into stanzas; malformed lines become errors, never exceptions."""
    stanzas: list[Stanza] = []
    errors: list[PackageError] = []
    current: Stanza | None = None
    last_field: str | None = None
    for number, line in enumerate(glibc_lines(text), start=1):
        if not line.strip():
            current, last_field = None, None
            continue
        if line[0] in " \t":
            if current is not None and last_field is not None:
                current.fields[last_field] += "\n" + line.strip()
            else:
                errors.append(
                    PackageError("dpkg", Source(path, number), "continuation line outside a field")
                )
            continue
        match = _FIELD_RE.match(line)
        if match is None:
            errors.append(PackageError("dpkg", Source(path, number), "line is not a field"))
            continue
        if current is None:
            current = Stanza(line=number, fields={})
            stanzas.append(current)
        name = match.group(1)
        if name in current.fields:
            errors.append(PackageError("dpkg", Source(path, number), f"duplicate field {name}"))
            last_field = None
            continue
        current.fields[name] = match.group(2).strip()
        last_field = name
    if len(errors) > MAX_ERRORS_PER_FILE:
        dropped = len(errors) - MAX_ERRORS_PER_FILE
        errors = errors[:MAX_ERRORS_PER_FILE]
        errors.append(PackageError("dpkg", Source(path), f"{dropped} further malformed lines"))
    return stanzas, errors


def split_version(version: str) -> tuple[int | None, str, str | None]:
    """``1:2.3-4`` -> (1, ``2.3``, ``4``); a non-numeric epoch stays in the version."""
    epoch: int | None = None
    rest = version
    head, sep, tail = version.partition(":")
    if sep and head.isdigit() and head.isascii():
        epoch, rest = int(head), tail
    upstream, sep, revision = rest.rpartition("-")
    if not sep:
        return epoch, rest, None
    return epoch, upstream, revision


def stanza_package(stanza: Stanza, path: str) -> InstalledPackage | PackageError:
    """The package a status stanza describes, or why it cannot be one."""
    fields = stanza.fields
    source = Source(path, stanza.line)
    name = fields.get("Package", "")
    if not name:
        return PackageError("dpkg", source, "stanza has no Package field")
    full = fields.get("Version", "")
    epoch, version, release = split_version(full)
    src_name, src_version = name, full or None
    if "Source" in fields:
        match = _SOURCE_RE.match(fields["Source"])
        if match:
            src_name = match.group(1)
            src_version = match.group(2) or src_version
    return InstalledPackage(
        name=name,
        version=version,
        epoch=epoch,
        release=release,
        arch=fields.get("Architecture") or None,
        source_name=src_name,
        source_version=src_version,
        manager="dpkg",
        status=fields.get("Status"),
        source=source,
    )


class _Owned:
    """Reads file lists within one shared budget of paths."""

    def __init__(self, ctx: CollectContext) -> None:
        self.ctx = ctx
        self.budget = MAX_OWNED_PATHS
        self.errors: list[PackageError] = []

    def read(self, path: str, md5sums: bool = False) -> frozenset[str] | None:
        result = self.ctx.read(path, MAX_LIST_BYTES)
        if result is None:
            return None
        if result.truncated:
            self.errors.append(
                PackageError("dpkg", Source(path), f"file list cut at {MAX_LIST_BYTES} bytes")
            )
        paths: set[str] = set()
        for line in glibc_lines(result.text()):
            if not line.strip():
                continue
            if md5sums:
                line = line.partition("  ")[2] or line.partition(" ")[2]
                line = "/" + line.lstrip("/")
            paths.add("/" if line == "/." else line)
        if len(paths) > self.budget:
            self.errors.append(
                PackageError("dpkg", Source(path), f"file lists cut after {MAX_OWNED_PATHS} paths")
            )
            paths = set(sorted(paths)[: max(self.budget, 0)])
        self.budget -= len(paths)
        return frozenset(paths)


def _with_owned(pkg: InstalledPackage, owned: frozenset[str] | None) -> InstalledPackage:
    if owned is None:
        return pkg
    return dataclasses.replace(pkg, owned_paths=owned, owned_count=len(owned))


def _read_status(ctx: CollectContext, owned: _Owned) -> ManagerResult:
    read = read_database(ctx, "dpkg", STATUS, MAX_STATUS_BYTES)
    if read is None:
        return ManagerResult()
    text, errors = read
    stanzas, errs = parse_stanzas(text, STATUS)
    errors.extend(errs)
    try:
        lists = set(ctx.fs.listdir(INFO))
    except ImageFSError:
        lists = set()
    packages: list[InstalledPackage] = []
    for stanza in stanzas:
        pkg = stanza_package(stanza, STATUS)
        if isinstance(pkg, PackageError):
            errors.append(pkg)
            continue
        for candidate in (f"{pkg.name}:{pkg.arch}.list", f"{pkg.name}.list"):
            if candidate in lists:
                pkg = _with_owned(pkg, owned.read(f"{INFO}/{candidate}"))
                break
        packages.append(pkg)
    database = PackageDatabase("dpkg", "dpkg-status", STATUS, len(packages))
    return ManagerResult(tuple(packages), (database,), tuple(errors))


def _read_status_d(ctx: CollectContext, owned: _Owned) -> ManagerResult:
    try:
        names = ctx.fs.listdir(STATUS_D)
    except ImageFSError:
        return ManagerResult()
    errors: list[PackageError] = []
    if len(names) > MAX_STATUS_D_FILES:
        errors.append(
            PackageError(
                "dpkg",
                Source(STATUS_D),
                f"{len(names)} files; read only the first {MAX_STATUS_D_FILES}",
            )
        )
        names = names[:MAX_STATUS_D_FILES]
    present = set(names)
    packages: list[InstalledPackage] = []
    for name in names:
        if name.endswith(".md5sums"):
            continue
        path = f"{STATUS_D}/{name}"
        if not ctx.fs.is_file(path):
            continue
        result = ctx.read(path, MAX_STATUS_BYTES)
        if result is None:
            continue
        stanzas, errs = parse_stanzas(result.text(), path)
        errors.extend(errs)
        for stanza in stanzas:
            pkg = stanza_package(stanza, path)
            if isinstance(pkg, PackageError):
                errors.append(pkg)
                continue
            if f"{name}.md5sums" in present:
                pkg = _with_owned(pkg, owned.read(f"{STATUS_D}/{name}.md5sums", md5sums=True))
            packages.append(pkg)
    database = PackageDatabase("dpkg", "dpkg-status.d", STATUS_D, len(packages))
    return ManagerResult(tuple(packages), (database,), tuple(errors))


def read_dpkg(ctx: CollectContext) -> ManagerResult:
    """Every dpkg stanza of the image, the databases read and what could not be read."""
    owned = _Owned(ctx)
    parts = (_read_status(ctx, owned), _read_status_d(ctx, owned))
    return ManagerResult(
        packages=tuple(p for part in parts for p in part.packages),
        databases=tuple(d for part in parts for d in part.databases),
        errors=tuple(e for part in parts for e in part.errors) + tuple(owned.errors),
    )
