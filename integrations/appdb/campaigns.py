"""Campaigns: which registered image versions hold a vulnerable package or a known-bad file, or
were endorsed by someone, and who to tell: for the federation's security team.

A query is a :class:`~integrations.appdb.schemas.CampaignQuery`; every filter it gives must hold.
The database does the narrowing, through its indexes: packages by binary or source name, files
by hash or file name, always ``IN (...)`` lists of at most :data:`CHUNK` values (under SQLite's
oldest limit on bound parameters). Python then judges only the rows found: a package's version
against a range or an advisory's ranges in the order of its own manager (dpkg, rpm, apk), each
distinct version once. An inventory belongs to an image's content, so what is found in one is
found in every version with the same SHA-512, whichever image registered it.

Every registered version is searched, not only the current ones (sites may still run the old
ones); each hit says whether its version is current and listed, its level, its VO and its
endorser (DN, name, e-mail), and the cloud sites that reported holding its file with how many
instances run from it there (:mod:`integrations.appdb.sites`). A saved campaign keeps its
query; each run remembers the versions it found, so that the next one shows which are newly
affected.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import insert, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from imageaudit.ioc import Indicators, IocError, load_indicators
from imageaudit.vulns.osv import OSVAffected, affected_by
from imageaudit.vulns.osv_ecosystems import EcosystemKey, ecosystem_key
from imageaudit.vulns.versions import comparer
from integrations.appdb import advisories
from integrations.appdb.catalogue import Catalogue, listed_now
from integrations.appdb.db import (
    IN_CHUNK,
    Appliance,
    Campaign,
    CampaignRun,
    CampaignRunVersion,
    Endorser,
    Image,
    InventoryFile,
    InventoryPackage,
    Report,
    Suspension,
    Version,
    Vo,
    in_chunks,
    utcnow,
)
from integrations.appdb.principal import CatalogueError, Principal
from integrations.appdb.schemas import (
    MAX_PROVENANCE,
    CampaignInfo,
    CampaignQuery,
    CampaignRunInfo,
    IndicatorSet,
    error_sentence,
    format_time,
)
from integrations.appdb.sites import SiteHolding, holdings_for
from integrations.appdb.versionrange import Constraint, fix_of, parse_range, within

CHUNK = IN_CHUNK
MANAGERS = ("dpkg", "rpm", "apk")
T = TypeVar("T")
Item = dict[str, Any]
Matched = dict[int, list[Item]]  # version id -> what matched in it


@dataclass(frozen=True, slots=True)
class Hit:
    """One affected image version (``vos``: the VO of its image, as a list)."""

    version_id: int
    image_id: str
    version: str
    title: str
    sha512: str
    vos: tuple[str, ...]
    endorser_dn: str | None
    endorser_name: str | None
    endorser_email: str | None
    level: str
    listed: bool
    current: bool
    suspended: bool
    matched: tuple[Item, ...]
    fix: str | None
    sites: tuple[SiteHolding, ...] = ()  # the sites holding its file, by name

    def to_json(self) -> dict[str, Any]:
        """The hit as the API and ``--format json`` give it (schemas.CampaignHit)."""
        return {"image_id": self.image_id, "version": self.version, "title": self.title,
                "sha512": self.sha512, "vos": list(self.vos), "endorser_dn": self.endorser_dn,
                "endorser_name": self.endorser_name, "endorser_email": self.endorser_email,
                "level": self.level, "listed": self.listed, "current": self.current,
                "suspended": self.suspended, "matched": [dict(m) for m in self.matched],
                "fix": self.fix,
                "sites": [{"site": h.site, "copies": h.copies, "instances": h.instances,
                           "reported": format_time(h.reported)} for h in self.sites]}


@dataclass(frozen=True, slots=True)
class CampaignResult:
    """The hits of a query, what could not be judged, and the advisory records it used."""

    query: CampaignQuery
    hits: tuple[Hit, ...]
    unjudged: int = 0
    warnings: tuple[str, ...] = ()
    advisories: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclass(slots=True)
class _Tally:
    """Rows found that could not be judged, by reason, and other notes for the answer."""

    reasons: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.reasons[reason] += 1

    def note(self, text: str) -> None:
        self.notes.append(text)

    def warnings(self) -> tuple[str, ...]:
        return (*(f"{n} package(s) not judged: {why}" for why, n in sorted(self.reasons.items())),
                *self.notes)


# --- narrowing: the database finds the rows ----------------------------------------------------

def _package_rows(s: Session, names: Collection[str]) -> Iterator[Row[Any]]:
    """Inventory packages whose binary or source name is one of ``names``."""
    pt = InventoryPackage.__table__
    cols = (pt.c.version_id, pt.c.name, pt.c.version, pt.c.arch, pt.c.source_name,
            pt.c.source_version, pt.c.manager, pt.c.ecosystem)
    for chunk in in_chunks(sorted(names), CHUNK // 2):
        yield from s.execute(select(*cols).where(or_(pt.c.name.in_(chunk),
                                                     pt.c.source_name.in_(chunk))))


def _package_item(row: Row[Any], via: str, **extra: Any) -> Item:
    item: Item = {"kind": "package", "name": row.name, "version": row.version,
                  "manager": row.manager, "via": via}
    for key in ("source_name", "source_version", "ecosystem", "arch"):
        value = getattr(row, key)
        if value is not None:
            item[key] = value
    item.update((k, v) for k, v in extra.items() if v is not None)
    return item


def package_matches(s: Session, name: str, constraints: tuple[Constraint, ...],
                    tally: _Tally | None = None) -> Matched:
    """Inventories holding ``name`` (binary or source) at a version within ``constraints``
    (any version when empty). A binary is judged by its version, a package found by its
    source name by the source version."""
    tally = tally if tally is not None else _Tally()
    fix = fix_of(constraints)
    judged: dict[tuple[str, str], bool | None] = {}
    out: Matched = {}
    for row in _package_rows(s, (name,)):
        if row.name == name:
            version, via = row.version, "binary"
        else:
            version, via = row.source_version or row.version, "source"
        if constraints:
            key = (row.manager, version)
            if key not in judged:
                try:
                    judged[key] = within(row.manager, version, constraints)
                except ValueError:
                    judged[key] = None
            verdict = judged[key]
            if verdict is None:
                tally.skip(_uncomparable(row.manager, version))
                continue
            if not verdict:
                continue
        out.setdefault(row.version_id, []).append(_package_item(row, via, fixed=fix))
    return out


def _uncomparable(manager: str, version: str) -> str:
    if manager not in MANAGERS:
        return f"{manager} packages have no version order here ({', '.join(MANAGERS)} have)"
    return f"{manager} version {version[:80]!r} cannot be compared"


def _lookups(row: Row[Any]) -> tuple[tuple[str, str], ...]:
    """(advisory package name, version to compare) for an inventory package, as the scanner
    matches OSV (``imageaudit.vulns.osv``): Debian, Ubuntu and Alpine file advisories under the
    source package (and dpkg compares the source version), rpm under the binary, then the
    source name."""
    if row.manager == "dpkg":
        return ((row.source_name or row.name, row.source_version or row.version),)
    if row.manager == "apk":
        return ((row.source_name or row.name, row.version),)
    names = [(row.name, row.version)]
    if row.source_name and row.source_name != row.name:
        names.append((row.source_name, row.version))
    return tuple(names)


def advisory_matches(s: Session, advisory: advisories.Advisory,
                     tally: _Tally | None = None) -> Matched:
    """Inventories holding a package the advisory covers, in the same ecosystem release, at a
    version its ranges (or enumerated versions) cover; each item carries the fixed version."""
    tally = tally if tally is not None else _Tally()
    keys: dict[str, EcosystemKey | None] = {}
    judged: dict[tuple[int, str, str], tuple[bool, str | None] | None] = {}
    cmps: dict[str, Callable[[str, str], int]] = {}
    out: Matched = {}
    for row in _package_rows(s, advisory.packages()):
        eco = row.ecosystem
        if eco not in keys:
            keys[eco] = ecosystem_key(eco) if eco else None
        key = keys[eco]
        if key is None:
            tally.skip(f"ecosystem {eco!r} is not one OSV matches" if eco
                       else "the inventory names no ecosystem")
            continue
        cmp = cmps.setdefault(row.manager, comparer(row.manager))
        for pname, version in _lookups(row):
            entries: tuple[OSVAffected, ...] = advisory.entries.get((key[0], key[1], pname), ())
            for entry in entries:
                jkey = (id(entry), row.manager, version)
                if jkey not in judged:
                    try:
                        judged[jkey] = affected_by(version, entry, cmp)
                    except ValueError:
                        judged[jkey] = None
                verdict = judged[jkey]
                if verdict is None:
                    tally.skip(_uncomparable(row.manager, version))
                    continue
                if verdict[0]:
                    via = "binary" if pname == row.name else "source"
                    out.setdefault(row.version_id, []).append(
                        _package_item(row, via, advisory=entry.id, fixed=verdict[1]))
    return out


def indicators_of(ioc: IndicatorSet) -> Indicators:
    """The :class:`imageaudit.ioc.Indicators` of a query's set, to judge files as ``scan --ioc``
    does."""
    return Indicators(source="campaign", sha256=frozenset(ioc.sha256),
                      sha1=frozenset(ioc.sha1), md5=frozenset(ioc.md5),
                      names=frozenset(ioc.names), paths=frozenset(ioc.paths),
                      provenance={k: tuple(v) for k, v in ioc.provenance.items()},
                      paired={k: tuple(v) for k, v in ioc.paired.items()})


def _last_component(path: str) -> str:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return parts[-1] if parts else ""


def indicator_matches(s: Session, ioc: IndicatorSet, tally: _Tally | None = None) -> Matched:
    """Inventories holding a file that matches an indicator: one of the hashes, a file name in
    any directory, a path (a relative one at the end of the file's path). The database finds
    the files by hash and by file name; each found file is then judged by
    :meth:`imageaudit.ioc.Indicators.matches`, as ``scan --ioc`` judges files. A name or path
    the source gave only with hashes does not count on its own (``sshd|<hash>`` names every
    sshd): it is shown only beside one of the hashes it came with."""
    tally = tally if tally is not None else _Tally()
    indicators = indicators_of(ioc)
    ft = InventoryFile.__table__
    cols = (ft.c.id, ft.c.version_id, ft.c.path, ft.c.sha256, ft.c.sha1, ft.c.md5)
    rows: dict[int, Any] = {}
    for column, values in ((ft.c.sha256, ioc.sha256), (ft.c.sha1, ioc.sha1),
                           (ft.c.md5, ioc.md5)):
        for chunk in in_chunks(sorted(set(values))):
            rows.update((r.id, r) for r in s.execute(select(*cols).where(column.in_(chunk))))
    # Paths are not indexed (they may be 4,096 characters): their last component narrows.
    alone = {v for v in (*ioc.names, *ioc.paths) if v not in ioc.paired}
    bases = sorted({_last_component(v) for v in alone} - {""})
    for chunk in in_chunks(bases):
        rows.update((r.id, r) for r in s.execute(select(*cols).where(ft.c.basename.in_(chunk))))
    weak = len({*ioc.names, *ioc.paths} - alone)
    if weak:
        tally.note(f"{weak} file name(s) or path(s) came only with hashes: they count only "
                   "beside one of those hashes")
    out: Matched = {}
    for row in sorted(rows.values(), key=lambda r: r.id):
        found = indicators.matches(sha256=row.sha256, sha1=row.sha1, md5=row.md5, path=row.path)
        hashes = {f"{m.kind}:{m.value}" for m in found if m.kind in ("sha256", "sha1", "md5")}
        for m in found:
            if m.paired_with and not hashes.intersection(m.paired_with):
                continue
            item: Item = {"kind": "file", "path": row.path, "by": m.kind, "indicator": m.value}
            if m.provenance:
                item["provenance"] = list(m.provenance)
            if m.paired_with:
                item["paired_with"] = list(m.paired_with)
            out.setdefault(row.version_id, []).append(item)
    return out


def endorser_matches(s: Session, dn: str) -> Matched:
    """Every version of every image the endorser ``dn`` endorsed, in every VO."""
    q = (select(Version.id).join(Image, Image.id == Version.image_id)
         .join(Appliance, Appliance.id == Image.appliance_id)
         .join(Endorser, Endorser.id == Appliance.endorser_id).where(Endorser.dn == dn))
    return {vid: [{"kind": "endorser", "dn": dn}] for vid in s.scalars(q)}


def same_content(s: Session, matched: Matched) -> Matched:
    """``matched`` (by the versions holding the inventories) carried to every version with
    the same SHA-512."""
    other = aliased(Version, name="same")
    out: Matched = {}
    for chunk in in_chunks(sorted(matched)):
        q = select(other.id, Version.id).join(other, other.sha512 == Version.sha512).where(
            Version.id.in_(chunk))
        for vid, holder in s.execute(q):
            out.setdefault(vid, []).extend(matched[holder])
    return out


# --- the answer: who, where, listed ------------------------------------------------------------

def describe(cat: Catalogue, s: Session, matched: Matched) -> list[Hit]:
    """One hit per version of ``matched``: image, VO, endorser, level, listed, what matched,
    and the sites holding its file."""
    now = utcnow()
    ids = sorted(matched)
    rows: list[Any] = []
    reports: dict[int, Any] = {}
    suspended: set[int] = set()
    for chunk in in_chunks(ids):
        found = s.execute(
            select(Version.id, Version.version, Version.title, Version.sha512, Version.expires,
                   Image.id.label("image_pk"), Image.identifier, Image.current_version_id,
                   Vo.name.label("vo"), Vo.min_level, Endorser.dn,
                   Endorser.name.label("endorser_name"), Endorser.email)
            .join(Image, Image.id == Version.image_id).join(Vo, Vo.id == Image.vo_id)
            .outerjoin(Appliance, Appliance.id == Image.appliance_id)
            .outerjoin(Endorser, Endorser.id == Appliance.endorser_id)
            .where(Version.id.in_(chunk))).all()
        rows += found
        for r in s.execute(select(Report.version_id, Report.level, Report.levels)
                           .where(Report.version_id.in_(chunk), Report.expires > now)
                           .order_by(Report.version_id, Report.issued.desc(),
                                     Report.id.desc())):
            reports.setdefault(r.version_id, r)
        images = sorted({r.image_pk for r in found})
        suspended.update(s.scalars(select(Suspension.image_id).where(
            Suspension.image_id.in_(images), Suspension.lifted_at.is_(None))))
    held = holdings_for(s, {r.sha512 for r in rows})
    levels_cache: dict[str, list[str]] = {}
    hits = []
    for row in sorted(rows, key=lambda r: (r.identifier, r.id)):
        report = reports.get(row.id)
        level = report.level if report is not None else "none"
        names = (levels_cache.setdefault(report.levels, json.loads(report.levels))
                 if report is not None else [])
        current = row.id == row.current_version_id
        is_suspended = row.image_pk in suspended
        listed = current and listed_now(
            suspended=is_suspended, level=report.level if report is not None else None,
            levels=names, expires=row.expires,
            minimum=row.min_level or cat.default_min_level, now=now)
        items = _unique(matched[row.id])
        fixes = sorted({str(m["fixed"]) for m in items if m.get("fixed")})
        hits.append(Hit(
            version_id=row.id, image_id=row.identifier, version=row.version, title=row.title,
            sha512=row.sha512, vos=(row.vo,), endorser_dn=row.dn,
            endorser_name=row.endorser_name, endorser_email=row.email, level=level,
            listed=listed, current=current, suspended=is_suspended, matched=tuple(items),
            fix=", ".join(fixes) or None, sites=tuple(held.get(row.sha512, ()))))
    return hits


def _unique(items: list[Item]) -> list[Item]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = json.dumps(item, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


# --- queries -----------------------------------------------------------------------------------

def run_query(cat: Catalogue, query: CampaignQuery, *, feeds: Path | None = None) -> CampaignResult:
    """The image versions ``query`` finds (every filter given must hold).

    ``feeds`` is the feed snapshot that resolves ``cve`` and ``osv_id`` (CatalogueError 409
    without one, 404 when no OSV record names the id).
    """
    started = time.perf_counter()
    resolved: list[advisories.Advisory] = []
    for ident in (query.cve, query.osv_id):
        if ident is None:
            continue
        if feeds is None:
            raise CatalogueError(409, f"{ident}: advisories are resolved through a feed "
                                      "snapshot, and none was given (--feeds DIR)")
        resolved.append(advisories.resolve(feeds, ident))
    tally = _Tally()
    with cat.sessions() as s:
        by_content: list[Matched] = []
        if query.package is not None:
            constraints = parse_range(query.affected) if query.affected else ()
            by_content.append(package_matches(s, query.package, constraints, tally))
        by_content += [advisory_matches(s, adv, tally) for adv in resolved]
        if query.ioc is not None:
            by_content.append(indicator_matches(s, query.ioc, tally))
        selections = [same_content(s, m) for m in by_content]
        if query.endorser_dn is not None:
            endorsed = endorser_matches(s, query.endorser_dn)
            selections.append(endorsed if not selections
                              else {vid: [] for vid in endorsed})
        keep = set.intersection(*(set(m) for m in selections))
        matched = {vid: [item for m in selections for item in m[vid]] for vid in keep}
        hits = describe(cat, s, matched)
    return CampaignResult(query=query, hits=tuple(hits), unjudged=sum(tally.reasons.values()),
                          warnings=tally.warnings(),
                          advisories=tuple(r for adv in resolved for r in adv.records),
                          seconds=time.perf_counter() - started)


def query_package(cat: Catalogue, name: str, affected: str | None = None) -> CampaignResult:
    """Versions holding package ``name`` (binary or source), within ``affected`` if given."""
    return run_query(cat, CampaignQuery(package=name, affected=affected))


def query_advisory(cat: Catalogue, feeds: Path, *, cve: str | None = None,
                   osv_id: str | None = None) -> CampaignResult:
    """Versions affected by an advisory, resolved through the OSV records of ``feeds``."""
    return run_query(cat, CampaignQuery(cve=cve, osv_id=osv_id), feeds=feeds)


def query_indicators(cat: Catalogue, *, sha256: Collection[str] = (),
                     sha1: Collection[str] = (), md5: Collection[str] = (),
                     names: Collection[str] = (), paths: Collection[str] = (),
                     provenance: Mapping[str, Sequence[str]] | None = None,
                     paired: Mapping[str, Sequence[str]] | None = None) -> CampaignResult:
    """Versions holding a file with one of the hashes, names or paths (plain sets, as
    :class:`imageaudit.ioc.Indicators` holds them; :func:`indicator_set` converts one)."""
    ioc = IndicatorSet(sha256=sorted(sha256), sha1=sorted(sha1), md5=sorted(md5),
                       names=sorted(names), paths=sorted(paths),
                       provenance={k: list(v) for k, v in (provenance or {}).items()},
                       paired={k: list(v) for k, v in (paired or {}).items()})
    return run_query(cat, CampaignQuery(ioc=ioc))


def query_endorser(cat: Catalogue, dn: str) -> CampaignResult:
    """Every version the endorser ``dn`` endorsed, in every VO."""
    return run_query(cat, CampaignQuery(endorser_dn=dn))


def indicator_set(indicators: Indicators, rename: tuple[str, str] | None = None
                  ) -> IndicatorSet:
    """The query form of what :func:`imageaudit.ioc.load_indicators` read (ValueError, a
    pydantic ValidationError, when it breaks the query's bounds). ``rename`` replaces a file
    name in the provenance (``file:line``) by another (an upload's temporary file)."""
    wanted = indicators.sha256 | indicators.sha1 | indicators.md5 | indicators.names | \
        indicators.paths

    def origin(text: str) -> str:
        return text.replace(rename[0], rename[1]) if rename else text

    return IndicatorSet(
        sha256=sorted(indicators.sha256), sha1=sorted(indicators.sha1),
        md5=sorted(indicators.md5), names=sorted(indicators.names),
        paths=sorted(indicators.paths),
        provenance={k: [origin(x) for x in v][:MAX_PROVENANCE]
                    for k, v in indicators.provenance.items() if k in wanted},
        paired={k: list(v)[:MAX_PROVENANCE] for k, v in indicators.paired.items()
                if k in wanted})


def read_indicator_file(path: Path, *, only_to_ids: bool = False,
                        shown_as: str | None = None) -> tuple[IndicatorSet, tuple[str, ...]]:
    """The indicators of a file (MISP event or feed, CSV: :mod:`imageaudit.ioc`) and notes on
    what it skipped. CatalogueError 422, naming the file as ``shown_as`` (default: its path),
    when the file is refused or holds more than a query takes."""
    name = shown_as or str(path)
    try:
        loaded = load_indicators(path, only_to_ids=only_to_ids)
        ioc = indicator_set(loaded, (str(path), shown_as) if shown_as else None)
    except IocError as exc:
        raise CatalogueError(422, f"indicators refused: {name}: {exc.reason}") from exc
    except OSError as exc:
        raise CatalogueError(422, f"indicators refused: {name}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        raise CatalogueError(422, f"indicators refused: {name}: "
                                  f"{error_sentence(exc.errors())}") from exc
    notes = []
    if loaded.skipped_total:
        notes.append(f"{loaded.skipped_total} indicator value(s) not understood, first: "
                     + "; ".join(loaded.skipped[:3]).replace(str(path), name))
    return ioc, tuple(notes)


# --- saved campaigns ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A run of a saved campaign: its result and the hits the previous run did not have."""

    campaign: CampaignInfo
    result: CampaignResult
    new: tuple[Hit, ...]
    first: bool


def _campaign(s: Session, ref: str) -> Campaign:
    row = s.scalars(select(Campaign).where(Campaign.name == ref)).first()
    if row is None and ref.isdigit() and len(ref) < 10:
        row = s.get(Campaign, int(ref))
    if row is None:
        raise CatalogueError(404, f"no campaign {ref[:80]}")
    return row


def _info(s: Session, c: Campaign) -> CampaignInfo:
    runs = s.scalars(select(CampaignRun).where(CampaignRun.campaign_id == c.id)
                     .order_by(CampaignRun.id)).all()
    return CampaignInfo(name=c.name, query=json.loads(c.query), created=format_time(c.created),
                        created_by=c.created_by,
                        runs=[CampaignRunInfo(at=format_time(r.at), by=r.by, affected=r.affected,
                                              newly_affected=r.newly_affected) for r in runs])


def _record_run(cat: Catalogue, s: Session, c: Campaign, result: CampaignResult,
                who: Principal) -> RunOutcome:
    last = s.scalar(select(CampaignRun.id).where(CampaignRun.campaign_id == c.id)
                    .order_by(CampaignRun.id.desc()).limit(1))
    before = set(s.scalars(select(CampaignRunVersion.version_id)
                           .where(CampaignRunVersion.run_id == last))) if last else set()
    new = tuple(h for h in result.hits if h.version_id not in before)
    run = CampaignRun(campaign_id=c.id, at=utcnow(), by=who.name[:255],
                      affected=len(result.hits), newly_affected=len(new))
    s.add(run)
    s.flush()
    ids = sorted({h.version_id for h in result.hits})
    for chunk in in_chunks(ids, 5000):
        s.execute(insert(CampaignRunVersion), [{"run_id": run.id, "version_id": v}
                                               for v in chunk])
    cat.audit(s, who, "campaign.run", "campaign", c.name, affected=len(result.hits),
              newly_affected=len(new))
    return RunOutcome(campaign=_info(s, c), result=result, new=new, first=last is None)


def save_campaign(cat: Catalogue, name: str, query: CampaignQuery, who: Principal, *,
                  feeds: Path | None = None) -> RunOutcome:
    """Save ``query`` as campaign ``name`` and run it once (every hit is new); 409 when the
    name is taken. The query runs first, so that one that cannot run is not saved."""
    result = run_query(cat, query, feeds=feeds)
    try:
        with cat.session() as s:
            c = Campaign(name=name, query=query.model_dump_json(exclude_none=True),
                         created=utcnow(), created_by=who.name[:255])
            s.add(c)
            s.flush()
            cat.audit(s, who, "campaign.save", "campaign", name, query=query.describe())
            return _record_run(cat, s, c, result, who)
    except IntegrityError as exc:
        raise CatalogueError(409, f"campaign {name} exists already") from exc


def run_campaign(cat: Catalogue, ref: str, who: Principal, *,
                 feeds: Path | None = None) -> RunOutcome:
    """Run a saved campaign (by name or id) again; ``new`` are the versions its previous run
    did not find."""
    with cat.sessions() as s:
        query = CampaignQuery.model_validate_json(_campaign(s, ref).query)
    result = run_query(cat, query, feeds=feeds)
    with cat.session() as s:
        return _record_run(cat, s, _campaign(s, ref), result, who)


def campaigns(cat: Catalogue) -> list[CampaignInfo]:
    """Every saved campaign with its runs, oldest first."""
    with cat.sessions() as s:
        return [_info(s, c) for c in s.scalars(select(Campaign).order_by(Campaign.id))]


def campaign(cat: Catalogue, ref: str) -> CampaignInfo:
    """One saved campaign (by name or id) with its runs."""
    with cat.sessions() as s:
        return _info(s, _campaign(s, ref))
