"""Match an image's installed packages against a feed snapshot: pending updates.

A pending update is a newer version of the same binary package (same architecture, or
``all``/``noarch``) in an update feed of the image's release; when the feed has no build of
that binary at all, a newer version of its source package counts (``matched_by="source"``).
Advisory matchers (OSV, trivy...) listed in :data:`ADVISORY_MATCHERS` run afterwards on the
same snapshot and add their records.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imageaudit.facts.os import os_value
from imageaudit.facts.packages.model import InstalledPackage
from imageaudit.vulns.model import FeedProblem, PendingUpdate, VulnerabilityFacts
from imageaudit.vulns.sync import (
    FeedError,
    Snapshot,
    SnapshotFeed,
    open_snapshot,
    parse_iso,
    read_parsed,
    utc_now,
)
from imageaudit.vulns.versions import compare

# "module:function" names called as ``function(facts, snapshot, vulnerability_facts)`` and
# returning the (extended) VulnerabilityFacts; a module that does not exist is skipped.
ADVISORY_MATCHERS: tuple[str, ...] = (
    "imageaudit.vulns.osv_feed:osv_matcher",
    "imageaudit.vulns.security_suite:security_matcher",
)

FORMAT_MANAGER = {"deb-packages": "dpkg", "rpm-primary": "rpm", "apk-index": "apk"}
_DEBIAN_CODENAMES = {"9": "stretch", "10": "buster", "11": "bullseye", "12": "bookworm",
                     "13": "trixie", "14": "forky"}
_ANY_ARCH = {"dpkg": "all", "rpm": "noarch"}


@dataclass(slots=True)
class FeedIndex:
    """One feed's packages by binary name and by source name (newest source version)."""

    feed: SnapshotFeed
    manager: str
    binaries: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # name -> (ver, arch)
    sources: dict[str, str] = field(default_factory=dict)  # source -> newest source version

    @classmethod
    def build(cls, feed: SnapshotFeed, rows: Iterable[list[Any]]) -> FeedIndex:
        index = cls(feed, FORMAT_MANAGER[feed.format])
        for row in rows:
            if not isinstance(row, list) or len(row) < 5:
                continue
            name, version, arch, src, srcver = (str(x) for x in row[:5])
            index.binaries.setdefault(name, []).append((version, arch))
            old = index.sources.get(src)
            if old is None or _newer(index.manager, srcver, old):
                index.sources[src] = srcver
        return index


def _newer(manager: str, a: str, b: str) -> bool:
    try:
        return compare(manager, a, b) > 0
    except ValueError:
        return False


def release_keys(os_facts: Any) -> list[str]:
    """Feed release names the image's os-release points to, most specific first."""
    if os_facts is None:
        return []

    def value(name: str) -> str:
        return (os_value(os_facts, name) or "").strip().lower()

    ident, codename, version = value("id"), value("codename"), value("version_id")
    keys: list[str] = []
    if ident in ("debian", "ubuntu"):
        if not codename and ident == "debian":
            codename = _DEBIAN_CODENAMES.get(version.split(".")[0], "")
        if codename:
            keys.append(f"{ident}:{codename}")
    elif ident == "alpine" and version:
        parts = version.split(".")
        keys.append(f"alpine:v{parts[0]}.{parts[1]}" if len(parts) > 1 else f"alpine:{version}")
        keys.append("alpine:edge")
    elif ident and version:
        keys.append(f"rpm:{ident}-{version}")
        keys.append(f"rpm:{ident}-{version.split('.')[0]}")
    return keys


def _arch_ok(manager: str, installed: str | None, offered: str) -> bool:
    if manager == "apk" or not installed or not offered:
        return True
    anyarch = _ANY_ARCH.get(manager)
    return offered == installed or anyarch in (offered, installed)


def pending_updates(packages: Iterable[InstalledPackage], index: FeedIndex) -> list[PendingUpdate]:
    """The updates one feed offers for the installed packages of its manager."""
    found: list[PendingUpdate] = []
    suite = index.feed.info.suite
    for pkg in packages:
        if pkg.manager != index.manager or not pkg.present:
            continue
        installed = pkg.full_version
        offers = [v for v, arch in index.binaries.get(pkg.name, ()) if
                  _arch_ok(pkg.manager, pkg.arch, arch)]
        if offers:
            best = offers[0]
            for version in offers[1:]:
                if _newer(pkg.manager, version, best):
                    best = version
            if _newer(pkg.manager, best, installed):
                found.append(PendingUpdate(pkg.name, pkg.arch, pkg.manager, installed, best, suite,
                                           "binary", index.feed.security, pkg.source_name))
            continue
        source = pkg.source_name or pkg.name
        source_version = pkg.source_version or installed
        offered = index.sources.get(source)
        if offered is not None and _newer(pkg.manager, offered, source_version):
            found.append(PendingUpdate(pkg.name, pkg.arch, pkg.manager, source_version, offered,
                                       suite, "source", index.feed.security, source))
    return found


def load_indexes(snapshot: Snapshot, keys: list[str]) -> tuple[list[FeedIndex], str | None]:
    """Indexes of the first release key that has package feeds in the snapshot."""
    for key in keys:
        feeds = [f for f in snapshot.feeds if f.release == key and f.format in FORMAT_MANAGER]
        if feeds:
            return [FeedIndex.build(f, read_parsed(snapshot, f)) for f in feeds], key
    return [], None


def assess(facts: Any, feeds_dir: Path, now: dt.datetime | None = None) -> VulnerabilityFacts:
    """Match ``facts.packages`` against the snapshot in ``feeds_dir`` (see module doc).

    Problems (no snapshot, no feed for the image's release, unreadable files) are recorded
    in ``problems`` rather than raised; ``release`` is None when no update feed applied.
    """
    try:
        snapshot = open_snapshot(feeds_dir)
    except FeedError as exc:
        return VulnerabilityFacts(release=None, problems=(FeedProblem(str(feeds_dir), str(exc)),))
    keys = release_keys(getattr(facts, "os", None))
    problems: list[FeedProblem] = []
    try:
        indexes, release = load_indexes(snapshot, keys)
    except FeedError as exc:
        indexes, release = [], None
        problems.append(FeedProblem(str(snapshot.directory), str(exc)))
    if release is None and not problems:
        wanted = ", ".join(keys) or "unknown (no os-release)"
        have = ", ".join(sorted({f.release for f in snapshot.feeds})) or "none"
        problems.append(FeedProblem(str(snapshot.directory),
                                    f"no update feed for the image's release {wanted} "
                                    f"(the snapshot has {have})"))
    packages = getattr(getattr(facts, "packages", None), "packages", ())
    pending: list[PendingUpdate] = []
    for index in indexes:
        pending.extend(pending_updates(packages, index))
    pending.sort(key=lambda p: (p.package, p.arch or "", p.suite))
    used = tuple(i.feed.info for i in indexes)
    dates = [f.fetched_at for f in used] or [snapshot.created]
    oldest = min(dates)
    age = ((now or utc_now()) - parse_iso(oldest)).total_seconds() / 86400
    result = VulnerabilityFacts(
        release=release.split(":", 1)[1] if release else None,
        feeds=used,
        pending=tuple(pending),
        problems=tuple(problems),
        snapshot_date=oldest,
        snapshot_age_days=round(age, 2),
        sources=tuple(sorted({f"{i.feed.info.kind}:{i.feed.info.suite}" for i in indexes})),
    )
    for name in ADVISORY_MATCHERS:
        result = _run_matcher(name, facts, snapshot, result)
    return result


def _run_matcher(name: str, facts: Any, snapshot: Snapshot,
                 result: VulnerabilityFacts) -> VulnerabilityFacts:
    module_name, _, func_name = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return result
        raise
    func: Callable[[Any, Snapshot, VulnerabilityFacts], VulnerabilityFacts] = getattr(
        module, func_name)
    try:
        return func(facts, snapshot, result)
    except FeedError as exc:
        return dataclasses.replace(
            result, problems=(*result.problems, FeedProblem(name, str(exc))))
