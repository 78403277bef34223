"""The results database: every published report, the outbox of reports still to deliver, and
what batches audited (so that a batch resumes and never audits the same image twice).

SQLite by default (``$XDG_DATA_HOME/imageaudit/results.db``), PostgreSQL by URL. Written with
SQLAlchemy Core so the same statements run on both. The outbox has one row per (report id,
catalogue URL); a row is *pending* until the catalogue accepted it (``sent_at`` set) or refused it
for good (*failed*, with the reason), so a report is never lost while a catalogue is down and is
never sent twice once it has been accepted.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

SCHEMA_VERSION = "1"

metadata = sa.MetaData()

reports_table = sa.Table(
    "reports",
    metadata,
    sa.Column("report_id", sa.String(64), primary_key=True),
    sa.Column("image_sha512", sa.String(128), nullable=True, index=True),
    sa.Column("level", sa.String(64), nullable=True),
    sa.Column("issued", sa.String(40), nullable=True),
    sa.Column("expires", sa.String(40), nullable=True),
    sa.Column("source", sa.Text, nullable=True),
    # The canonical JSON text: its SHA-256 is the report id, so the row can be re-verified.
    sa.Column("report", sa.Text, nullable=False),
    sa.Column("stored_at", sa.DateTime, nullable=False),
)

outbox_table = sa.Table(
    "outbox",
    metadata,
    sa.Column(
        "report_id",
        sa.String(64),
        sa.ForeignKey("reports.report_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("catalogue_url", sa.String(2048), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("next_attempt", sa.DateTime, nullable=True),
    sa.Column("sent_at", sa.DateTime, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# What a batch audited: one row per audit key (the image's SHA-512 and everything the result
# depends on: rules, levels, feeds, waivers, tool version). A key found here is not audited
# again; the row names the stored report, or the reason the image could not be audited.
audits_table = sa.Table(
    "audits",
    metadata,
    sa.Column("audit_key", sa.String(64), primary_key=True),
    sa.Column("image_sha512", sa.String(128), nullable=False, index=True),
    sa.Column(
        "report_id",
        sa.String(64),
        sa.ForeignKey("reports.report_id", ondelete="CASCADE"),
        nullable=True,
    ),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# The SHA-512 of local image files, so that a second batch over the same files decides what is
# already audited without reading them: valid while path, size, mtime and inode are unchanged.
file_hashes_table = sa.Table(
    "file_hashes",
    metadata,
    sa.Column("path", sa.String(4096), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("inode", sa.BigInteger, nullable=False),
    sa.Column("sha512", sa.String(128), nullable=False),
)

# The SHA-512 of images named by an immutable remote address (an OCI manifest digest), learnt
# when the image was first audited: a later batch knows the image is done without pulling it.
content_ids_table = sa.Table(
    "content_ids",
    metadata,
    sa.Column("address", sa.String(4096), primary_key=True),
    sa.Column("sha512", sa.String(128), nullable=False),
)

meta_table = sa.Table(
    "store_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


class StoreError(Exception):
    """The results database cannot be opened or has a schema this version does not know."""


class OutboxState(enum.StrEnum):
    """Where a report stands with one catalogue."""

    PENDING = "pending"  # not delivered yet; every flush tries it again
    SENT = "sent"  # the catalogue stored it (201) or already had it (200)
    FAILED = "failed"  # refused for good (unknown image, bad token, invalid); not retried


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One report queued for one catalogue."""

    report_id: str
    catalogue_url: str
    state: OutboxState
    attempts: int
    last_error: str | None
    next_attempt: datetime | None
    sent_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A finished audit: the report it produced, or why the image could not be audited."""

    audit_key: str
    image_sha512: str
    report_id: str | None
    error: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredReport:
    """A report row: the summary columns and the full report JSON."""

    report_id: str
    image_sha512: str | None
    level: str | None
    issued: str | None
    expires: str | None
    source: str | None
    report: dict[str, Any]
    stored_at: datetime


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware."""
    return datetime.now(UTC)


def _naive(when: datetime | None) -> datetime | None:
    # Stored as naive UTC: SQLite keeps no zone, and both back ends then compare alike.
    if when is None:
        return None
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _aware(when: datetime | None) -> datetime | None:
    return None if when is None else when.replace(tzinfo=UTC)


def default_store_url() -> str:
    """``sqlite:///$XDG_DATA_HOME/imageaudit/results.db`` (``~/.local/share`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or ""
    data_home = Path(base) if Path(base).is_absolute() else Path.home() / ".local" / "share"
    return f"sqlite:///{data_home / 'imageaudit' / 'results.db'}"


def normalize_url(url: str) -> str:
    """A database URL for SQLAlchemy: a plain path means a SQLite file; ``postgresql://``
    uses psycopg (3) unless only psycopg2 is installed."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith(("postgresql://", "postgres://")):
        # psycopg 3 when installed (as the catalogue uses), else SQLAlchemy's default psycopg2.
        rest = url.split("://", 1)[1]
        try:
            import psycopg  # noqa: F401
        except ImportError:
            try:
                import psycopg2  # noqa: F401
            except ImportError:
                return f"postgresql+psycopg://{rest}"
            return f"postgresql://{rest}"
        return f"postgresql+psycopg://{rest}"
    return url


def display_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def canonical_json(report: Mapping[str, Any]) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the one text a report hashes and is stored as."""
    return json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class ResultsStore:
    """The results database; open with :meth:`open`, close with :meth:`close` (or ``with``)."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url

    @classmethod
    def open(cls, url: str | None = None) -> ResultsStore:
        """Open (and create if needed) the store at ``url`` or the default SQLite file."""
        target = normalize_url(url or default_store_url())
        try:
            parsed = make_url(target)
        except ArgumentError as exc:
            raise StoreError(f"results store {target!r}: not a database URL") from exc
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise StoreError(
                f"results store {display_url(target)}: use sqlite:///FILE or postgresql://..."
            )
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                # Reports name weaknesses of images: keep them private to the user.
                Path(parsed.database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        try:
            engine = sa.create_engine(target, **kwargs)
            store = cls(engine, target)
            store._create()
        except StoreError:
            raise
        except (sa.exc.SQLAlchemyError, ImportError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"results store {display_url(target)}: {first}") from exc
        return store

    def _create(self) -> None:
        if self.engine.dialect.name == "sqlite":

            @sa.event.listens_for(self.engine, "connect")
            def _fk_on(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.execute("PRAGMA foreign_keys=ON")

        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
            ).first()
            if row is None:
                # Another process may create it at the same moment.
                conn.execute(
                    self._insert_ignore(meta_table).values(
                        key="schema_version", value=SCHEMA_VERSION
                    )
                )
            elif row.value != SCHEMA_VERSION:
                raise StoreError(
                    f"results store {display_url(self.url)}: schema version {row.value}, "
                    f"this imageaudit knows {SCHEMA_VERSION}"
                )

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Reports

    def save_report(self, report_id: str, report: Mapping[str, Any],
                    source: str | None = None) -> bool:
        """Store ``report`` under ``report_id`` unless it is there already; True if new."""
        cert = report.get("certification")
        cert = cert if isinstance(cert, Mapping) else {}
        image = report.get("image")
        image = image if isinstance(image, Mapping) else {}

        def text(value: object, limit: int) -> str | None:
            return value[:limit] if isinstance(value, str) else None

        row = {
            "report_id": report_id,
            "image_sha512": text(cert.get("image_sha512") or image.get("sha512"), 128),
            "level": text(cert.get("level"), 64),
            "issued": text(cert.get("issued"), 40),
            "expires": text(cert.get("expires"), 40),
            "source": source if source is not None else text(image.get("source"), 4096),
            "report": canonical_json(report),
            "stored_at": _naive(utcnow()),
        }
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(reports_table.c.report_id).where(
                    reports_table.c.report_id == report_id
                )
            ).first()
            if exists is not None:
                return False
            inserted = conn.execute(self._insert_ignore(reports_table).values(**row))
        return bool(inserted.rowcount)

    def get_report(self, report_id: str) -> StoredReport | None:
        """The stored report with this id, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(reports_table).where(reports_table.c.report_id == report_id)
            ).first()
        if row is None:
            return None
        return StoredReport(
            report_id=row.report_id,
            image_sha512=row.image_sha512,
            level=row.level,
            issued=row.issued,
            expires=row.expires,
            source=row.source,
            report=json.loads(row.report),
            stored_at=_aware(row.stored_at) or utcnow(),
        )

    def report_ids(self) -> list[str]:
        """Every stored report id, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(reports_table.c.report_id).order_by(
                    reports_table.c.stored_at, reports_table.c.report_id
                )
            )
            return [r.report_id for r in rows]

    # Outbox

    def enqueue(self, report_id: str, catalogue_url: str) -> OutboxEntry:
        """Queue the report for the catalogue; an existing entry is returned as it is, except
        that a *failed* one becomes pending again (the user asked to publish it once more)."""
        with self.engine.begin() as conn:
            current = self._entry(conn, report_id, catalogue_url)
            if current is None:
                conn.execute(
                    self._insert_ignore(outbox_table).values(
                        report_id=report_id,
                        catalogue_url=catalogue_url,
                        state=OutboxState.PENDING.value,
                        attempts=0,
                        created_at=_naive(utcnow()),
                    )
                )
            elif current.state is OutboxState.FAILED:
                conn.execute(
                    self._where(outbox_table.update(), report_id, catalogue_url).values(
                        state=OutboxState.PENDING.value, next_attempt=None
                    )
                )
            entry = self._entry(conn, report_id, catalogue_url)
        assert entry is not None
        return entry

    def entry(self, report_id: str, catalogue_url: str) -> OutboxEntry | None:
        """The outbox entry of this report for this catalogue, if any."""
        with self.engine.connect() as conn:
            return self._entry(conn, report_id, catalogue_url)

    def entries(self, *, states: tuple[OutboxState, ...] | None = None,
                catalogue_url: str | None = None) -> list[OutboxEntry]:
        """Outbox entries, oldest first, filtered by state and catalogue when given."""
        query = sa.select(outbox_table).order_by(
            outbox_table.c.created_at, outbox_table.c.report_id
        )
        if states is not None:
            query = query.where(outbox_table.c.state.in_([s.value for s in states]))
        if catalogue_url is not None:
            query = query.where(outbox_table.c.catalogue_url == catalogue_url)
        with self.engine.connect() as conn:
            return [self._to_entry(row) for row in conn.execute(query)]

    def count(self, state: OutboxState, catalogue_url: str | None = None) -> int:
        """How many entries are in ``state`` (for one catalogue when given)."""
        query = sa.select(sa.func.count()).select_from(outbox_table).where(
            outbox_table.c.state == state.value
        )
        if catalogue_url is not None:
            query = query.where(outbox_table.c.catalogue_url == catalogue_url)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def record_attempt(self, report_id: str, catalogue_url: str, *, state: OutboxState,
                       error: str | None = None, next_attempt: datetime | None = None) -> None:
        """Count one delivery attempt and its outcome."""
        values: dict[str, Any] = {
            "attempts": outbox_table.c.attempts + 1,
            "state": state.value,
            "last_error": error,
            "next_attempt": _naive(next_attempt) if state is OutboxState.PENDING else None,
        }
        if state is OutboxState.SENT:
            values["sent_at"] = _naive(utcnow())
        with self.engine.begin() as conn:
            conn.execute(
                self._where(outbox_table.update(), report_id, catalogue_url).values(**values)
            )

    def retry_failed(self, catalogue_url: str | None = None) -> int:
        """Make failed entries pending again (after the cause was fixed); how many."""
        query = outbox_table.update().where(outbox_table.c.state == OutboxState.FAILED.value)
        if catalogue_url is not None:
            query = query.where(outbox_table.c.catalogue_url == catalogue_url)
        with self.engine.begin() as conn:
            return int(conn.execute(query.values(state=OutboxState.PENDING.value)).rowcount)

    # Audits (batch)

    def record_audit(self, audit_key: str, image_sha512: str, *, report_id: str | None = None,
                     error: str | None = None, replace: bool = False) -> None:
        """Remember a finished audit (its report must be saved first). An existing row is kept
        unless ``replace`` (``batch --force``), so a repeated record changes nothing."""
        row = {
            "audit_key": audit_key,
            "image_sha512": image_sha512[:128],
            "report_id": report_id,
            "error": None if error is None else error[:4096],
            "created_at": _naive(utcnow()),
        }
        with self.engine.begin() as conn:
            if replace:
                conn.execute(audits_table.delete().where(audits_table.c.audit_key == audit_key))
            conn.execute(self._insert_ignore(audits_table).values(**row))

    def audits(self, audit_keys: Iterable[str]) -> dict[str, AuditRecord]:
        """The finished audits among ``audit_keys``."""
        keys = list(dict.fromkeys(audit_keys))
        found: dict[str, AuditRecord] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                rows = conn.execute(sa.select(audits_table).where(
                    audits_table.c.audit_key.in_(keys[start:start + 500])))
                for r in rows:
                    found[r.audit_key] = AuditRecord(
                        audit_key=r.audit_key, image_sha512=r.image_sha512,
                        report_id=r.report_id, error=r.error,
                        created_at=_aware(r.created_at) or utcnow(),
                    )
        return found

    def known_hash(self, path: str, *, size: int, mtime_ns: int, inode: int) -> str | None:
        """The SHA-512 remembered for this file, if it has not changed since."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(file_hashes_table).where(
                file_hashes_table.c.path == path)).first()
        if row is None or (row.size, row.mtime_ns, row.inode) != (size, mtime_ns, inode):
            return None
        return str(row.sha512)

    def remember_hash(self, path: str, *, size: int, mtime_ns: int, inode: int,
                      sha512: str) -> None:
        """Remember a file's SHA-512 (replacing what was remembered for the path)."""
        with self.engine.begin() as conn:
            conn.execute(file_hashes_table.delete().where(file_hashes_table.c.path == path))
            conn.execute(self._insert_ignore(file_hashes_table).values(
                path=path, size=size, mtime_ns=mtime_ns, inode=inode, sha512=sha512))

    def known_content(self, address: str) -> str | None:
        """The SHA-512 learnt for an immutable address (``oci:HOST/REPO@sha256:…``)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(content_ids_table.c.sha512).where(
                content_ids_table.c.address == address)).first()
        return None if row is None else str(row.sha512)

    def remember_content(self, address: str, sha512: str) -> None:
        """Remember the SHA-512 of the image at an immutable address (first one kept)."""
        with self.engine.begin() as conn:
            conn.execute(self._insert_ignore(content_ids_table).values(address=address,
                                                                      sha512=sha512))

    def _insert_ignore(self, table: sa.Table) -> Any:
        # INSERT ... ON CONFLICT DO NOTHING: a concurrent publisher's row wins quietly, and
        # the transaction stays usable (a failed INSERT aborts it on PostgreSQL).
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing()
        if self.engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(table).on_conflict_do_nothing()
        return table.insert()

    @staticmethod
    def _where(stmt: Any, report_id: str, catalogue_url: str) -> Any:
        return stmt.where(
            outbox_table.c.report_id == report_id,
            outbox_table.c.catalogue_url == catalogue_url,
        )

    def _entry(self, conn: sa.Connection, report_id: str,
               catalogue_url: str) -> OutboxEntry | None:
        row = conn.execute(self._where(sa.select(outbox_table), report_id, catalogue_url)).first()
        return None if row is None else self._to_entry(row)

    @staticmethod
    def _to_entry(row: sa.Row[Any]) -> OutboxEntry:
        return OutboxEntry(
            report_id=row.report_id,
            catalogue_url=row.catalogue_url,
            state=OutboxState(row.state),
            attempts=int(row.attempts),
            last_error=row.last_error,
            next_attempt=_aware(row.next_attempt),
            sent_at=_aware(row.sent_at),
            created_at=_aware(row.created_at) or utcnow(),
        )


__all__ = [
    "AuditRecord",
    "OutboxEntry",
    "OutboxState",
    "ResultsStore",
    "StoreError",
    "StoredReport",
    "canonical_json",
    "default_store_url",
    "display_url",
    "normalize_url",
]
