"""OSV advisories: an index by (ecosystem release, package) and the match of installed packages.

:func:`load_osv` streams the records of directories and zips (:mod:`.osv_load`) and keeps, per
``affected[]`` entry of a supported distribution ecosystem, only what matching needs: the
ECOSYSTEM ranges, the enumerated versions, the severity, aliases and a link.
:func:`match_osv` judges installed packages against it with the package manager's own version
order (:func:`imageaudit.vulns.versions.compare`). Debian, Ubuntu and Alpine file advisories
under the *source* package, so dpkg packages are looked up by source name and compared by
source version, apk packages by origin; rpm packages by binary name, then by source name.

Specs: OSV schema 1.6 ("Evaluation" of ``ranges``: events sorted by version; ``introduced``
``0``; ``fixed``; ``last_affected``), deb-version(7), rpm version comparison, apk-tools.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imageaudit.facts.os import os_value
from imageaudit.facts.packages.model import InstalledPackage
from imageaudit.vulns.model import AdvisoryMatch
from imageaudit.vulns.osv_ecosystems import (
    EcosystemKey,
    describe_key,
    ecosystem_key,
    image_ecosystem,
)
from imageaudit.vulns.osv_load import LoadStats, OSVLimits, OSVLoadError, iter_records
from imageaudit.vulns.osv_severity import SeverityInfo, record_severity
from imageaudit.vulns.versions import comparer

__all__ = [
    "OSVAffected",
    "OSVIndex",
    "OSVLimits",
    "OSVLoadError",
    "index_records",
    "load_osv",
    "match_osv",
    "osv_coverage",
]

Event = tuple[str, str]  # ("introduced" | "fixed" | "last_affected", version)
Comparer = Callable[[str, str], int]
_EVENT_KINDS = frozenset({"introduced", "fixed", "last_affected"})
MAX_TEXT = 300
MAX_ALIASES = 50


@dataclass(frozen=True, slots=True)
class OSVAffected:
    """One ``affected[]`` entry of one record, reduced to what matching needs."""

    id: str
    package: str
    ranges: tuple[tuple[Event, ...], ...]
    versions: frozenset[str]
    severity: SeverityInfo
    aliases: tuple[str, ...] = ()
    summary: str = ""
    url: str | None = None
    feed: str = ""


@dataclass
class OSVIndex:
    """Affected entries by ``(family, release, package)``, and what the load saw."""

    entries: dict[tuple[str, str, str], list[OSVAffected]] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    stats: LoadStats = field(default_factory=LoadStats)
    withdrawn: int = 0

    def ecosystems(self) -> frozenset[EcosystemKey]:
        """The ``(family, release)`` keys the index holds advisories for."""
        return frozenset((f, r) for f, r, _ in self.entries)

    def lookup(self, key: EcosystemKey, package: str) -> tuple[OSVAffected, ...]:
        """The affected entries naming ``package`` in the release ``key``."""
        return tuple(self.entries.get((key[0], key[1], package), ()))


def _text(value: object, limit: int = MAX_TEXT) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)]


def _url(record: Mapping[str, Any]) -> str | None:
    refs = [r for r in record.get("references") or () if isinstance(r, Mapping)]
    for wanted in ("ADVISORY", "WEB", None):
        for ref in refs:
            url = ref.get("url")
            if isinstance(url, str) and (wanted is None or ref.get("type") == wanted):
                return url[:MAX_TEXT]
    return None


def _ranges(affected: Mapping[str, Any]) -> tuple[tuple[Event, ...], ...]:
    result = []
    for rng in affected.get("ranges") or ():
        if not isinstance(rng, Mapping) or rng.get("type") != "ECOSYSTEM":
            continue  # GIT and SEMVER ranges say nothing about distribution versions
        events: list[Event] = []
        for event in rng.get("events") or ():
            if not isinstance(event, Mapping):
                continue
            for kind, version in event.items():
                if kind in _EVENT_KINDS and isinstance(version, str) and version:
                    events.append((kind, version))
        if events:
            result.append(tuple(events))
    return tuple(result)


def index_records(
    records: Iterable[Mapping[str, Any]],
    wanted: Collection[EcosystemKey] | None = None,
    index: OSVIndex | None = None,
    where: str = "",
) -> OSVIndex:
    """Add OSV records (parsed JSON) to ``index``; only releases in ``wanted`` when given."""
    index = index if index is not None else OSVIndex()
    for record in records:
        if record.get("withdrawn"):
            index.withdrawn += 1
            continue
        rec_id = _text(record.get("id"), 200)
        names = _strings(record.get("aliases")) + _strings(record.get("upstream"))
        aliases = list(dict.fromkeys(names))
        for affected in record.get("affected") or ():
            if not isinstance(affected, Mapping):
                continue
            package = affected.get("package")
            if not isinstance(package, Mapping):
                continue
            name, eco = package.get("name"), package.get("ecosystem")
            key = ecosystem_key(eco) if isinstance(eco, str) else None
            if key is None or not isinstance(name, str) or not name:
                continue
            if wanted is not None and key not in wanted:
                continue
            entry = OSVAffected(
                id=rec_id,
                package=name,
                ranges=_ranges(affected),
                versions=frozenset(_strings(affected.get("versions"))),
                severity=record_severity(record, affected),
                aliases=tuple(a[:200] for a in aliases[:MAX_ALIASES] if a != rec_id),
                summary=_text(record.get("summary")),
                url=_url(record),
                feed=where,
            )
            index.entries.setdefault((key[0], key[1], name), []).append(entry)
    return index


def load_osv(
    sources: Sequence[Path],
    wanted: Collection[EcosystemKey] | None = None,
    limits: OSVLimits | None = None,
) -> OSVIndex:
    """Index the OSV records of directories and zip files (streamed, bounded).

    ``wanted`` restricts the index to some releases (``{("debian", "12")}``) to save memory.
    Unreadable records are counted in ``index.stats``; a missing source raises
    :class:`OSVLoadError`.
    """
    index = OSVIndex(sources=tuple(str(s) for s in sources))
    for raw in iter_records(sources, index.stats, limits or OSVLimits()):
        index_records((raw.data,), wanted, index, raw.where)
    return index


def osv_coverage(os_facts: Any, index: OSVIndex) -> str | None:
    """Why the index cannot judge this image (unsupported or absent release), else None."""
    key = image_ecosystem(os_facts)
    if key is None:
        ident = os_value(os_facts, "id") or "unknown"
        version = os_value(os_facts, "version_id") or "?"
        return f"no OSV ecosystem is known for {ident} {version}"
    if key not in index.ecosystems():
        return f"the OSV feed holds no advisories for {describe_key(key)}"
    return None


def _sorted_events(events: Sequence[Event], cmp: Comparer) -> Sequence[Event]:
    def order(a: Event, b: Event) -> int:
        if a[0] == "introduced" and a[1] == "0":
            return -1 if not (b[0] == "introduced" and b[1] == "0") else 0
        if b[0] == "introduced" and b[1] == "0":
            return 1
        return cmp(a[1], b[1])

    try:
        return sorted(events, key=functools.cmp_to_key(order))
    except ValueError:
        return events  # an unparsable event version: keep the record's own order


def affected_by(version: str, entry: OSVAffected, cmp: Comparer) -> tuple[bool, str | None]:
    """Whether ``version`` is affected by ``entry``, and the version fixing it (if any).

    Raises ValueError when a version cannot be compared.
    """
    hit = version in entry.versions
    fixed: str | None = None
    for events in entry.ranges:
        state = False
        for kind, bound in _sorted_events(events, cmp):
            if kind == "introduced":
                if bound == "0" or cmp(version, bound) >= 0:
                    state = True
            elif kind == "fixed":
                if cmp(version, bound) >= 0:
                    state = False
            elif cmp(version, bound) > 0:  # last_affected
                state = False
        if state:
            hit = True
            above = [b for k, b in events if k == "fixed" and cmp(version, b) < 0]
            for candidate in above:
                if fixed is None or cmp(candidate, fixed) < 0:
                    fixed = candidate
    return hit, fixed if hit else None


def _lookups(pkg: InstalledPackage) -> tuple[tuple[str, str], ...]:
    """(advisory package name, version to compare) pairs for one installed package."""
    if pkg.manager == "dpkg":
        return ((pkg.source_name or pkg.name, pkg.source_version or pkg.full_version),)
    if pkg.manager == "apk":
        return ((pkg.source_name or pkg.name, pkg.full_version),)
    names = [pkg.name]
    if pkg.source_name and pkg.source_name != pkg.name:
        names.append(pkg.source_name)
    return tuple((n, pkg.full_version) for n in names)


def match_osv(
    packages: Iterable[InstalledPackage], os_facts: Any, osv_index: OSVIndex
) -> tuple[AdvisoryMatch, ...]:
    """Every (advisory, installed package) pair where the package's version is affected.

    One :class:`AdvisoryMatch` per record and binary package, ``source="osv"``;
    ``fixed_version`` is None when no fix is known. Packages whose files are not installed
    (dpkg ``config-files``) are skipped, and so is a pair whose versions cannot be compared.
    """
    key = image_ecosystem(os_facts)
    if key is None:
        return ()
    matches: dict[tuple[str, str, str], AdvisoryMatch] = {}
    for pkg in packages:
        if not pkg.present:
            continue
        cmp = comparer(pkg.manager)
        for name, version in _lookups(pkg):
            for entry in osv_index.lookup(key, name):
                ident = (entry.id, pkg.name, version)
                if ident in matches:
                    continue
                try:
                    hit, fixed = affected_by(version, entry, cmp)
                except ValueError:
                    continue
                if not hit:
                    continue
                matches[ident] = AdvisoryMatch(
                    id=entry.id,
                    package=pkg.name,
                    installed_version=version,
                    fixed_version=fixed,
                    severity=entry.severity.severity,
                    source="osv",
                    aliases=entry.aliases,
                    summary=entry.summary,
                    cvss_score=entry.severity.score,
                    cvss_vector=entry.severity.vector,
                    url=entry.url,
                    source_name=name if name != pkg.name else pkg.source_name,
                    feed=entry.feed or None,
                )
    return tuple(sorted(matches.values(), key=lambda m: (m.package, m.id)))
