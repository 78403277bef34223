"""Storing a published report, after checking everything the publisher claims (``verify.py``)
and the auditor's signature (``auditors.py``); its image's inventory goes beside it
(``inventory.py``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from imageaudit.store import canonical_json
from integrations.appdb import auditors
from integrations.appdb.db import Image, Report, Version, utcnow
from integrations.appdb.inventory import InventoryInvalid, parse_inventory, store_inventory
from integrations.appdb.principal import CatalogueError, Principal
from integrations.appdb.schemas import PublishRequest, PublishResult, parse_time
from integrations.appdb.verify import ReportInvalid, check_binding, check_id, check_level

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy.orm import Session

    from imageaudit.certify import Levels


class Listed(Protocol):
    @property
    def listed(self) -> bool: ...


class ReportStore(Protocol):
    """What storing a report needs of the catalogue (:class:`~.catalogue.Catalogue` has it)."""

    levels: dict[str, Levels]

    def sessions(self) -> Session: ...
    def session(self) -> AbstractContextManager[Session]: ...
    def audit(self, s: Session, who: Principal, action: str, otype: str, oid: str,
              **detail: Any) -> None: ...
    def _existing_report(self, report_id: str) -> PublishResult | None: ...
    def standing(self, identifier: str) -> Listed: ...


def add_report(cat: ReportStore, req: PublishRequest, who: Principal,
               image_identifier: str | None = None,
               raw: dict[str, Any] | None = None) -> tuple[PublishResult, bool]:
    """Verify and store a report; returns (result, created). Idempotent by ``report_id``.

    ``raw`` is the report as the publisher sent it (parsed JSON): its canonical form is
    what is hashed and signed, so the checks run on it, never on a re-serialization.
    Refused (422, with the reason) unless the id is the report's SHA-256, the signature is
    a registered auditor key's, every SHA-512 agrees and the level follows from the
    findings. Since the id is recomputed, an id names one body: a forged body cannot take
    a genuine report's id. A malformed ``inventory`` refuses the report too; a well-formed
    one is stored with it unless its content has one already.
    """
    report = raw if raw is not None else req.report.model_dump(by_alias=True,
                                                                exclude_unset=True)
    sig = req.signature.model_dump() if req.signature is not None else None
    try:
        rid = check_id(report, req.report_id)
        signer, signer_key = auditors.verify_signer(cat.sessions, report, sig,
                                                    who.name, who.role)
        check_binding(report, None)
        check_level(report, cat.levels)
        inventory = parse_inventory(report.get("inventory"))
    except (ReportInvalid, InventoryInvalid) as exc:
        raise CatalogueError(422, f"report refused: {exc}") from exc
    except auditors.KeyRefused as exc:
        raise CatalogueError(exc.status, exc.message) from exc
    cert = req.report.certification
    existing = cat._existing_report(rid)
    if existing is not None:
        return existing, False
    try:
        with cat.session() as s:
            q = (select(Version, Image).join(Image, Image.id == Version.image_id)
                 .where(Version.sha512 == cert.image_sha512).order_by(Version.id.desc()))
            if image_identifier is not None:
                image = s.scalars(select(Image).where(
                    Image.identifier == image_identifier)).first()
                if image is None:
                    raise CatalogueError(404, f"no image {image_identifier}")
                q = q.where(Version.image_id == image.id)
            row = s.execute(q).first()
            if row is None:
                if image_identifier is not None:
                    raise CatalogueError(
                        409, f"report is for SHA-512 {cert.image_sha512[:16]}..., "
                             f"not a version of image {image_identifier}")
                raise CatalogueError(404, f"no registered image has SHA-512 "
                                          f"{cert.image_sha512[:16]}...")
            version, image = row
            try:
                check_binding(report, version.size)
            except ReportInvalid as exc:
                raise CatalogueError(422, f"report refused: {exc}") from exc
            if version.size is None and cert.image_size is not None:
                # The endorser's list gave no size; the signed report, bound to the SHA-512,
                # measured it. Sites' sync tools (atrope) refuse a list with an image of no size.
                version.size = cert.image_size
            s.add(Report(report_id=rid, version_id=version.id, level=cert.level,
                         levels=json.dumps([lv.name for lv in cert.levels]),
                         ruleset_version=cert.ruleset_version,
                         levels_version=cert.levels_version,
                         tool_version=cert.tool_version, issued=parse_time(cert.issued),
                         expires=parse_time(cert.expires), source=who.name[:255],
                         received=utcnow(), body=canonical_json(report), signer=signer,
                         signer_key=signer_key, signature=json.dumps(sig, sort_keys=True)))
            stored = inventory is not None and store_inventory(s, version.id, version.sha512,
                                                               rid, inventory)
            cat.audit(s, who, "report.add", "image", image.identifier, report_id=rid,
                       level=cert.level, sha512=cert.image_sha512, signer=signer,
                       key_id=signer_key, inventory_stored=stored)
    except IntegrityError:
        again = cat._existing_report(rid)  # a concurrent twin won the race
        if again is None:
            raise
        return again, False
    st = cat.standing(image.identifier)
    return PublishResult(report_id=rid, image_id=image.identifier, level=cert.level,
                         listed=st.listed, signer=signer), True
