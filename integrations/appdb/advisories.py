"""An advisory named by a campaign (``CVE-2023-4911``, ``DSA-5514-1``), resolved through the OSV
records of a feed snapshot (``imageaudit feeds sync --osv``) into the packages it affects, per
ecosystem release, with their ranges and fixed versions.

A record answers to its own id and to its aliases and upstream ids, so a CVE finds the
distributions' records about it (Debian's ``DSA-…`` and ``DEBIAN-CVE-…``, Ubuntu's, Alpine's).
The records are streamed with the scanner's bounded reader (:mod:`imageaudit.vulns.osv_load`)
and only the matching ones are kept; a snapshot never changes once written, so what an id
resolved to is remembered per snapshot directory.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from imageaudit.vulns.osv import OSVAffected, OSVIndex, index_records
from imageaudit.vulns.osv_load import LoadStats, OSVLimits, OSVLoadError, iter_records
from imageaudit.vulns.sync import FeedError, open_snapshot
from integrations.appdb.principal import CatalogueError

OSV_FORMAT = "osv"
RESOLVED_CACHE = 64


@dataclass(frozen=True, slots=True)
class Advisory:
    """What an advisory id resolved to: the records' ids and the affected entries by
    ``(family, release, package)`` (the key of :class:`imageaudit.vulns.osv.OSVIndex`)."""

    asked: str
    snapshot: str
    records: tuple[str, ...]
    entries: dict[tuple[str, str, str], tuple[OSVAffected, ...]]

    def packages(self) -> frozenset[str]:
        """The advisory package names (source names for Debian, Ubuntu and Alpine)."""
        return frozenset(name for _, _, name in self.entries)


def _names(record: dict[str, object]) -> Iterator[str]:
    rec_id = record.get("id")
    if isinstance(rec_id, str):
        yield rec_id
    for key in ("aliases", "upstream"):
        values = record.get(key)
        if isinstance(values, list):
            yield from (v for v in values if isinstance(v, str))


@functools.lru_cache(maxsize=RESOLVED_CACHE)
def _resolve(snapshot_dir: Path, sources: tuple[Path, ...], ident: str) -> Advisory:
    index = OSVIndex(sources=tuple(str(s) for s in sources))
    stats = LoadStats()
    records: list[str] = []
    for raw in iter_records(sources, stats, OSVLimits()):
        if ident in _names(raw.data):
            records.append(str(raw.data["id"]))
            index_records((raw.data,), None, index, raw.where)
    if not records:
        raise CatalogueError(404, f"no OSV record names {ident} in the feed snapshot "
                                  f"{snapshot_dir}")
    entries = {key: tuple(found) for key, found in index.entries.items()}
    return Advisory(ident, str(snapshot_dir), tuple(sorted(set(records))), entries)


def resolve(feeds: Path, ident: str) -> Advisory:
    """The OSV records of the snapshot ``feeds`` (a cache directory: its latest snapshot, or a
    snapshot directory) that name ``ident``.

    CatalogueError 409 when there is no readable snapshot or it holds no OSV records, 404 when
    no record names ``ident``.
    """
    try:
        snapshot = open_snapshot(feeds)
        sources = tuple(snapshot.path(rel) for feed in snapshot.feeds
                        if feed.format == OSV_FORMAT for rel in feed.files)
    except FeedError as exc:
        raise CatalogueError(409, f"no usable feed snapshot: {exc}") from exc
    if not sources:
        raise CatalogueError(409, f"the feed snapshot {snapshot.directory} holds no OSV records "
                                  "(imageaudit feeds sync --osv DIR_OR_ZIP)")
    try:
        return _resolve(snapshot.directory.resolve(), sources, ident)
    except OSVLoadError as exc:
        raise CatalogueError(409, f"OSV records of {snapshot.directory}: {exc}") from exc
