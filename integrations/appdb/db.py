"""The catalogue's tables (SQLAlchemy 2 ORM) and engine set-up; the schema is owned by Alembic.

Follows the AppDB model (appliance -> versions -> images) reduced to what a HEPiX image list
carries: an *image* is one ``dc:identifier`` (stable across versions) and each *version* holds
one image file (URI, size, SHA-512, format, OS). Reports are bound to a version by its SHA-512.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

T = TypeVar("T")
# Values in one ``IN (...)``: under SQLite's oldest limit on bound parameters (999).
IN_CHUNK = 900


def in_chunks(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """``values`` in slices of at most ``size``, one ``IN (...)`` list each."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def utcnow() -> datetime:
    """Now, timezone-aware UTC, to the second (the precision of HEPiX and report times)."""
    return datetime.now(UTC).replace(microsecond=0)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored naive in UTC and always returned timezone-aware.

    SQLite has no time zones; keeping every value naive-UTC in the database and aware in Python
    makes comparisons identical on SQLite and PostgreSQL.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalogue database")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of every catalogue table."""


class Endorser(Base):
    __tablename__ = "endorsers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dn: Mapped[str] = mapped_column(String(1024), unique=True)
    ca: Mapped[str] = mapped_column(String(1024))
    name: Mapped[str] = mapped_column(String(512))
    email: Mapped[str] = mapped_column(String(512))


def new_list_uuid() -> str:
    """A fresh random identifier for a VO's image list."""
    return str(uuid.uuid4())


class Vo(Base):
    """A VO; ``list_uuid`` is its image list's ``dc:identifier``, made once when the VO is
    created so that the list keeps it across requests, restarts and a new public URL."""

    __tablename__ = "vos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    min_level: Mapped[str | None] = mapped_column(String(64), nullable=True)
    list_uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_list_uuid)


class Appliance(Base):
    """A virtual appliance: the image list an endorser publishes (its ``dc:identifier``)."""

    __tablename__ = "appliances"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(String(1024))
    endorser_id: Mapped[int | None] = mapped_column(ForeignKey("endorsers.id"), nullable=True)
    source_uri: Mapped[str] = mapped_column(String(2048))
    list_version: Mapped[str] = mapped_column(String(255))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Image(Base):
    """One HEPiX ``hv:image`` identity; ``identifier`` is the public image id."""

    __tablename__ = "images"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(255), unique=True)
    appliance_id: Mapped[int | None] = mapped_column(ForeignKey("appliances.id"), nullable=True)
    vo_id: Mapped[int] = mapped_column(ForeignKey("vos.id"), index=True)
    current_version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    vo: Mapped[Vo] = relationship(lazy="joined")


class Version(Base):
    """One image file of an image (``hv:version`` plus the file fields of the HEPiX list)."""

    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("image_id", "sha512", name="uq_versions_image_sha512"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    version: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(1024))
    description: Mapped[str] = mapped_column(Text)
    uri: Mapped[str] = mapped_column(String(2048))
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sha512: Mapped[str] = mapped_column(String(128), index=True)
    format: Mapped[str] = mapped_column(String(64))
    hypervisor: Mapped[str] = mapped_column(String(255))
    arch: Mapped[str] = mapped_column(String(64))
    os: Mapped[str] = mapped_column(String(255))
    osname: Mapped[str] = mapped_column(String(255))
    osversion: Mapped[str] = mapped_column(String(255))
    comments: Mapped[str] = mapped_column(Text)
    extra: Mapped[str] = mapped_column(Text)  # other ad:/sl: fields, JSON, passed through
    expires: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime())


class Report(Base):
    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_version_issued", "version_id", "issued"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[str] = mapped_column(String(128), unique=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    level: Mapped[str] = mapped_column(String(64))
    levels: Mapped[str] = mapped_column(Text)  # JSON list of level names, lowest first
    ruleset_version: Mapped[str] = mapped_column(String(255))
    levels_version: Mapped[str] = mapped_column(String(255))
    tool_version: Mapped[str] = mapped_column(String(255))
    issued: Mapped[datetime] = mapped_column(UTCDateTime())
    expires: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(255))
    received: Mapped[datetime] = mapped_column(UTCDateTime())
    body: Mapped[str] = mapped_column(Text)  # the canonical JSON: its SHA-256 is report_id
    signer: Mapped[str | None] = mapped_column(String(255), nullable=True)
    signer_key: Mapped[str | None] = mapped_column(String(80), nullable=True)
    signature: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuditorKey(Base):
    """An auditor's Ed25519 public key; reports signed with it are the auditor's."""

    __tablename__ = "auditor_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    auditor: Mapped[str] = mapped_column(String(255), index=True)
    key_id: Mapped[str] = mapped_column(String(80), unique=True)
    public_key: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Suspension(Base):
    __tablename__ = "suspensions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    who: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    lifted_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(255))
    detail: Mapped[str] = mapped_column(Text)


class Inventory(Base):
    """What a report said an image version holds: one per image content (SHA-512), from the
    first accepted report that carried one; its packages and hashed files are the two tables
    below. ``version_id`` is the version the report was bound to; every version with the same
    SHA-512 has the same content, so campaigns reach them all through it."""

    __tablename__ = "inventories"
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), primary_key=True,
                                            autoincrement=False)
    report_id: Mapped[str] = mapped_column(String(128))
    complete: Mapped[bool] = mapped_column(Boolean)
    not_hashed: Mapped[int] = mapped_column(Integer)
    packages: Mapped[int] = mapped_column(Integer)
    files: Mapped[int] = mapped_column(Integer)
    stored: Mapped[datetime] = mapped_column(UTCDateTime())


class InventoryPackage(Base):
    """One installed package of an inventory; found by binary or source name."""

    __tablename__ = "inventory_packages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    name: Mapped[str] = mapped_column(String(1024), index=True)
    version: Mapped[str] = mapped_column(String(4096))
    arch: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    source_name: Mapped[str | None] = mapped_column(String(1024), nullable=True, index=True)
    source_version: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    manager: Mapped[str] = mapped_column(String(32))
    ecosystem: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    purl: Mapped[str | None] = mapped_column(String(4096), nullable=True)


class InventoryFile(Base):
    """One hashed file of an inventory; found by any of its hashes or by its name."""

    __tablename__ = "inventory_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    path: Mapped[str] = mapped_column(String(4096))
    basename: Mapped[str] = mapped_column(String(1024), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    sha1: Mapped[str] = mapped_column(String(40), index=True)
    md5: Mapped[str] = mapped_column(String(32), index=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    kinds: Mapped[str] = mapped_column(String(255))  # comma-separated, sorted


class Campaign(Base):
    """A saved campaign: a query (JSON) that can be run again to see who is newly affected."""

    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    query: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(255))


class CampaignRun(Base):
    """One run of a saved campaign; the versions it found are in ``campaign_run_versions``."""

    __tablename__ = "campaign_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by: Mapped[str] = mapped_column(String(255))
    affected: Mapped[int] = mapped_column(Integer)
    newly_affected: Mapped[int] = mapped_column(Integer)


class CampaignRunVersion(Base):
    __tablename__ = "campaign_run_versions"
    run_id: Mapped[int] = mapped_column(ForeignKey("campaign_runs.id"), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), primary_key=True)


class Notification(Base):
    """An endorser told about an affected version of a campaign (at most once per three)."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("campaign_id", "endorser_email", "version_id",
                                       name="uq_notifications_campaign_email_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    endorser_email: Mapped[str] = mapped_column(String(512))
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)


class SiteHolding(Base):
    """One image version (by SHA-512) a cloud site reported holding: how many copies of it the
    site keeps and how many instances run from it. A site's report replaces its rows whole."""

    __tablename__ = "site_holdings"
    __table_args__ = (UniqueConstraint("site", "sha512", name="uq_site_holdings_site_sha512"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    sha512: Mapped[str] = mapped_column(String(128), index=True)
    copies: Mapped[int] = mapped_column(Integer)
    instances: Mapped[int] = mapped_column(Integer)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ContainmentRecord(Base):
    """One step a cloud site's agent took (or planned) to contain an image, as its action log
    said it: at which site and in which incident, on which object, what it did, and whether
    it worked. Records are only ever added: ``content_key`` (SHA-256 of the record as sent,
    normalised) makes a log sent again add nothing, and no record is changed or removed.
    ``sha512`` is the SHA-512 of the image version the record (or else the post) named, when
    one was named by it rather than by the image id."""

    __tablename__ = "containment_records"
    __table_args__ = (
        UniqueConstraint("image_id", "content_key", name="uq_containment_records_image_key"),
        Index("ix_containment_records_image_at", "image_id", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    content_key: Mapped[str] = mapped_column(String(64))
    image_ref: Mapped[str] = mapped_column(String(255))  # the record's image, as sent
    sha512: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    site: Mapped[str] = mapped_column(String(63))
    incident: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    object_kind: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[str] = mapped_column(String(255))
    object_name: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    object_project: Mapped[str | None] = mapped_column(String(255), nullable=True)
    action: Mapped[str] = mapped_column(String(63))
    result: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    state_before: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON object
    state_after: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON object
    sent_by: Mapped[str] = mapped_column(String(255))
    received: Mapped[datetime] = mapped_column(UTCDateTime())

def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (SQLAlchemy's default driver is psycopg2)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL and foreign keys, PostgreSQL a bounded pool."""
    url = normalise_url(url)
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs.update(pool_size=16, max_overflow=16, pool_pre_ping=True)
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Any]:
    """Sessions that keep loaded objects usable after commit (the API renders after writing)."""
    return sessionmaker(engine, expire_on_commit=False)
