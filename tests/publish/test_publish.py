"""The publisher against a real HTTP catalogue stub on 127.0.0.1: delivery, retries, outbox."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageaudit.cli.main import UsageError
from imageaudit.cli.publish import _warn_plain_http, resolve_signing_key, resolve_token
from imageaudit.publish import (
    Attempt,
    Outcome,
    PublishError,
    RetryPolicy,
    catalogue_base,
    check_health,
    flush_outbox,
    publish,
    report_id,
    send_once,
)
from imageaudit.signing import KEY_ENV, generate_keypair, load_public_key
from imageaudit.store import OutboxState, ResultsStore
from tests.builders.reports import make_report
from tests.publish.helpers import run_cli
from tests.publish.stub_catalogue import CatalogueState, StubCatalogue

SHA_A = "a" * 128
SHA_B = "b" * 128
TOKEN = "auditor-token-1"


@pytest.fixture
def catalogue() -> Iterator[StubCatalogue]:
    state = CatalogueState(images={SHA_A, SHA_B}, tokens={TOKEN: "auditor", "rd": "reader"})
    stub = StubCatalogue(state).start()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture
def signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                catalogue: StubCatalogue) -> Path:
    """A new auditor key in ``$IMAGEAUDIT_SIGNING_KEY``, which the stub then demands."""
    key = tmp_path / "auditor.key"
    generate_keypair(key, tmp_path / "auditor.key.pub")
    monkeypatch.setenv(KEY_ENV, str(key))
    catalogue.state.public_key = load_public_key(tmp_path / "auditor.key.pub")
    return key


class Sleeps(list[float]):
    """Records the backoff waits instead of sleeping; can run a hook on each wait."""

    def __init__(self, hook: object = None) -> None:
        super().__init__()
        self.hook = hook

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        if callable(self.hook):
            self.hook()


def test_report_id_is_sha256_of_canonical_json() -> None:
    report = {"b": [1, 2], "a": {"y": "é", "x": None}}
    canonical = '{"a":{"x":null,"y":"é"},"b":[1,2]}'
    assert report_id(report) == hashlib.sha256(canonical.encode()).hexdigest()
    reordered = json.loads(json.dumps({"a": {"y": "é", "x": None}, "b": [1, 2]}))
    assert report_id(reordered) == report_id(report)
    assert report_id({**report, "c": 1}) != report_id(report)


def test_publish_delivers_once_and_remembers(
    catalogue: StubCatalogue, store: ResultsStore
) -> None:
    report = make_report(SHA_A)
    rid = report_id(report)
    first = publish(report, catalogue.url + "/", TOKEN, store, sleep=Sleeps())
    assert (first.outcome, first.status, first.pending) == (Outcome.SENT, 201, 0)
    assert first.message == f"report {rid[:12]} published to {catalogue.url} (stored)"
    [post] = catalogue.state.posts()
    assert post.path == "/api/v1/reports"
    assert post.authorization == f"Bearer {TOKEN}"
    assert post.body == {"report_id": rid, "report": report}
    assert catalogue.state.stored == {rid: report}

    again = publish(report, catalogue.url, TOKEN, store, sleep=Sleeps())
    assert again.outcome is Outcome.ALREADY_SENT
    assert again.message == f"report {rid[:12]} already published to {catalogue.url}"
    assert len(catalogue.state.posts()) == 1  # the outbox knew: nothing sent twice

    stored = store.get_report(rid)
    assert stored is not None
    assert (stored.image_sha512, stored.level, stored.issued, stored.expires) == (
        SHA_A, "none", "2025-03-01T12:00:00Z", "2025-03-31T12:00:00Z"
    )
    assert stored.report == report
    [entry] = store.entries()
    assert (entry.state, entry.attempts, entry.last_error) == (OutboxState.SENT, 1, None)
    assert entry.sent_at is not None
    assert check_health(catalogue.url)


def test_catalogue_down_keeps_report_then_delivers_exactly_once(
    catalogue: StubCatalogue, store: ResultsStore
) -> None:
    catalogue.stop()
    report = make_report(SHA_A)
    rid = report_id(report)
    sleeps = Sleeps()
    down = publish(report, catalogue.url, TOKEN, store, sleep=sleeps)
    assert (down.outcome, down.status, down.pending) == (Outcome.QUEUED, None, 1)
    assert down.message == (
        f"catalogue {catalogue.url} unreachable: connection refused; "
        "report kept in the outbox (1 pending)"
    )
    assert sleeps == [0.5, 1.0]  # 3 tries, exponential backoff between them
    [entry] = store.entries(states=(OutboxState.PENDING,))
    assert (entry.report_id, entry.attempts, entry.last_error) == (rid, 3, "connection refused")
    assert entry.next_attempt is not None
    assert not check_health(catalogue.url)

    catalogue.start()  # same port
    second = make_report(SHA_B)
    result = publish(second, catalogue.url, TOKEN, store, sleep=Sleeps())
    assert result.outcome is Outcome.SENT
    assert [(r.report_id, r.outcome) for r in result.flushed] == [(rid, Outcome.SENT)]
    assert set(catalogue.state.stored) == {rid, report_id(second)}

    # Nothing pending any more: neither a flush nor publishing again sends it a second time.
    assert flush_outbox(store, catalogue.url, TOKEN) == []
    assert publish(report, catalogue.url, TOKEN, store).outcome is Outcome.ALREADY_SENT
    assert [p.body["report_id"] for p in catalogue.state.posts() if p.body] == [
        rid, report_id(second)
    ]
    assert store.count(OutboxState.PENDING) == 0
    assert store.count(OutboxState.SENT) == 2


def test_outbox_flush_command_delivers_queued_report(
    catalogue: StubCatalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], signing_key: Path,
) -> None:
    report_file = tmp_path / "report.json"
    report = make_report(SHA_A)
    report_file.write_text(json.dumps(report, indent=2), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'r.db'}"
    monkeypatch.setenv("IMAGEAUDIT_CATALOGUE_TOKEN", TOKEN)
    catalogue.stop()
    code = run_cli(["publish", str(report_file), "--catalogue", catalogue.url, "--store", db,
                    "--tries", "2", "--backoff", "0.01"])
    assert code == 1
    err = capsys.readouterr().err
    assert err == (
        f"imageaudit: catalogue {catalogue.url} unreachable: connection refused; "
        "report kept in the outbox (1 pending)\n"
    )
    assert run_cli(["outbox", "list", "--store", db]) == 0
    rid = report_id(report)
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["Report", "State", "Catalogue", "Tries", "Sent", "/", "last",
                              "error"]
    assert row.split(None, 4) == [rid[:12], "pending", catalogue.url, "2",
                                  "connection refused"]

    catalogue.start()
    assert run_cli(["outbox", "flush", "--store", db]) == 0
    assert capsys.readouterr().err == f"report {rid[:12]} published to {catalogue.url} (stored)\n"
    assert run_cli(["outbox", "flush", "--store", db]) == 0
    assert capsys.readouterr().err == "nothing to send\n"
    [post] = catalogue.state.posts()
    assert post.body is not None and post.body["signature"]["algorithm"] == "ed25519"
    assert list(catalogue.state.stored) == [rid]
    assert run_cli(["outbox", "list", "--store", db, "--all", "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["report_id"], row["state"], row["attempts"]) == (rid, "sent", 3)


def test_catalogue_back_during_backoff(catalogue: StubCatalogue, store: ResultsStore) -> None:
    catalogue.stop()
    sleeps = Sleeps(hook=catalogue.start)  # back up while the publisher waits
    result = publish(make_report(SHA_A), catalogue.url, TOKEN, store, sleep=sleeps)
    assert (result.outcome, result.status) == (Outcome.SENT, 201)
    assert sleeps == [0.5]
    assert store.entries()[0].attempts == 2


def test_server_errors_are_retried(catalogue: StubCatalogue, store: ResultsStore) -> None:
    catalogue.state.fail_next = 2
    sleeps = Sleeps()
    result = publish(make_report(SHA_A), catalogue.url, TOKEN, store, sleep=sleeps)
    assert (result.outcome, result.status) == (Outcome.SENT, 201)
    assert sleeps == [0.5, 1.0]
    assert [p.status for p in catalogue.state.posts()] == [503, 503, 201]

    catalogue.state.fail_next = 5
    policy = RetryPolicy(tries=2, first_delay=0.25)
    kept = publish(make_report(SHA_B), catalogue.url, TOKEN, store, policy=policy,
                   sleep=(sleeps := Sleeps()))
    assert kept.outcome is Outcome.QUEUED
    assert kept.message == (
        f"catalogue {catalogue.url} unavailable: HTTP 503: database is restarting; "
        "report kept in the outbox (1 pending)"
    )
    assert sleeps == [0.25]


def test_unknown_image_is_a_permanent_failure(
    catalogue: StubCatalogue, store: ResultsStore
) -> None:
    unknown = make_report("c" * 128)
    rid = report_id(unknown)
    sleeps = Sleeps()
    result = publish(unknown, catalogue.url, TOKEN, store, sleep=sleeps)
    assert (result.outcome, result.status) == (Outcome.FAILED, 404)
    assert result.message == (
        f"catalogue {catalogue.url} refused report {rid[:12]}: HTTP 404, no image with this "
        f"SHA-512 is registered: no image with SHA-512 {'c' * 128}; kept in the outbox as failed"
    )
    assert sleeps == []  # not retried
    [entry] = store.entries()
    assert (entry.state, entry.attempts) == (OutboxState.FAILED, 1)
    assert entry.last_error is not None and entry.last_error.startswith("HTTP 404, no image")

    # Flushes (and other publishes) leave it alone ...
    ok = publish(make_report(SHA_A), catalogue.url, TOKEN, store, sleep=sleeps)
    assert ok.flushed == () and ok.outcome is Outcome.SENT
    assert len(catalogue.state.posts()) == 2
    # ... until the image is registered and the user publishes it again.
    catalogue.state.images.add("c" * 128)
    again = publish(unknown, catalogue.url, TOKEN, store, sleep=sleeps)
    assert (again.outcome, again.status) == (Outcome.SENT, 201)
    assert store.entry(rid, catalogue.url) is not None


def test_wrong_token_and_wrong_role_are_permanent(
    catalogue: StubCatalogue, store: ResultsStore
) -> None:
    report = make_report(SHA_A)
    rid = report_id(report)
    bad = publish(report, catalogue.url, "not-a-token", store, sleep=Sleeps())
    assert (bad.outcome, bad.status) == (Outcome.FAILED, 401)
    assert bad.message == (
        f"catalogue {catalogue.url} refused report {rid[:12]}: HTTP 401, the token was "
        "refused: unknown token; check --token or IMAGEAUDIT_CATALOGUE_TOKEN; "
        "kept in the outbox as failed"
    )
    reader = publish(report, catalogue.url, "rd", store, sleep=Sleeps())
    assert (reader.outcome, reader.status) == (Outcome.FAILED, 403)
    assert "HTTP 403, the token was refused: this token has not the auditor role" in (
        reader.message
    )
    assert catalogue.state.stored == {}
    fixed = publish(report, catalogue.url, TOKEN, store, sleep=Sleeps())
    assert fixed.outcome is Outcome.SENT


def test_invalid_report_422_and_redirect_are_permanent(
    catalogue: StubCatalogue, store: ResultsStore
) -> None:
    catalogue.state.redirect_to = "http://127.0.0.1:1/elsewhere"
    moved = publish(make_report(SHA_A), catalogue.url, TOKEN, store, sleep=Sleeps())
    assert (moved.outcome, moved.status) == (Outcome.FAILED, 307)
    assert len(catalogue.state.requests) == 1  # the token was not replayed anywhere

    catalogue.state.redirect_to = None
    report = make_report(SHA_B)
    attempt = send_once(catalogue.url, TOKEN, "0" * 64, report)
    assert attempt == Attempt(
        422, Outcome.FAILED, "HTTP 422, the report is invalid: report_id is not the report's digest"
    )


def test_unusable_url_or_missing_token_fail_before_sending(
    store: ResultsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(PublishError, match="expected http://HOST"):
        catalogue_base("ftp://example.org")
    with pytest.raises(PublishError, match="no query, fragment or credentials"):
        catalogue_base("http://user:pw@127.0.0.1:1")
    with pytest.raises(PublishError, match="no catalogue token: give --token or set"):
        publish(make_report(SHA_A), "http://127.0.0.1:1", None, store)
    with pytest.raises(PublishError, match="spaces or control characters"):
        publish(make_report(SHA_A), "http://127.0.0.1:1", "a\r\nX-Evil: 1", store)
    monkeypatch.delenv("IMAGEAUDIT_CATALOGUE_TOKEN", raising=False)
    report_file = tmp_path / "r.json"
    report_file.write_text(json.dumps(make_report(SHA_A)), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'r.db'}"
    with pytest.raises(UsageError, match="no catalogue token"):
        run_cli(["publish", str(report_file), "--catalogue", "http://127.0.0.1:1",
                 "--store", db])
    (tmp_path / "x.json").write_text('{"not": "a report"}', encoding="utf-8")
    with pytest.raises(UsageError, match="not an imageaudit JSON report"):
        run_cli(["publish", str(tmp_path / "x.json"), "--catalogue", "http://x", "--store", db])


def test_still_down_means_one_try_for_the_new_report(
    catalogue: StubCatalogue, store: ResultsStore
) -> None:
    catalogue.stop()
    publish(make_report(SHA_A), catalogue.url, TOKEN, store, sleep=Sleeps())
    sleeps = Sleeps()
    second = publish(make_report(SHA_B), catalogue.url, TOKEN, store, sleep=sleeps)
    assert [r.outcome for r in second.flushed] == [Outcome.QUEUED]
    assert second.outcome is Outcome.QUEUED
    assert second.message.endswith("report kept in the outbox (2 pending)")
    assert sleeps == []  # the older report just failed: no backoff for this one
    assert [e.attempts for e in store.entries()] == [4, 1]


def test_publish_command_exit_codes(
    catalogue: StubCatalogue, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    signing_key: Path,
) -> None:
    known, unknown = make_report(SHA_A), make_report("e" * 128)
    files = []
    for name, report in (("known", known), ("unknown", unknown)):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(report), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'r.db'}"
    code = run_cli(["publish", *map(str, files), "--catalogue", catalogue.url, "--token", TOKEN,
                    "--store", db])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"report {report_id(known)[:12]} published to {catalogue.url} (stored)\n"
        f"imageaudit: catalogue {catalogue.url} refused report {report_id(unknown)[:12]}: "
        "HTTP 404, no image with this SHA-512 is registered: no image with SHA-512 "
        f"{'e' * 128}; kept in the outbox as failed\n"
    )
    assert run_cli(["outbox", "list", "--store", db]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert row.split()[:2] == [report_id(unknown)[:12], "failed"]
    catalogue.state.images.add("e" * 128)
    assert run_cli(["outbox", "flush", "--store", db, "--token", TOKEN]) == 0
    assert capsys.readouterr().err == "nothing to send\n"  # failed ones wait for the user
    assert run_cli(["outbox", "flush", "--retry-failed", "--store", db, "--token", TOKEN]) == 0
    assert capsys.readouterr().err == (
        f"report {report_id(unknown)[:12]} published to {catalogue.url} (stored)\n"
    )


def test_environment_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEAUDIT_CATALOGUE_TOKEN", "from-env")
    assert resolve_token(None) == "from-env"
    assert resolve_token("given") == "given"
    monkeypatch.delenv("IMAGEAUDIT_CATALOGUE_TOKEN")
    assert resolve_token(None) is None


def test_plain_http_to_another_host_warns() -> None:
    err = io.StringIO()
    _warn_plain_http("http://catalogue.example.org", err)
    _warn_plain_http("https://catalogue.example.org", err)
    _warn_plain_http("http://127.0.0.1:8080", err)
    assert err.getvalue() == (
        "imageaudit: warning: the token is sent unencrypted to http://catalogue.example.org; "
        "use https\n"
    )


def test_publishing_needs_a_signing_key(
    catalogue: StubCatalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    report_file = tmp_path / "report.json"
    report_file.write_text(json.dumps(make_report(SHA_A)), encoding="utf-8")
    with pytest.raises(UsageError) as missing:
        run_cli(["publish", str(report_file), "--catalogue", catalogue.url, "--token", TOKEN,
                 "--store", f"sqlite:///{tmp_path / 'r.db'}"])
    assert str(missing.value) == (
        "no signing key: give --signing-key FILE or set IMAGEAUDIT_SIGNING_KEY "
        "(make one with: imageaudit keys generate FILE)"
    )
    assert catalogue.state.posts() == []
    report_file.with_name("not.key").write_text("not a key\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"not\.key: not an unencrypted Ed25519 private key"):
        resolve_signing_key(tmp_path / "not.key")


def test_keys_generate_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "alice.key"
    assert run_cli(["keys", "generate", str(key)]) == 0
    kid = capsys.readouterr().out.strip()
    assert kid.startswith("sha256:") and len(kid) == 7 + 64
    assert key.stat().st_mode & 0o777 == 0o600
    before = key.read_bytes()
    with pytest.raises(UsageError, match=r"alice\.key exists; not overwriting a key"):
        run_cli(["keys", "generate", str(key)])
    assert key.read_bytes() == before


def test_wrong_key_is_refused_by_the_catalogue(
    catalogue: StubCatalogue, store: ResultsStore, tmp_path: Path, signing_key: Path
) -> None:
    other = tmp_path / "other.key"
    generate_keypair(other, tmp_path / "other.key.pub")
    from imageaudit.signing import load_private_key

    result = publish(make_report(SHA_A), catalogue.url, TOKEN, store, sleep=Sleeps(),
                     key=load_private_key(other))
    assert (result.outcome, result.status) == (Outcome.FAILED, 422)
    assert "bad signature: signature key_id does not name this key" in result.message
    good = publish(make_report(SHA_B), catalogue.url, TOKEN, store, sleep=Sleeps(),
                   key=load_private_key(signing_key))
    assert (good.outcome, good.status) == (Outcome.SENT, 201)


def test_a_directory_report_is_neither_stored_nor_queued(store: ResultsStore) -> None:
    report = make_report(SHA_A)
    report["image"].update(source="/srv/rootfs", kind="directory", format="directory")
    with pytest.raises(PublishError) as refused:
        publish(report, "http://127.0.0.1:9", TOKEN, store, sleep=Sleeps())
    assert str(refused.value) == (
        "/srv/rootfs: a directory has no image file whose SHA-512 a catalogue could bind the "
        "report to; publish the image file instead"
    )
    assert store.entries() == []
    assert store.get_report(report_id(report)) is None
