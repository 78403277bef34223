"""The catalogue's operations: tokens, image-list import, reports, suspensions, listing.

Every change writes an audit-log row in the same transaction as the change itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from imageaudit.certify import Levels
from integrations.appdb import DEFAULT_MIN_LEVEL, auditors
from integrations.appdb.db import (
    Appliance,
    AuditEntry,
    Endorser,
    Image,
    Report,
    Suspension,
    Token,
    Version,
    Vo,
    in_chunks,
    make_sessionmaker,
    utcnow,
)
from integrations.appdb.imagelist import ImageList
from integrations.appdb.listing import REASONS_SEPARATOR, listed_now, meets, unlisted_reasons
from integrations.appdb.principal import CatalogueError, Principal
from integrations.appdb.reports import add_report
from integrations.appdb.schemas import (
    NAME_PATTERN,
    ROLES,
    AuditorKeyInfo,
    ImportResult,
    PublishRequest,
    PublishResult,
    VersionSummary,
)
from integrations.appdb.verify import (
    known_levels,
)

# The listing rule's functions (listing.py) are also found here, where callers first found them.
__all__ = ["Catalogue", "CatalogueError", "Principal", "listed_now", "meets"]

DEFAULT_VO = "default"
TOKEN_PREFIX = "iac_"  # imageaudit catalogue token


@dataclass(frozen=True, slots=True)
class VoRef:
    """A VO's name, as shown with an image."""

    name: str


@dataclass(frozen=True, slots=True)
class Endorsement:
    """Who endorsed an image: the endorser's image list (its ``dc:identifier`` and where it is
    published) and the endorser (DN, name and e-mail as that list gave them)."""

    appliance: str
    list_uri: str
    dn: str
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class VoList:
    """A VO as its image list names it: ``list_uuid`` is the list's stable ``dc:identifier``;
    ``endorsements`` says who endorsed each of the VO's images (by image identifier)."""

    name: str
    list_uuid: str
    endorsements: dict[str, Endorsement]


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image's identity (``identifier`` is the public image id)."""

    id: int
    identifier: str
    vo_id: int
    vo: VoRef


@dataclass(frozen=True, slots=True)
class Standing:
    """An image's current state as the listing rule sees it.

    ``version`` is a row of the versions table and ``suspension`` one of suspensions (columns
    as attributes).
    """

    image: ImageRef
    version: Any
    level: str
    report_id: str | None
    report_expires: datetime | None
    suspension: Any
    listed: bool
    signer: str | None = None
    unlisted_reason: str | None = None  # why it is not listed (None when it is)
    minimum: str = DEFAULT_MIN_LEVEL  # the VO's minimum level
    report_expired: datetime | None = None  # no unexpired report: when the last one expired


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256 (tokens are 256-bit random, no salt needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Catalogue:
    """The catalogue over one database."""

    def __init__(self, engine: Engine, *, default_min_level: str = DEFAULT_MIN_LEVEL,
                 levels: dict[str, Levels] | None = None) -> None:
        self.engine = engine
        self.sessions = make_sessionmaker(engine)
        self.default_min_level = default_min_level
        # The levels definitions a report may name (by digest); see verify.py for why the
        # catalogue holds them rather than trusting one carried by the report.
        self.levels = levels if levels is not None else known_levels()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success, rolled back on error."""
        with self.sessions() as s, s.begin():
            yield s

    @staticmethod
    def audit(s: Session, who: Principal, action: str, otype: str, oid: str, **detail: Any) -> None:
        """Record one change (same transaction as the change)."""
        s.add(AuditEntry(at=utcnow(), actor=f"{who.name} ({who.role})", action=action,
                         object_type=otype, object_id=oid[:255],
                         detail=json.dumps(detail, sort_keys=True, default=str)))

    # --- tokens -----------------------------------------------------------------------------

    def create_token(self, name: str, role: str, who: Principal) -> str:
        """A new random token for ``role``; only its hash is stored, so it is shown once.

        The token starts with :data:`TOKEN_PREFIX`: never with ``-`` (which a command line
        would take for an option: ``--token -x…``), and recognisable where it leaks.
        """
        if role not in ROLES:
            raise CatalogueError(422, f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.session() as s:
            s.add(Token(name=name, role=role, sha256=hash_token(token), created=utcnow(),
                        revoked=False))
            self.audit(s, who, "token.create", "token", name, role=role)
        return token

    def authenticate(self, token: str) -> Principal | None:
        """The principal of a presented token, or None."""
        with self.sessions() as s:
            row = s.scalars(select(Token).where(Token.sha256 == hash_token(token),
                                                Token.revoked.is_(False))).first()
            return None if row is None else Principal(row.name, row.role)

    # --- auditors' keys ---------------------------------------------------------------------

    def add_auditor_key(self, auditor: str, pem: bytes, who: Principal) -> str:
        """Register an Ed25519 public key for ``auditor``; its key id."""
        if not re.match(NAME_PATTERN, auditor):
            raise CatalogueError(422, f"auditor name {auditor[:80]!r} is not a name")
        try:
            with self.session() as s:
                row = auditors.register(s, auditor, pem)
                self.audit(s, who, "auditor.key.add", "auditor", auditor, key_id=row.key_id)
                return row.key_id
        except auditors.KeyRefused as exc:
            raise CatalogueError(exc.status, exc.message) from exc

    def revoke_auditor_key(self, kid: str, who: Principal) -> None:
        """Revoke a key: reports signed with it are refused from now on."""
        with self.session() as s:
            if not auditors.revoke(s, kid):
                raise CatalogueError(404, f"no key {kid}")
            self.audit(s, who, "auditor.key.revoke", "key", kid)

    def auditor_keys(self) -> list[AuditorKeyInfo]:
        """Every registered auditor key."""
        with self.sessions() as s:
            return auditors.listing(s)

    # --- VOs and image lists ----------------------------------------------------------------

    @staticmethod
    def _vo(s: Session, name: str) -> Vo:
        vo = s.scalars(select(Vo).where(Vo.name == name)).first()
        if vo is None:
            vo = Vo(name=name, min_level=None)
            s.add(vo)
            s.flush()
        return vo

    def set_vo(self, name: str, min_level: str | None, who: Principal) -> Vo:
        """Create a VO or change its minimum level (None: the catalogue default)."""
        with self.session() as s:
            vo = self._vo(s, name)
            vo.min_level = min_level
            self.audit(s, who, "vo.set", "vo", name, min_level=min_level)
            return vo

    def import_imagelist(self, il: ImageList, who: Principal, *,
                         vo: str | None = None) -> ImportResult:
        """Register or update the endorser, appliance, images and versions of a verified list.

        Images keep their ``dc:identifier``; a new SHA-512 becomes a new current version.
        """
        if vo is not None and not re.match(NAME_PATTERN, vo):
            raise CatalogueError(422, f"VO name {vo[:80]!r} is not a name")
        now = utcnow()
        with self.session() as s:
            endorser = s.scalars(select(Endorser).where(Endorser.dn == il.endorser_dn)).first()
            if endorser is None:
                endorser = Endorser(dn=il.endorser_dn, ca=il.endorser_ca, name="", email="")
                s.add(endorser)
            endorser.ca, endorser.name, endorser.email = (il.endorser_ca, il.endorser_name,
                                                          il.endorser_email)
            s.flush()
            app = s.scalars(select(Appliance).where(Appliance.identifier == il.identifier)).first()
            if app is None:
                app = Appliance(identifier=il.identifier)
                s.add(app)
            elif app.endorser_id not in (None, endorser.id):
                raise CatalogueError(409, f"image list {il.identifier} belongs to another endorser")
            app.title, app.endorser_id, app.source_uri = il.title, endorser.id, il.uri or il.source
            app.list_version, app.imported_at = il.version, now
            s.flush()
            for li in il.images:
                image = s.scalars(select(Image).where(Image.identifier == li.identifier)).first()
                vo_row = self._vo(s, li.vo or vo or DEFAULT_VO)
                if image is None:
                    image = Image(identifier=li.identifier, appliance_id=app.id, vo_id=vo_row.id)
                    s.add(image)
                    s.flush()
                elif image.appliance_id != app.id:
                    raise CatalogueError(
                        409, f"image {li.identifier} is endorsed in another image list")
                image.vo_id = vo_row.id
                ver = s.scalars(select(Version).where(Version.image_id == image.id,
                                                      Version.sha512 == li.sha512)).first()
                if ver is None:
                    ver = Version(image_id=image.id, sha512=li.sha512, created=now)
                    s.add(ver)
                fields = dict(version=li.version, title=li.title, description=li.description,
                              uri=li.uri, size=li.size, format=li.format, hypervisor=li.hypervisor,
                              arch=li.arch, os=li.os, osname=li.osname, osversion=li.osversion,
                              comments=li.comments, extra=json.dumps(dict(li.extra)),
                              expires=li.expires)
                for key, value in fields.items():
                    setattr(ver, key, value)
                s.flush()
                image.current_version_id = ver.id
            signer = il.signer.subject if il.signer else None
            self.audit(s, who, "imagelist.import", "appliance", il.identifier, signer=signer,
                       images=[li.identifier for li in il.images])
        return ImportResult(list_identifier=il.identifier, signed=il.signer is not None,
                            signer=signer, images=[li.identifier for li in il.images])

    # --- reports ----------------------------------------------------------------------------

    def add_report(self, req: PublishRequest, who: Principal,
                   image_identifier: str | None = None,
                   raw: dict[str, Any] | None = None) -> tuple[PublishResult, bool]:
        """Verify and store a report (``reports.add_report``); returns (result, created)."""
        return add_report(self, req, who, image_identifier, raw)

    def _existing_report(self, report_id: str) -> PublishResult | None:
        with self.sessions() as s:
            row = s.execute(select(Report.level, Image.identifier, Report.signer)
                            .join(Version, Version.id == Report.version_id)
                            .join(Image, Image.id == Version.image_id)
                            .where(Report.report_id == report_id)).first()
        if row is None:
            return None
        return PublishResult(report_id=report_id, image_id=row[1], level=row[0],
                             listed=self.standing(row[1]).listed, signer=row[2])

    def report_body(self, image_identifier: str) -> dict[str, Any] | None:
        """The full JSON of the report that gives the image its current level."""
        st = self.standing(image_identifier)
        if st.report_id is None:
            return None
        with self.sessions() as s:
            body = s.scalars(select(Report.body).where(Report.report_id == st.report_id)).one()
        loaded: dict[str, Any] = json.loads(body)
        return loaded

    # --- suspensions ------------------------------------------------------------------------

    def _image(self, s: Session, identifier: str) -> Image:
        image = s.scalars(select(Image).where(Image.identifier == identifier)).first()
        if image is None:
            raise CatalogueError(404, f"no image {identifier}")
        return image

    def suspend(self, identifier: str, reason: str, who: Principal) -> Suspension:
        """Suspend an image (all versions) with a reason; suspending again updates the reason."""
        with self.session() as s:
            image = self._image(s, identifier)
            sus = s.scalars(select(Suspension).where(Suspension.image_id == image.id,
                                                     Suspension.lifted_at.is_(None))).first()
            if sus is None:
                sus = Suspension(image_id=image.id, reason=reason, who=who.name, at=utcnow())
                s.add(sus)
            else:
                sus.reason = reason
            self.audit(s, who, "image.suspend", "image", identifier, reason=reason)
            return sus

    def unsuspend(self, identifier: str, who: Principal) -> bool:
        """Lift the image's suspension; False when it was not suspended."""
        with self.session() as s:
            image = self._image(s, identifier)
            active = s.scalars(select(Suspension).where(Suspension.image_id == image.id,
                                                        Suspension.lifted_at.is_(None))).all()
            for sus in active:
                sus.lifted_by, sus.lifted_at = who.name, utcnow()
            if active:
                self.audit(s, who, "image.unsuspend", "image", identifier)
            return bool(active)

    # --- the listing rule -------------------------------------------------------------------

    def standings(self, *, vo: str | None = None, identifier: str | None = None,
                  search: str | None = None, limit: int | None = None,
                  offset: int = 0) -> list[Standing]:
        """The current standing of images (current version, newest unexpired report), by
        image identifier: ``offset`` and ``limit`` page through them.

        Plain rows, not ORM objects: a VO list of thousands of images is rendered per request.
        """
        now = utcnow()
        vt, st_ = Version.__table__, Suspension.__table__
        with self.sessions() as s:
            q = (select(Image.identifier.label("image_identifier"),
                        Image.vo_id.label("image_vo_id"), Vo.name.label("vo_name"), vt)
                 .join(Version, Version.id == Image.current_version_id)
                 .join(Vo, Vo.id == Image.vo_id).order_by(Image.identifier))
            rq = (select(Report.version_id, Report.report_id, Report.level, Report.levels,
                         Report.expires, Report.signer)
                  .join(Image, Image.current_version_id == Report.version_id)
                  .join(Vo, Vo.id == Image.vo_id).where(Report.expires > now)
                  .order_by(Report.version_id, Report.issued.desc(), Report.id.desc()))
            sq = (select(st_).join(Image, Image.id == Suspension.image_id)
                  .join(Version, Version.id == Image.current_version_id)
                  .join(Vo, Vo.id == Image.vo_id).where(Suspension.lifted_at.is_(None)))
            conds = []
            if vo is not None:
                conds.append(Vo.name == vo)
            if identifier is not None:
                conds.append(Image.identifier == identifier)
            if search:
                pat = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace(
                    "_", "\\_") + "%"
                conds.append(or_(*(col.ilike(pat, escape="\\") for col in (
                    Image.identifier, Version.title, Vo.name, Version.sha512, Version.osname))))
            if conds:
                q, sq = q.where(and_(*conds)), sq.where(and_(*conds))
                rq = rq.join(Version, Version.id == Report.version_id).where(and_(*conds))
            if offset:
                q = q.offset(offset)
            if limit is not None:
                q = q.limit(limit)
            rows = s.execute(q).all()
            reports: dict[int, Any] = {}
            for r in s.execute(rq):
                reports.setdefault(r.version_id, r)
            lapsed = self._last_expiries(s, [row.id for row in rows if row.id not in reports])
            suspended = {x.image_id: x for x in s.execute(sq)}
            mins = {v.id: v.min_level or self.default_min_level for v in s.scalars(select(Vo))}
        out = []
        levels_cache: dict[str, list[str]] = {}
        for row in rows:
            r = reports.get(row.id)  # row.id is the version's id
            level = r.level if r is not None else "none"
            sus = suspended.get(row.image_id)
            names = levels_cache.setdefault(r.levels, json.loads(r.levels)) if r else []
            reasons = unlisted_reasons(
                suspended=sus is not None, level=r.level if r else None, levels=names,
                expires=row.expires, minimum=mins[row.image_vo_id], now=now,
                suspension_reason=sus.reason if sus is not None else None, vo=row.vo_name,
                report_expired=lapsed.get(row.id))
            image = ImageRef(row.image_id, row.image_identifier, row.image_vo_id,
                             VoRef(row.vo_name))
            out.append(Standing(image, row, level, r.report_id if r else None,
                                r.expires if r else None, sus, not reasons,
                                r.signer if r else None, REASONS_SEPARATOR.join(reasons) or None,
                                mins[row.image_vo_id], lapsed.get(row.id)))
        return out

    @staticmethod
    def _last_expiries(s: Session, version_ids: list[int]) -> dict[int, datetime]:
        """When the last report of each of ``version_ids`` (versions without an unexpired
        one) expired; versions that never had a report are absent."""
        out: dict[int, datetime] = {}
        for chunk in in_chunks(version_ids):
            out.update((r[0], r[1]) for r in s.execute(
                select(Report.version_id, func.max(Report.expires))
                .where(Report.version_id.in_(chunk)).group_by(Report.version_id)))
        return out

    def versions(self, *, vo: str | None = None, limit: int | None = None,
                 offset: int = 0) -> list[VersionSummary]:
        """Every registered version of the images (of ``vo``), not only the current ones.

        Ordered by image identifier, then registration, so that ``offset`` pages are stable
        while nothing is imported.
        """
        q = (select(Image.identifier, Vo.name, Version.version, Version.title, Version.uri,
                    Version.size, Version.sha512,
                    (Version.id == Image.current_version_id).label("current"))
             .join(Image, Image.id == Version.image_id).join(Vo, Vo.id == Image.vo_id)
             .order_by(Image.identifier, Version.created, Version.id).offset(offset))
        if vo is not None:
            q = q.where(Vo.name == vo)
        if limit is not None:
            q = q.limit(limit)
        with self.sessions() as s:
            return [VersionSummary(image_id=r[0], vo=r[1], version=r[2], title=r[3], uri=r[4],
                                   size=r[5], sha512=r[6], current=bool(r[7]))
                    for r in s.execute(q)]

    def standing(self, identifier: str) -> Standing:
        """One image's standing (404 when unknown)."""
        found = self.standings(identifier=identifier)
        if not found:
            raise CatalogueError(404, f"no image {identifier}")
        return found[0]

    def change_mark(self) -> int:
        """A number that grows with every change (the newest audit-log id): cache key part."""
        with self.sessions() as s:
            return int(s.scalar(select(func.max(AuditEntry.id))) or 0)

    def vo_list(self, name: str) -> VoList | None:
        """What the VO's image list says of the VO and of each image's endorser (None when the
        VO is unknown)."""
        with self.sessions() as s:
            vo = s.scalars(select(Vo).where(Vo.name == name)).first()
            if vo is None:
                return None
            rows = s.execute(
                select(Image.identifier, Appliance.identifier, Appliance.source_uri, Endorser.dn,
                       Endorser.name, Endorser.email)
                .join(Appliance, Appliance.id == Image.appliance_id)
                .outerjoin(Endorser, Endorser.id == Appliance.endorser_id)
                .where(Image.vo_id == vo.id)).all()
            return VoList(vo.name, vo.list_uuid, {
                r[0]: Endorsement(r[1], r[2], r[3] or "", r[4] or "", r[5] or "") for r in rows})
