"""The catalogue page's view of its images: each image's state (the listing rule's, from
``listing.py``), when its current version was last scanned, its VO's minimum level, and the
page's filters (VO, level, state, search) as shareable query parameters.

The reason an image is not listed is the standing's ``unlisted_reason``, the very text the API
gives; this module only adds what tells the states apart (never audited, certification
expired, could not be audited, below the VO's minimum).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, cast, func, select, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from integrations.appdb.catalogue import Catalogue, Standing
from integrations.appdb.db import Image, Report, Vo, in_chunks
from integrations.appdb.listing import INCOMPLETE, listing_state, meets, only_unevaluated


@dataclass(frozen=True, slots=True)
class PageRow:
    """One image on the page: its standing, its state and when it was last scanned."""

    st: Standing
    state: str
    last_scanned: datetime | None
    unevaluated: tuple[str, ...] = ()  # state incomplete: the rules the audit could not evaluate


@dataclass(frozen=True, slots=True)
class VoInfo:
    """A VO, its minimum level and how many images it has."""

    name: str
    minimum: str
    images: int


@dataclass(frozen=True, slots=True)
class Filters:
    """What the page shows: every field is a query parameter (empty: no filter)."""

    q: str = ""
    vo: str = ""
    level: str = ""
    state: str = ""
    offset: int = 0

    @property
    def narrowing(self) -> bool:
        """True when a filter the database cannot apply (level, state) is set."""
        return bool(self.level or self.state)

    def url(self, **change: Any) -> str:
        """The page's URL with these filters, ``change`` applied (empty fields left out)."""
        f = replace(self, **change)
        pairs = [(k, v) for k, v in (("q", f.q), ("vo", f.vo), ("level", f.level),
                                     ("state", f.state), ("offset", f.offset or "")) if v]
        return "/?" + urllib.parse.urlencode(pairs) if pairs else "/"


def vos(cat: Catalogue) -> list[VoInfo]:
    """Every VO by name, with its minimum level (the catalogue's default when it has none)."""
    q = (select(Vo.name, Vo.min_level, func.count(Image.id))
         .outerjoin(Image, Image.vo_id == Vo.id).group_by(Vo.id, Vo.name, Vo.min_level)
         .order_by(Vo.name))
    with cat.sessions() as s:
        return [VoInfo(r[0], r[1] or cat.default_min_level, int(r[2])) for r in s.execute(q)]


def level_names(cat: Catalogue) -> list[str]:
    """``none`` and the level names of the catalogue's levels definitions, lowest first."""
    out = ["none"]
    for levels in cat.levels.values():
        out += [n for n in levels.names() if n not in out]
    return out


def last_scans(cat: Catalogue, version_ids: Iterable[int]) -> dict[int, datetime]:
    """When each version's newest report was issued (versions never scanned are absent)."""
    ids = sorted(set(version_ids))
    out: dict[int, datetime] = {}
    with cat.sessions() as s:
        for chunk in in_chunks(ids):
            out.update((r[0], r[1]) for r in s.execute(
                select(Report.version_id, func.max(Report.issued))
                .where(Report.version_id.in_(chunk))
                .group_by(Report.version_id)))
    return out


def certification_levels(cat: Catalogue, report_ids: Iterable[str]) -> dict[str, Any]:
    """Each report's ``certification.levels`` (granted, blocking, unevaluated per level), read
    by the database out of the stored body rather than loading whole reports."""
    body: ColumnElement[Any]
    if cat.engine.dialect.name == "postgresql":
        body = cast(Report.body, JSON)
    else:  # SQLite's JSON functions read the text as it is
        body = type_coerce(Report.body, JSON)
    levels = body[("certification", "levels")]
    ids = sorted(set(report_ids))
    out: dict[str, Any] = {}
    with cat.sessions() as s:
        for chunk in in_chunks(ids):
            out.update((r[0], r[1]) for r in s.execute(
                select(Report.report_id, levels)
                .where(Report.report_id.in_(chunk))))
    return out


def page_rows(cat: Catalogue, standings: list[Standing]) -> list[PageRow]:
    """The page's rows for ``standings``: each one's state and last scan."""
    scans = last_scans(cat, [st.version.id for st in standings])
    # Only an image withdrawn for its report needs the report's levels to say why.
    cert = certification_levels(cat, [st.report_id for st in standings if st.report_id
                                      and not st.listed and st.suspension is None])
    out = []
    for st in standings:
        levels = cert.get(st.report_id) if st.report_id else None
        names = [lv.get("name") for lv in levels if isinstance(lv, dict)] \
            if isinstance(levels, list) else []
        unevaluated = only_unevaluated(levels, st.minimum)
        state = listing_state(
            listed=st.listed, suspended=st.suspension is not None,
            level=st.level if st.report_id else None, report_expired=st.report_expired,
            minimum_met=meets(st.level, [n for n in names if isinstance(n, str)], st.minimum),
            minimum_unevaluated=bool(unevaluated))
        out.append(PageRow(st, state, scans.get(st.version.id),
                           unevaluated if state == INCOMPLETE else ()))
    return out


def select_rows(rows: list[PageRow], f: Filters) -> list[PageRow]:
    """The rows that pass the level and state filters (a level is a report's: an image with
    no unexpired report has none, not even ``none``)."""
    return [r for r in rows
            if (not f.level or (r.st.report_id is not None and r.st.level == f.level))
            and (not f.state or r.state == f.state)]


def ago(when: datetime | None, now: datetime) -> str:
    """``when`` relative to ``now`` in words: "3 hours ago", "in 2 days", "just now"."""
    if when is None:
        return "never"
    seconds = int((now - when).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        return "just now"
    unit, size = next((u, n) for u, n in (("day", 86400), ("hour", 3600), ("minute", 60))
                      if seconds >= n)
    n = seconds // size
    words = f"{n} {unit}{'s' if n != 1 else ''}"
    return f"in {words}" if future else f"{words} ago"
