"""Cloud sites' holdings: which image versions (by SHA-512) each site keeps copies of and how
many instances run from each, as the site's agent reports them; campaigns name the sites
holding an affected version from these.

A site's report is its current state: each report replaces the site's previous one whole, in
one transaction, so a version the site no longer holds drops out with the report that leaves
it out (and a site that reports holding nothing is no longer listed). Image versions the
catalogue does not know are kept as reported: a site may register them later.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from integrations.appdb.catalogue import Catalogue
from integrations.appdb.db import Image, Version, in_chunks, utcnow
from integrations.appdb.db import SiteHolding as SiteHoldingRow
from integrations.appdb.principal import CatalogueError, Principal
from integrations.appdb.schemas import Holding, SiteInfo, format_time

INSERT_BATCH = 5000


class SiteHolding(NamedTuple):
    """A site holding one image version: its copies and instances, and when it said so."""

    site: str
    copies: int
    instances: int
    reported: datetime


class VersionHeld(NamedTuple):
    """A site holding a version of an image: which version (and file), copies, instances."""

    site: str
    version: str
    sha512: str
    current: bool
    copies: int
    instances: int
    reported: datetime


def report_holdings(cat: Catalogue, site: str, holdings: Sequence[Holding],
                    who: Principal) -> SiteInfo:
    """Replace everything ``site`` reported before by ``holdings`` (validated by
    :class:`~integrations.appdb.schemas.HoldingsReport`), all or nothing; audited.
    CatalogueError 409, the previous report kept, when the rows conflict: another report of
    the same site stored at the same moment (send it again), or an image given twice."""
    now = utcnow()
    rows = [{"site": site, "sha512": h.sha512, "copies": h.copies, "instances": h.instances,
             "reported_at": now} for h in holdings]
    copies = sum(h.copies for h in holdings)
    instances = sum(h.instances for h in holdings)
    try:
        with cat.session() as s:
            s.execute(delete(SiteHoldingRow).where(SiteHoldingRow.site == site))
            for start in range(0, len(rows), INSERT_BATCH):
                s.execute(insert(SiteHoldingRow), rows[start:start + INSERT_BATCH])
            cat.audit(s, who, "site.report", "site", site, images=len(rows), copies=copies,
                      instances=instances)
    except IntegrityError as exc:
        raise CatalogueError(409, f"report of site {site} not stored: it names an image twice "
                                  "or another report of the site was stored at the same time"
                             ) from exc
    return SiteInfo(site=site, reported=format_time(now), images=len(rows), copies=copies,
                    instances=instances)


def sites(cat: Catalogue) -> list[SiteInfo]:
    """Every site holding something, by name: its last report's time and totals."""
    t = SiteHoldingRow.__table__
    with cat.sessions() as s:
        found = s.execute(select(t.c.site, func.max(t.c.reported_at).label("reported"),
                                 func.count().label("images"),
                                 func.sum(t.c.copies).label("copies"),
                                 func.sum(t.c.instances).label("instances"))
                          .group_by(t.c.site).order_by(t.c.site)).all()
    return [SiteInfo(site=r.site, reported=format_time(r.reported), images=r.images,
                     copies=int(r.copies), instances=int(r.instances)) for r in found]


def holdings_for(s: Session, sha512s: Collection[str]) -> dict[str, list[SiteHolding]]:
    """The sites holding each of ``sha512s`` (those no site holds are absent), by site name."""
    t = SiteHoldingRow.__table__
    wanted = sorted(set(sha512s))
    out: dict[str, list[SiteHolding]] = {}
    for chunk in in_chunks(wanted):
        for r in s.execute(select(t.c.sha512, t.c.site, t.c.copies, t.c.instances,
                                  t.c.reported_at).where(t.c.sha512.in_(chunk))
                           .order_by(t.c.sha512, t.c.site)):
            out.setdefault(r.sha512, []).append(
                SiteHolding(r.site, r.copies, r.instances, r.reported_at))
    return out


def image_holdings(cat: Catalogue, identifier: str) -> list[VersionHeld]:
    """The sites holding any version of the image ``identifier`` (old versions still run), by
    site, then version as registered; CatalogueError 404 for an unknown image."""
    with cat.sessions() as s:
        image = s.scalars(select(Image).where(Image.identifier == identifier)).first()
        if image is None:
            raise CatalogueError(404, f"no image {identifier}")
        versions = s.execute(select(Version.id, Version.version, Version.sha512)
                             .where(Version.image_id == image.id)
                             .order_by(Version.created, Version.id)).all()
        held = holdings_for(s, {v.sha512 for v in versions})
    out = [VersionHeld(h.site, v.version, v.sha512, v.id == image.current_version_id,
                       h.copies, h.instances, h.reported)
           for v in versions for h in held.get(v.sha512, ())]
    return sorted(out, key=lambda h: h.site)  # stable: versions stay in registration order
