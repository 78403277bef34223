"""The results store on SQLite (and PostgreSQL when the test suite can start one)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from imageaudit.publish import report_id
from imageaudit.store import (
    OutboxState,
    ResultsStore,
    StoreError,
    default_store_url,
    display_url,
    normalize_url,
)
from tests.builders.reports import make_report

SHA = "d" * 128
CAT = "http://127.0.0.1:9"


def test_reports_are_stored_once_with_their_summary(store: ResultsStore) -> None:
    report = make_report(SHA)
    rid = report_id(report)
    assert store.save_report(rid, report, source="/images/x.tar") is True
    assert store.save_report(rid, report, source="elsewhere") is False
    stored = store.get_report(rid)
    assert stored is not None
    assert (stored.image_sha512, stored.level, stored.issued, stored.expires, stored.source) == (
        SHA, "none", "2025-03-01T12:00:00Z", "2025-03-31T12:00:00Z", "/images/x.tar"
    )
    assert stored.report == report
    assert store.report_ids() == [rid]
    assert store.get_report("0" * 64) is None


def test_outbox_states(store: ResultsStore) -> None:
    report = make_report(SHA)
    rid = report_id(report)
    store.save_report(rid, report)
    entry = store.enqueue(rid, CAT)
    assert (entry.state, entry.attempts, entry.last_error, entry.sent_at) == (
        OutboxState.PENDING, 0, None, None
    )
    assert store.enqueue(rid, CAT) == entry  # idempotent
    store.record_attempt(rid, CAT, state=OutboxState.PENDING, error="connection refused")
    store.record_attempt(rid, CAT, state=OutboxState.FAILED, error="HTTP 404")
    failed = store.entry(rid, CAT)
    assert failed is not None
    assert (failed.state, failed.attempts, failed.last_error) == (OutboxState.FAILED, 2, "HTTP 404")
    assert store.count(OutboxState.FAILED) == 1
    assert store.count(OutboxState.PENDING, CAT) == 0
    assert store.retry_failed(CAT) == 1
    assert store.count(OutboxState.PENDING, CAT) == 1
    store.record_attempt(rid, CAT, state=OutboxState.SENT)
    sent = store.entry(rid, CAT)
    assert sent is not None and sent.state is OutboxState.SENT and sent.sent_at is not None
    assert store.enqueue(rid, CAT).state is OutboxState.SENT  # never re-queued once sent
    assert [e.report_id for e in store.entries(states=(OutboxState.SENT,))] == [rid]
    assert store.entries(states=(OutboxState.PENDING,)) == []
    assert store.entries(catalogue_url="http://other") == []


def test_outbox_needs_a_stored_report(store: ResultsStore) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        store.enqueue("f" * 64, CAT)


def test_default_location_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_url() == f"sqlite:///{tmp_path / 'data' / 'imageaudit' / 'results.db'}"
    with ResultsStore.open() as s:
        assert s.report_ids() == []
    folder = tmp_path / "data" / "imageaudit"
    assert (folder / "results.db").is_file()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert default_store_url() == f"sqlite:///{Path.home() / '.local/share/imageaudit/results.db'}"


def test_urls(tmp_path: Path) -> None:
    assert normalize_url(str(tmp_path / "r.db")) == f"sqlite:///{tmp_path / 'r.db'}"
    assert normalize_url("postgresql://u:pw@h/db") == "postgresql+psycopg://u:pw@h/db"
    assert display_url("postgresql+psycopg://u:pw@h/db") == "postgresql+psycopg://u:***@h/db"


def test_unusable_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"^results store '://x': not a database URL$"):
        ResultsStore.open("://x")
    with pytest.raises(
        StoreError, match=r"^results store nope://x: use sqlite:///FILE or postgresql://...$"
    ):
        ResultsStore.open("nope://x")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with ResultsStore.open(url) as s, s.engine.begin() as conn:
        conn.execute(sa.text("UPDATE store_meta SET value = '99'"))
    with pytest.raises(StoreError, match="schema version 99, this imageaudit knows 1"):
        ResultsStore.open(url)


def test_batch_audits_are_kept_once_and_replaced_only_when_asked(store: ResultsStore) -> None:
    report = make_report(SHA)
    rid = report_id(report)
    store.save_report(rid, report)
    store.record_audit("k1", SHA, report_id=rid)
    store.record_audit("k1", SHA, error="should not replace")  # a repeat changes nothing
    store.record_audit("k2", SHA, error="unreadable image")
    found = store.audits(["k1", "k2", "k3"])
    assert sorted(found) == ["k1", "k2"]
    assert (found["k1"].report_id, found["k1"].error) == (rid, None)
    assert (found["k2"].report_id, found["k2"].error) == (None, "unreadable image")
    store.record_audit("k2", SHA, report_id=rid, replace=True)
    assert store.audits(["k2"])["k2"].report_id == rid
    many = [f"key-{i}" for i in range(1200)]  # more than one IN (...) batch
    for key in many[::100]:
        store.record_audit(key, SHA, report_id=rid)
    assert sorted(store.audits(many)) == sorted(many[::100])


def test_file_hashes_and_content_ids_are_remembered(store: ResultsStore) -> None:
    store.remember_hash("/images/a.qcow2", size=10, mtime_ns=5, inode=7, sha512=SHA)
    assert store.known_hash("/images/a.qcow2", size=10, mtime_ns=5, inode=7) == SHA
    # A changed file is not taken for the one hashed before.
    assert store.known_hash("/images/a.qcow2", size=10, mtime_ns=6, inode=7) is None
    assert store.known_hash("/images/a.qcow2", size=11, mtime_ns=5, inode=7) is None
    store.remember_hash("/images/a.qcow2", size=11, mtime_ns=6, inode=7, sha512="e" * 128)
    assert store.known_hash("/images/a.qcow2", size=11, mtime_ns=6, inode=7) == "e" * 128
    address = "oci:127.0.0.1:5000/egi/vm@sha256:" + "1" * 64
    assert store.known_content(address) is None
    store.remember_content(address, SHA)
    store.remember_content(address, "f" * 128)  # an immutable address keeps its first hash
    assert store.known_content(address) == SHA
