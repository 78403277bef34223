"""The catalogue publisher: send a report, retry with backoff, keep it in the outbox until sent.

The contract with the catalogue (``integrations/appdb``):
``POST {URL}/api/v1/reports`` with ``Authorization: Bearer <token>`` and the body
``{"report_id": "<sha256 hex>", "report": {...}, "signature": {...}}``, the signature being the
auditor's Ed25519 signature over the canonical report (:mod:`imageaudit.signing`), made at send
time with the key given to the publisher. 201 (stored) and 200 (already stored) both mean
delivered; 404 (no image with that SHA-512), 401/403 (token, or a key of another auditor) and
422 (invalid: an id that is not the report's SHA-256, a missing or wrong signature, a level
that does not follow from the findings) are permanent; 429 (too many wrong tokens), 5xx,
timeouts and connection errors are transient. The catalogue recomputes the id and is
idempotent by it, and the outbox marks what it accepted, so a report is sent once however often
the user publishes or flushes.
"""

from __future__ import annotations

import enum
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from imageaudit import httpclient
from imageaudit.findings import printable
from imageaudit.httpclient import ONE_TRY, Answer, RetryPolicy, server_detail, transient
from imageaudit.signing import report_digest, sign_report
from imageaudit.store import OutboxEntry, OutboxState, ResultsStore, utcnow

REPORTS_PATH = "/api/v1/reports"
HEALTH_PATH = "/api/v1/health"
TOKEN_ENV = "IMAGEAUDIT_CATALOGUE_TOKEN"
# The catalogue answers with a short JSON document; never read more than this from it.
MAX_RESPONSE = 64 * 1024
DIRECTORY_REFUSAL = ("a directory has no image file whose SHA-512 a catalogue could bind the "
                     "report to; publish the image file instead")
_SHA512 = re.compile(r"^[0-9a-f]{128}$")


class PublishError(Exception):
    """The catalogue URL or the token is unusable before anything is sent."""


class Outcome(enum.StrEnum):
    """What happened to one report."""

    SENT = "sent"  # the catalogue stored it now (201) or had it already (200)
    ALREADY_SENT = "already-sent"  # the outbox says the catalogue accepted it before
    QUEUED = "queued"  # transient failure: kept pending in the outbox
    FAILED = "failed"  # permanent refusal: kept in the outbox as failed, not retried


@dataclass(frozen=True, slots=True)
class Attempt:
    """The result of one HTTP exchange."""

    status: int | None  # HTTP status, None when no answer came
    outcome: Outcome  # SENT, QUEUED (transient) or FAILED (permanent)
    reason: str  # why, for the user: "connection refused", "HTTP 404: no image ..."


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What :func:`publish` (or a flush) did with one report, and a one-line message."""

    report_id: str
    catalogue_url: str
    outcome: Outcome
    status: int | None
    message: str
    pending: int = 0
    flushed: tuple[PublishResult, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Whether the catalogue has the report."""
        return self.outcome in (Outcome.SENT, Outcome.ALREADY_SENT)


def report_id(report_json: Mapping[str, Any]) -> str:
    """The SHA-256 hex of the canonical JSON (sorted keys, no spaces): same report, same id."""
    return report_digest(report_json)


def catalogue_base(url: str) -> str:
    """The catalogue URL checked and normalized (http/https, host, no query, no trailing /)."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PublishError(f"catalogue URL {url!r}: expected http://HOST[:PORT] or https://...")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise PublishError(
            f"catalogue URL {url!r}: no query, fragment or credentials (give --token)"
        )
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def check_token(token: str | None) -> str:
    """The token, or a clear error when it is missing or could break the header."""
    if not token:
        raise PublishError(f"no catalogue token: give --token or set {TOKEN_ENV}")
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in token):
        raise PublishError("the catalogue token has spaces or control characters")
    return token


def classify(status: int, body: bytes) -> Attempt:
    """Map an HTTP answer to delivered / transient / permanent, per the catalogue contract."""
    detail = server_detail(body)
    suffix = f": {detail}" if detail else ""
    if status in (200, 201):
        return Attempt(status, Outcome.SENT, f"HTTP {status}")
    if status in (401, 403):
        return Attempt(status, Outcome.FAILED, f"HTTP {status}, the token was refused{suffix}")
    if status == 404:
        return Attempt(
            status, Outcome.FAILED, f"HTTP 404, no image with this SHA-512 is registered{suffix}"
        )
    if status == 422:
        return Attempt(status, Outcome.FAILED, f"HTTP 422, the report is invalid{suffix}")
    if transient(status):
        return Attempt(status, Outcome.QUEUED, f"HTTP {status}{suffix}")
    return Attempt(status, Outcome.FAILED, f"HTTP {status}{suffix}")


def exchange(url: str, method: str, path: str, token: str, body: bytes | None,
             timeout: float = 10.0) -> Answer:
    """One request with a JSON ``body`` to the catalogue at ``url`` (a :func:`catalogue_base`)
    with the bearer ``token``: :func:`imageaudit.httpclient.exchange`, which never raises for
    network or HTTP errors and never follows a redirect."""
    return httpclient.exchange(url + path, method, token=token, body=body, timeout=timeout,
                               max_bytes=MAX_RESPONSE)


def send_once(url: str, token: str, rid: str, report: Mapping[str, Any],
              timeout: float = 10.0, key: Ed25519PrivateKey | None = None) -> Attempt:
    """POST one report (signed with ``key`` when given) to the catalogue; never raises for
    network or HTTP errors."""
    doc: dict[str, Any] = {"report_id": rid, "report": report}
    if key is not None:
        doc["signature"] = sign_report(report, key)
    body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    answer = exchange(url, "POST", REPORTS_PATH, token, body, timeout)
    if answer.status is None:
        return Attempt(None, Outcome.QUEUED, answer.reason)
    return classify(answer.status, answer.body)


def check_health(url: str, timeout: float = 5.0) -> bool:
    """Whether ``GET {URL}/api/v1/health`` answers 200."""
    answer = httpclient.exchange(catalogue_base(url) + HEALTH_PATH, "GET", timeout=timeout)
    return answer.status == 200


Sleep = Callable[[float], None]
_STATE = {
    Outcome.SENT: OutboxState.SENT,
    Outcome.QUEUED: OutboxState.PENDING,
    Outcome.FAILED: OutboxState.FAILED,
}


def _deliver(store: ResultsStore, entry: OutboxEntry, token: str, report: Mapping[str, Any],
             policy: RetryPolicy, sleep: Sleep, key: Ed25519PrivateKey | None) -> Attempt:
    """Try up to ``policy.tries`` times while the failure may pass; record each attempt in the
    outbox; the last attempt."""
    tried = 0

    def once() -> Attempt:
        nonlocal tried
        tried += 1
        attempt = send_once(entry.catalogue_url, token, entry.report_id, report, policy.timeout,
                            key)
        store.record_attempt(
            entry.report_id,
            entry.catalogue_url,
            state=_STATE[attempt.outcome],
            error=None if attempt.outcome is Outcome.SENT else attempt.reason,
            next_attempt=utcnow() + timedelta(seconds=policy.delay(tried)),
        )
        return attempt

    last: Attempt = policy.retrying(lambda a: a.outcome is Outcome.QUEUED, sleep)(once)
    return last


def _message(url: str, rid: str, attempt: Attempt, pending: int) -> str:
    short = rid[:12]
    if attempt.outcome is Outcome.SENT:
        stored = "stored" if attempt.status == 201 else "already had it"
        return f"report {short} published to {url} ({stored})"
    if attempt.outcome is Outcome.QUEUED:
        what = "unreachable" if attempt.status is None else "unavailable"
        return (
            f"catalogue {url} {what}: {attempt.reason}; "
            f"report kept in the outbox ({pending} pending)"
        )
    hint = f"; check --token or {TOKEN_ENV}" if attempt.status in (401, 403) else ""
    return (
        f"catalogue {url} refused report {short}: {attempt.reason}{hint}; "
        f"kept in the outbox as failed"
    )


def _result(store: ResultsStore, url: str, rid: str, attempt: Attempt,
            flushed: tuple[PublishResult, ...] = ()) -> PublishResult:
    pending = store.count(OutboxState.PENDING, url)
    return PublishResult(
        rid, url, attempt.outcome, attempt.status, _message(url, rid, attempt, pending),
        pending, flushed,
    )


def flush_outbox(store: ResultsStore, url: str, token: str, *,
                 policy: RetryPolicy = ONE_TRY, exclude: frozenset[str] = frozenset(),
                 sleep: Sleep = time.sleep,
                 key: Ed25519PrivateKey | None = None) -> list[PublishResult]:
    """Send every pending report queued for the catalogue at ``url``, oldest first, each
    signed with ``key`` (the catalogue refuses unsigned reports).

    Stops at the first transient failure (the catalogue is down: trying the rest now would
    only wait for the same timeouts); permanent refusals are recorded and the flush goes on.
    """
    base = catalogue_base(url)
    token = check_token(token)
    results: list[PublishResult] = []
    for entry in store.entries(states=(OutboxState.PENDING,), catalogue_url=base):
        if entry.report_id in exclude:
            continue
        stored = store.get_report(entry.report_id)
        if stored is None:  # cannot happen with foreign keys on; never send nothing
            continue
        attempt = _deliver(store, entry, token, stored.report, policy, sleep, key)
        results.append(_result(store, base, entry.report_id, attempt))
        if attempt.outcome is Outcome.QUEUED:
            break
    return results


def unpublishable(report_json: Mapping[str, Any]) -> str | None:
    """Why no catalogue could take this report, None when it may be sent.

    A catalogue binds certification to the SHA-512 of the image file as distributed
    (``certification.image_sha512``): a scanned directory (``image.kind`` ``directory``) has
    none, and the catalogue would refuse the report for good after it entered the outbox.
    """
    image = report_json.get("image")
    if isinstance(image, Mapping) and image.get("kind") == "directory":
        return DIRECTORY_REFUSAL
    certification = report_json.get("certification")
    sha = certification.get("image_sha512") if isinstance(certification, Mapping) else None
    if not isinstance(sha, str) or not _SHA512.match(sha):
        return ("the report names no SHA-512 of an image file (certification.image_sha512), "
                "which a catalogue binds it to")
    return None


def report_source(report_json: Mapping[str, Any]) -> str:
    """What the report says was scanned (``image.source``), for messages."""
    image = report_json.get("image")
    source = image.get("source") if isinstance(image, Mapping) else None
    return printable(str(source)) if source else "report"


def publish(report_json: Mapping[str, Any], url: str, token: str | None,
            store: ResultsStore, *, policy: RetryPolicy | None = None,
            source: str | None = None, sleep: Sleep = time.sleep,
            key: Ed25519PrivateKey | None = None) -> PublishResult:
    """Store the report, queue it for the catalogue, deliver what is pending, then this one;
    every report sent is signed with the auditor's ``key``.

    Earlier reports still in the outbox for this catalogue go first (one try each), so they
    leave as soon as the catalogue is back. The report itself gets ``policy.tries`` tries with
    exponential backoff; if they all fail it stays in the outbox. Never raises for network or
    HTTP errors: the result says what happened. A report no catalogue could take
    (:func:`unpublishable`) raises :class:`PublishError` and is neither stored nor queued.
    """
    reason = unpublishable(report_json)
    if reason is not None:
        raise PublishError(f"{source or report_source(report_json)}: {reason}")
    policy = policy or RetryPolicy()
    base = catalogue_base(url)
    token = check_token(token)
    rid = report_id(report_json)
    store.save_report(rid, report_json, source)
    flushed: tuple[PublishResult, ...] = ()
    previous = store.entry(rid, base)
    if previous is not None and previous.state is OutboxState.SENT:
        flushed = tuple(flush_outbox(store, base, token, sleep=sleep, key=key))
        pending = store.count(OutboxState.PENDING, base)
        return PublishResult(
            rid, base, Outcome.ALREADY_SENT, None,
            f"report {rid[:12]} already published to {base}", pending, flushed,
        )
    entry = store.enqueue(rid, base)
    flushed = tuple(flush_outbox(store, base, token, exclude=frozenset({rid}), sleep=sleep,
                                 key=key))
    if any(r.outcome is Outcome.QUEUED for r in flushed):
        # The catalogue just failed to answer for an older report: one try is enough to know.
        policy = ONE_TRY if policy.tries > 1 else policy
    attempt = _deliver(store, entry, token, report_json, policy, sleep, key)
    return _result(store, base, rid, attempt, flushed)


__all__ = [
    "DIRECTORY_REFUSAL",
    "ONE_TRY",
    "TOKEN_ENV",
    "Answer",
    "Attempt",
    "Outcome",
    "PublishError",
    "PublishResult",
    "RetryPolicy",
    "catalogue_base",
    "check_health",
    "check_token",
    "classify",
    "exchange",
    "flush_outbox",
    "publish",
    "report_id",
    "report_source",
    "send_once",
    "transient",
    "unpublishable",
]
