"""The catalogue's tables (SQLAlchemy 2 ORM) and engine set-up; the schema is owned by Alembic.

Follows the AppDB model (appliance -> versions -> images) reduced to what a HEPiX image list
carries: an *image* is one ``dc:identifier`` (stable across versions) and each *version* holds
one image file (URI, size, SHA-512, format, OS). Reports are bound to a version by its SHA-512.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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


class Vo(Base):
    __tablename__ = "vos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    min_level: Mapped[str | None] = mapped_column(String(64), nullable=True)


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
