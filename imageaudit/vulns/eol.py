"""End of life of the image's release, from ``imageaudit/data/eol.yaml``.

The table lists, per distribution, the last day of free security support of each release and
the distribution page that says so. :func:`release_eol` finds the image's release in it by
os-release ``ID``/``VERSION_ID`` (and ``NAME`` where two products share an ID, as CentOS
Linux and CentOS Stream do); :func:`eol_status` says whether that day is past, near or far.

Specs: os-release(5); the distributions' life-cycle pages cited in the data file.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from imageaudit.facts.os import os_value

DEFAULT_TABLE = Path(__file__).resolve().parent.parent / "data" / "eol.yaml"
MAX_TABLE_BYTES = 1024 * 1024
_MAJOR = re.compile(r"^\d+")
_MAJOR_MINOR = re.compile(r"^\d+(?:\.\d+)?")


class EOLTableError(ValueError):
    """The end-of-life data file is malformed."""


@dataclass(frozen=True, slots=True)
class EOLRelease:
    """One release of one distribution and the end of its security support."""

    distribution: str
    version: str
    eol: dt.date
    source: str
    meaning: str
    codename: str | None = None
    note: str | None = None

    @property
    def label(self) -> str:
        """``Debian 12 (bookworm)``."""
        tail = f" ({self.codename})" if self.codename else ""
        return f"{self.distribution} {self.version}{tail}"


@dataclass(frozen=True, slots=True)
class EOLDistribution:
    name: str
    ids: tuple[str, ...]
    match: Literal["major", "major_minor", "full"]
    name_contains: str | None
    releases: tuple[EOLRelease, ...]


@dataclass(frozen=True, slots=True)
class EOLTable:
    distributions: tuple[EOLDistribution, ...]
    as_of: str
    path: str


@dataclass(frozen=True, slots=True)
class EOLStatus:
    """Where the image's release stands on ``today``: ``past``, ``near`` or ``supported``."""

    release: EOLRelease
    state: Literal["past", "near", "supported"]
    days_left: int


def _date(value: object, where: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise EOLTableError(f"{where}: `eol` is not a date (YYYY-MM-DD)")


def _distribution(raw: Any, index: int) -> EOLDistribution:
    where = f"distributions[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise EOLTableError(f"{where}: needs a `name`")
    ids, releases_raw = raw.get("ids"), raw.get("releases")
    if not isinstance(ids, list) or not ids or not isinstance(releases_raw, list):
        raise EOLTableError(f"{where}: needs `ids` and `releases` lists")
    match = raw.get("match", "major")
    if match not in ("major", "major_minor", "full"):
        raise EOLTableError(f"{where}: `match` is major, major_minor or full")
    releases = []
    for j, rel in enumerate(releases_raw):
        spot = f"{where}.releases[{j}]"
        if not isinstance(rel, dict) or not isinstance(rel.get("version"), str):
            raise EOLTableError(f"{spot}: needs a `version` string")
        source = rel.get("source", raw.get("source"))
        if not isinstance(source, str) or not source:
            raise EOLTableError(f"{spot}: needs a `source` (its own or the distribution's)")
        releases.append(
            EOLRelease(
                distribution=raw["name"],
                version=rel["version"],
                eol=_date(rel.get("eol"), spot),
                source=source,
                meaning=str(raw.get("meaning", "end of life")),
                codename=str(rel["codename"]) if rel.get("codename") else None,
                note=str(rel["note"]) if rel.get("note") else None,
            )
        )
    contains = raw.get("name_contains")
    return EOLDistribution(
        name=raw["name"],
        ids=tuple(str(i) for i in ids),
        match=match,
        name_contains=contains if isinstance(contains, str) else None,
        releases=tuple(releases),
    )


def load_eol_table(path: Path | None = None) -> EOLTable:
    """Read and validate the end-of-life table (the built-in one by default)."""
    return _load(path or DEFAULT_TABLE)


@cache
def _load(path: Path) -> EOLTable:
    with path.open("rb") as handle:
        raw_bytes = handle.read(MAX_TABLE_BYTES + 1)
    if len(raw_bytes) > MAX_TABLE_BYTES:
        raise EOLTableError(f"{path}: larger than {MAX_TABLE_BYTES} bytes")
    try:
        raw = yaml.safe_load(raw_bytes)
    except yaml.YAMLError as exc:
        raise EOLTableError(f"{path}: not YAML ({exc})") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("distributions"), list):
        raise EOLTableError(f"{path}: needs a `distributions` list")
    try:
        dists = tuple(_distribution(d, i) for i, d in enumerate(raw["distributions"]))
    except EOLTableError as exc:
        raise EOLTableError(f"{path}: {exc}") from exc
    return EOLTable(dists, str(raw.get("as_of", "unknown")), str(path))


def _version_key(version: str, match: str) -> str | None:
    if match == "full":
        return version
    found = (_MAJOR if match == "major" else _MAJOR_MINOR).match(version)
    return found.group(0) if found else None


def find_distribution(os_facts: Any, table: EOLTable) -> EOLDistribution | None:
    """The table's entry for the image's distribution (None when it has none)."""
    ident = (os_value(os_facts, "id") or "").lower()
    names = " ".join(filter(None, (os_value(os_facts, "name"), os_value(os_facts, "pretty_name"))))
    for dist in table.distributions:
        if ident not in dist.ids:
            continue
        if dist.name_contains and dist.name_contains.lower() not in names.lower():
            continue
        return dist
    return None


def release_eol(os_facts: Any, dist: EOLDistribution) -> EOLRelease | None:
    """The image's release in ``dist``, None when the table does not list it."""
    version = os_value(os_facts, "version_id")
    key = _version_key(version, dist.match) if version else None
    return next((r for r in dist.releases if r.version == key), None)


def eol_status(release: EOLRelease, today: dt.date, warn_days: int = 90) -> EOLStatus:
    """Whether ``release`` is past its end (on ``today``), within ``warn_days`` of it, or not."""
    days_left = (release.eol - today).days
    if days_left < 0:
        return EOLStatus(release, "past", days_left)
    if days_left <= warn_days:
        return EOLStatus(release, "near", days_left)
    return EOLStatus(release, "supported", days_left)
