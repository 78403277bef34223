"""The apk package inventory: ``/lib/apk/db/installed``.

One stanza per package, separated by blank lines, one ``X:value`` per line: ``P`` name,
``V`` version, ``A`` architecture, ``o`` origin (the source package), ``F`` a directory
and the ``R`` lines after it the files in that directory (paths without the leading
``/``). Unknown keys are skipped; lines that are not ``X:value`` are errors.

Specs: apk-tools "Installed database V2 format" (wiki.alpinelinux.org/wiki/Apk_spec),
apk-package(5).
"""

from __future__ import annotations

from imageaudit.facts.base import CollectContext
from imageaudit.facts.packages.model import (
    InstalledPackage,
    ManagerResult,
    PackageDatabase,
    PackageError,
    read_database,
)
from imageaudit.facts.textlines import glibc_lines
from imageaudit.model import Source

INSTALLED = "/lib/apk/db/installed"
PATTERNS = (INSTALLED,)
MAX_BYTES = 128 * 1024 * 1024
MAX_OWNED_PATHS = 5_000_000
MAX_ERRORS = 200


class _Stanza:
    def __init__(self, line: int) -> None:
        self.line = line
        self.fields: dict[str, str] = {}
        self.paths: set[str] = set()
        self.directory: str | None = None


def _package(stanza: _Stanza, owned_budget: int) -> InstalledPackage | PackageError:
    source = Source(INSTALLED, stanza.line)
    name = stanza.fields.get("P", "")
    if not name:
        return PackageError("apk", source, "stanza has no P: (name) line")
    version = stanza.fields.get("V", "")
    paths = stanza.paths
    owned = frozenset(paths) if len(paths) <= owned_budget else frozenset()
    return InstalledPackage(
        name=name,
        version=version,
        epoch=None,
        release=None,
        arch=stanza.fields.get("A") or None,
        source_name=stanza.fields.get("o") or name,
        source_version=version or None,
        manager="apk",
        status="installed",
        source=source,
        owned_count=len(paths),
        owned_paths=owned,
    )


def _parse(text: str) -> tuple[list[_Stanza], list[PackageError]]:
    stanzas: list[_Stanza] = []
    errors: list[PackageError] = []
    current: _Stanza | None = None
    for number, line in enumerate(glibc_lines(text), start=1):
        if not line.strip():
            current = None
            continue
        if len(line) < 2 or line[1] != ":":
            errors.append(PackageError("apk", Source(INSTALLED, number), "line is not X:value"))
            continue
        if current is None:
            current = _Stanza(number)
            stanzas.append(current)
        key, value = line[0], line[2:]
        if key == "F":
            current.directory = value.strip("/")
            current.paths.add("/" + current.directory)
        elif key == "R":
            base = f"/{current.directory}/" if current.directory else "/"
            current.paths.add(base + value)
        else:
            current.fields.setdefault(key, value)
    if len(errors) > MAX_ERRORS:
        dropped = len(errors) - MAX_ERRORS
        errors = errors[:MAX_ERRORS]
        errors.append(PackageError("apk", Source(INSTALLED), f"{dropped} further malformed lines"))
    return stanzas, errors


def read_apk(ctx: CollectContext) -> ManagerResult:
    """Every package of the apk installed database and what could not be read."""
    read = read_database(ctx, "apk", INSTALLED, MAX_BYTES)
    if read is None:
        return ManagerResult()
    text, errors = read
    stanzas, errs = _parse(text)
    errors.extend(errs)
    packages: list[InstalledPackage] = []
    budget = MAX_OWNED_PATHS
    for stanza in stanzas:
        pkg = _package(stanza, budget)
        if isinstance(pkg, PackageError):
            errors.append(pkg)
            continue
        if pkg.owned_count and not pkg.owned_paths:
            errors.append(
                PackageError("apk", pkg.source, f"file lists cut after {MAX_OWNED_PATHS} paths")
            )
        budget -= len(pkg.owned_paths)
        packages.append(pkg)
    database = PackageDatabase("apk", "apk-installed", INSTALLED, len(packages))
    return ManagerResult(tuple(packages), (database,), tuple(errors))
