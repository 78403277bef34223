"""Containment records: what cloud sites did to an image the catalogue withdrew, as their agents'
action logs say it (``imageaudit cloud contain`` and ``release`` write one record per step and
send the log with ``--publish``), so that the security team sees, per site and incident, what
was done to which object and whether it worked.

A record names its image by the catalogue's image id or by the SHA-512 of one of the image's
versions; a log is posted to one image and every record must name that image. Records are only
ever added: each is keyed by the SHA-256 of its normalised content, so a log sent again (after a
network failure, or whole after a resumed run) adds only the records the catalogue has not got,
and two records that differ in anything are both kept. Everything in a record is the agent's
word: it is checked for shape and size here, stored as said, and escaped wherever it is shown.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from imageaudit.store import canonical_json
from integrations.appdb.db import ContainmentRecord as Row
from integrations.appdb.db import Image, Version, utcnow
from integrations.appdb.principal import CatalogueError, Principal
from integrations.appdb.schemas import (
    IMAGE_ID_PATTERN,
    INCIDENT_PATTERN,
    NAME_PATTERN,
    Time,
    format_time,
    parse_time,
)

if TYPE_CHECKING:
    from integrations.appdb.catalogue import Catalogue

MAX_RECORDS = 5000  # per request; a longer log is sent in parts (the client does)
MAX_STATE_BYTES = 4096  # ``before`` and ``after``, each, as canonical JSON
MAX_STATE_DEPTH = 4
MAX_REASON = 4000
MAX_LISTED = 10000
INSERT_BATCH = 1000
SHA512 = re.compile(r"^[0-9a-f]{128}$")
# C0 and C1 controls, DEL, bidirectional marks, overrides and isolates, lone surrogates: none
# may hide or reorder what the security team reads of a site's log (nor reach PostgreSQL).
_CTRL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _no_control(value: str) -> str:
    found = _CTRL.search(value)
    if found is not None:
        raise ValueError(f"has a control or direction character (U+{ord(found.group()):04X}) "
                         f"at character {found.start()}")
    return value


def _state(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A small state dict: JSON of at most MAX_STATE_DEPTH levels and MAX_STATE_BYTES, with
    finite numbers and no control characters in its keys or strings. Walked iteratively."""
    if value is None:
        return None
    todo: list[tuple[Any, int, str]] = [(value, 1, "")]
    while todo:
        item, depth, where = todo.pop()
        if isinstance(item, dict | list) and depth > MAX_STATE_DEPTH:
            raise ValueError(f"nests deeper than {MAX_STATE_DEPTH} levels (at {where or 'top'})")
        if isinstance(item, dict):
            for key, sub in item.items():
                try:
                    _no_control(key)
                except ValueError as exc:
                    raise ValueError(f"a key at {where or 'top'} {exc}") from None
                todo.append((sub, depth + 1, f"{where}.{key[:40]}"))
        elif isinstance(item, list):
            todo.extend((sub, depth + 1, f"{where}[{n}]") for n, sub in enumerate(item))
        elif isinstance(item, str):
            try:
                _no_control(item)
            except ValueError as exc:
                raise ValueError(f"{where or 'value'} {exc}") from None
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{where or 'value'} is not a finite number")
        elif not isinstance(item, bool | int | float) and item is not None:
            raise ValueError(f"{where or 'value'} is not a JSON value")
    size = len(canonical_json(value).encode("utf-8"))
    if size > MAX_STATE_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {MAX_STATE_BYTES}")
    return value


def _real_time(value: str) -> str:
    parse_time(value)  # the pattern admits 2026-13-45T99:00:00Z
    return value


RealTime = Annotated[Time, AfterValidator(_real_time)]
State = Annotated[dict[str, Any] | None, AfterValidator(_state)]
ObjectId = Annotated[str, StringConstraints(min_length=1, max_length=255),
                     AfterValidator(_no_control)]
ObjectName = Annotated[str, StringConstraints(max_length=1024), AfterValidator(_no_control)]
Project = Annotated[str, StringConstraints(max_length=255), AfterValidator(_no_control)]
Reason = Annotated[str, StringConstraints(max_length=MAX_REASON), AfterValidator(_no_control)]
ObjectKind = Literal["image", "server", "snapshot", "volume", "instance"]
# skipped: not taken because the evidence step before it failed on the same object
Result = Literal["done", "already", "failed", "planned", "skipped"]
Incident = Annotated[str, StringConstraints(pattern=INCIDENT_PATTERN)]
Action = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
ImageRef = Annotated[str, StringConstraints(pattern=IMAGE_ID_PATTERN)]


class ContainedObject(BaseModel):
    """The cloud object a step acted on: a Glance image or AMI, a server or instance, a
    snapshot, a volume; its id, name and project (tenant, account) in that cloud."""

    model_config = ConfigDict(extra="forbid")
    kind: ObjectKind
    id: ObjectId
    name: ObjectName | None = None
    project: Project | None = None


class ContainmentRecordIn(BaseModel):
    """One step of a site agent's action log, as ``imageaudit cloud contain`` writes it."""

    model_config = ConfigDict(extra="forbid")
    time: RealTime
    cloud: Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
    incident: Incident
    image: ImageRef
    object: ContainedObject
    action: Action
    before: State = None
    after: State = None
    result: Result
    reason: Reason | None = None

    def key(self) -> str:
        """The content key: SHA-256 of the record normalised (every field, absent as null)."""
        doc = canonical_json(self.model_dump(mode="json"))
        return hashlib.sha256(doc.encode("utf-8")).hexdigest()

    def describe(self) -> str:
        """The record in a few words, to name it in a refusal."""
        return (f"{self.time} {self.cloud} {self.incident}: {self.action} "
                f"{self.object.kind} {self.object.id[:80]}")


class ContainmentLog(BaseModel):
    """The body of ``POST /images/{image_id}/containment``: records of one image."""

    model_config = ConfigDict(extra="forbid")
    records: list[ContainmentRecordIn] = Field(min_length=1, max_length=MAX_RECORDS)


class ContainmentStored(BaseModel):
    """What a post added: ``new`` records, and ``existing`` ones the catalogue already had
    (sent before, or twice in the post)."""

    image_id: str
    new: int
    existing: int


class ContainmentEntry(BaseModel):
    """A stored record: as the site sent it, with the SHA-512 it names (when it names one),
    who sent it (the token's holder) and when the catalogue received it."""

    time: str
    cloud: str
    incident: str
    image: str
    object: ContainedObject
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    result: str
    reason: str | None
    sha512: str | None
    sent_by: str
    received: str


def resolve_image(s: Session, ref: str) -> tuple[Image, str | None]:
    """The image ``ref`` names: an image id, else the SHA-512 of a registered version (the
    image of the newest version with it, as a report is bound); the SHA-512, when that was
    how. CatalogueError 404 for neither."""
    image = s.scalars(select(Image).where(Image.identifier == ref)).first()
    if image is not None:
        return image, None
    if SHA512.match(ref):
        image = s.scalars(select(Image).join(Version, Version.image_id == Image.id)
                          .where(Version.sha512 == ref).order_by(Version.id.desc())).first()
        if image is not None:
            return image, ref
    raise CatalogueError(404, f"no image {ref} (neither an image id nor the SHA-512 of a "
                              "registered image version)")


def add_records(cat: Catalogue, ref: str, records: Sequence[ContainmentRecordIn],
                who: Principal) -> ContainmentStored:
    """Store the records of the image ``ref`` names that the catalogue has not got; all or
    nothing. CatalogueError 422, nothing stored, when a record names another image."""
    with cat.session() as s:
        image, by_sha = resolve_image(s, ref)
        shas = set(s.scalars(select(Version.sha512).where(Version.image_id == image.id)))
        wrong = [(n, r) for n, r in enumerate(records)
                 if r.image != image.identifier and r.image not in shas]
        if wrong:
            n, r = wrong[0]
            more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
            raise CatalogueError(422, f"records[{n}] ({r.describe()}) names image {r.image}, "
                                      f"not image {image.identifier} nor the SHA-512 of one of "
                                      f"its versions{more}; no record was stored")
        now = utcnow()
        rows: dict[str, dict[str, Any]] = {}
        for r in records:
            key = r.key()
            if key not in rows:
                rows[key] = _row(r, key, image.id, by_sha, who, now)
        new = _insert_new(s, list(rows.values()))
        if new:
            cat.audit(s, who, "containment.add", "image", image.identifier, new=new,
                      existing=len(records) - new,
                      sites=sorted({r.cloud for r in records}),
                      incidents=sorted({r.incident for r in records}))
        return ContainmentStored(image_id=image.identifier, new=new,
                                 existing=len(records) - new)


def _row(r: ContainmentRecordIn, key: str, image_id: int, by_sha: str | None, who: Principal,
         now: datetime) -> dict[str, Any]:
    def state(value: dict[str, Any] | None) -> str | None:
        return None if value is None else canonical_json(value)

    return {"image_id": image_id, "content_key": key, "image_ref": r.image,
            "sha512": r.image if SHA512.match(r.image) else by_sha, "site": r.cloud,
            "incident": r.incident, "at": parse_time(r.time), "object_kind": r.object.kind,
            "object_id": r.object.id, "object_name": r.object.name,
            "object_project": r.object.project, "action": r.action, "result": r.result,
            "reason": r.reason, "state_before": state(r.before), "state_after": state(r.after),
            "sent_by": who.name[:255], "received": now}


def _insert_new(s: Session, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose content key the image has not got; how many were new. The
    database decides (ON CONFLICT DO NOTHING), so two posts of one log at once add it once."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        stmt = postgresql_insert(Row).on_conflict_do_nothing(
            index_elements=["image_id", "content_key"]).returning(Row.id)
    elif dialect == "sqlite":
        stmt = sqlite_insert(Row).on_conflict_do_nothing(
            index_elements=["image_id", "content_key"]).returning(Row.id)
    else:
        raise CatalogueError(500, f"containment records need SQLite or PostgreSQL, not {dialect}")
    new = 0
    for start in range(0, len(rows), INSERT_BATCH):
        new += len(s.execute(stmt, rows[start:start + INSERT_BATCH]).all())
    return new


def records(cat: Catalogue, ref: str, *, limit: int = MAX_LISTED,
            offset: int = 0) -> tuple[str, list[ContainmentEntry]]:
    """The image ``ref`` names (its id) and its records in time order (then as received)."""
    with cat.sessions() as s:
        image, _ = resolve_image(s, ref)
        rows = s.scalars(select(Row).where(Row.image_id == image.id)
                         .order_by(Row.at, Row.id).offset(offset).limit(limit)).all()
        return image.identifier, [_entry(row) for row in rows]


def _entry(row: Row) -> ContainmentEntry:
    def state(text: str | None) -> dict[str, Any] | None:
        return None if text is None else dict(json.loads(text))

    return ContainmentEntry(
        time=format_time(row.at), cloud=row.site, incident=row.incident, image=row.image_ref,
        object=ContainedObject.model_validate({
            "kind": row.object_kind, "id": row.object_id, "name": row.object_name,
            "project": row.object_project}),
        action=row.action, before=state(row.state_before), after=state(row.state_after),
        result=row.result, reason=row.reason, sha512=row.sha512, sent_by=row.sent_by,
        received=format_time(row.received))
