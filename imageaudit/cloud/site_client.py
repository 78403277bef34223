"""What a cloud site's agent (``imageaudit cloud``) asks of a running catalogue and tells it:
which images the catalogue withdrew (to contain them), what the site holds, and the containment
records of what it did.

Writes go through the publisher's exchange with the catalogue (:mod:`imageaudit.publish`: the
URL and token checks, no redirect that would replay the token, a bounded answer) and are tried
again on failures that may pass (no answer, 408, 429, 5xx): both are idempotent, a site's
holdings replacing its previous report and containment records being stored once each.
Public reads go through the batch fetcher (:mod:`imageaudit.batch.fetch`: bounded, retried).
The catalogue is another party: its answers are checked field by field. Every failure is a
:class:`CatalogueCallError` naming the catalogue's URL and the HTTP status and reason.

No web framework is imported here: the agent runs on hosts that do not serve the catalogue.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from imageaudit.httpclient import FetchError, fetch_bytes, http_client, shown
from imageaudit.publish import (
    Answer,
    PublishError,
    RetryPolicy,
    catalogue_base,
    check_token,
    exchange,
    transient,
)
from integrations.appdb import API_PREFIX
from integrations.appdb.schemas import IMAGE_ID_PATTERN, NAME_PATTERN

# A log is sent in parts well under the catalogue's bounds (5,000 records and 8 MB a post).
BATCH_RECORDS = 1000
BATCH_BYTES = 4 * 1024 * 1024
IMAGES_PAGE = 1000
MAX_IMAGES = 100_000
MAX_PAGE_BYTES = 32 * 1024 * 1024
WRITE_TIMEOUT = 120.0
READ_TIMEOUT = 60.0

_IMAGE = re.compile(IMAGE_ID_PATTERN)
_NAME = re.compile(NAME_PATTERN)
_SHA512 = re.compile(r"^[0-9a-f]{128}$")
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TEXT_LIMITS = {"title": 1024, "version": 255, "level": 64}
MAX_REASON = 16 * 1024
Sleep = Callable[[float], None]


class CatalogueCallError(Exception):
    """The catalogue could not be reached, refused, or answered something malformed; the
    message names its URL and why. ``status`` is the HTTP status (None when no answer came);
    ``transient`` says that trying later may succeed."""

    def __init__(self, message: str, *, status: int | None = None,
                 transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


@dataclass(frozen=True, slots=True)
class WithdrawnImage:
    """An image the catalogue does not list (its current version), and why (``reason``: the
    catalogue's sentence, every reason that holds)."""

    image_id: str
    vo: str
    sha512: str
    title: str
    version: str
    level: str
    suspended: bool
    reason: str


@dataclass(frozen=True, slots=True)
class SiteReport:
    """What the catalogue stored of a site's holdings: when, and the totals."""

    site: str
    reported: str
    images: int
    copies: int
    instances: int


def _base(url: str) -> str:
    try:
        return catalogue_base(url)
    except PublishError as exc:
        raise CatalogueCallError(str(exc)) from exc


def _base_and_token(url: str, token: str | None) -> tuple[str, str]:
    base = _base(url)
    try:
        return base, check_token(token)
    except PublishError as exc:
        raise CatalogueCallError(f"catalogue {base}: {exc}") from exc


def _send(base: str, token: str, method: str, path: str, doc: Any, what: str,
          policy: RetryPolicy, sleep: Sleep) -> Any:
    """Send ``doc`` as JSON, trying again while the failure may pass; the answer's JSON."""
    body = json.dumps(doc, ensure_ascii=False, allow_nan=False).encode("utf-8")
    answer: Answer = policy.retrying(lambda a: transient(a.status), sleep)(
        exchange, base, method, path, token, body, policy.timeout)
    if answer.status is None or not 200 <= answer.status < 300:
        raise _refusal(base, method, path, what, answer)
    try:
        return json.loads(answer.body)
    except ValueError as exc:
        raise CatalogueCallError(f"catalogue {base}: {method} {path}: HTTP {answer.status} "
                                 "but the answer is not JSON", status=answer.status) from exc


def _refusal(base: str, method: str, path: str, what: str, answer: Answer) -> CatalogueCallError:
    if answer.status is None:
        said = f"no answer ({answer.reason})"
    else:
        said = f"HTTP {answer.status} {answer.reason}".rstrip()
        if answer.detail:
            said += f": {answer.detail}"
    return CatalogueCallError(f"catalogue {base}: {method} {path} ({what}) failed: {said}",
                              status=answer.status, transient=transient(answer.status))


def _count(doc: Any, key: str) -> int:
    value = doc.get(key) if isinstance(doc, dict) else None
    if type(value) is not int or value < 0:
        raise ValueError(f"{key} is missing or not a count")
    return value


def _batches(base: str, records: Iterable[Mapping[str, Any]],
             ) -> Iterator[tuple[int, list[Any]]]:
    """The records in parts of at most BATCH_RECORDS and (unless one record is larger)
    BATCH_BYTES of JSON, each with the index of its first record."""
    batch: list[Any] = []
    size, first = 0, 0
    for n, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise CatalogueCallError(f"catalogue {base}: record {n} is not a JSON object")
        try:
            record_size = len(json.dumps(record, ensure_ascii=False, allow_nan=False)
                              .encode("utf-8"))
        except (TypeError, ValueError) as exc:
            raise CatalogueCallError(f"catalogue {base}: record {n} cannot be sent as JSON: "
                                     f"{exc}") from exc
        if batch and (len(batch) >= BATCH_RECORDS or size + record_size > BATCH_BYTES):
            yield first, batch
            batch, size, first = [], 0, n
        batch.append(dict(record))
        size += record_size + 1
    if batch:
        yield first, batch


def send_containment(url: str, token: str, image: str, records: Iterable[Mapping[str, Any]],
                     *, policy: RetryPolicy | None = None,
                     sleep: Sleep = time.sleep) -> tuple[int, int]:
    """Send an action log's ``records`` (as ``imageaudit cloud contain`` or ``release`` writes
    them, one JSON object each) to the catalogue at ``url`` as the containment records of
    ``image`` (its catalogue image id, or the SHA-512 of one of its versions); the numbers of
    records that were new and that the catalogue already had.

    A long log goes in parts; when a part fails, the parts before it are stored and the error
    says which records were not: sending the whole log again adds nothing twice.
    CatalogueCallError naming the URL and the HTTP status and reason on failure.
    """
    base, token = _base_and_token(url, token)
    if not isinstance(image, str) or not _IMAGE.match(image):
        raise CatalogueCallError(f"catalogue {base}: {str(image)[:80]!r} is not an image id "
                                 "or SHA-512")
    path = f"{API_PREFIX}/images/{urllib.parse.quote(image, safe='')}/containment"
    policy = policy or RetryPolicy(timeout=WRITE_TIMEOUT)
    new = existing = sent = 0
    for first, batch in _batches(base, records):
        what = (f"containment records {first}-{first + len(batch) - 1} of image {image}"
                + (f"; records 0-{first - 1} were stored" if first else ""))
        doc = _send(base, token, "POST", path, {"records": batch}, what, policy, sleep)
        try:
            added, had = _count(doc, "new"), _count(doc, "existing")
            if added + had != len(batch):
                raise ValueError(f"{added} new and {had} existing for {len(batch)} records")
        except ValueError as exc:
            raise CatalogueCallError(f"catalogue {base}: POST {path} ({what}): the answer is "
                                     f"not a containment result ({exc})") from exc
        new, existing, sent = new + added, existing + had, sent + len(batch)
    if sent == 0:
        raise CatalogueCallError(f"catalogue {base}: no containment record to send for image "
                                 f"{image}")
    return new, existing


def report_holdings(url: str, token: str, site: str, holdings: Iterable[Mapping[str, Any]],
                    *, policy: RetryPolicy | None = None,
                    sleep: Sleep = time.sleep) -> SiteReport:
    """Tell the catalogue at ``url`` everything ``site`` holds now: each holding is
    ``{"sha512": ..., "copies": n, "instances": n}`` (an image version the site keeps copies
    of, and the instances running from it); it replaces the site's previous report whole.
    What the catalogue stored, or CatalogueCallError naming the URL and the HTTP status."""
    base, token = _base_and_token(url, token)
    if not isinstance(site, str) or not _NAME.match(site):
        raise CatalogueCallError(f"catalogue {base}: {str(site)[:80]!r} is not a site name")
    rows = []
    for n, h in enumerate(holdings):
        if not isinstance(h, Mapping):
            raise CatalogueCallError(f"catalogue {base}: holding {n} is not a JSON object")
        rows.append(dict(h))
    path = f"{API_PREFIX}/sites/{site}/holdings"
    policy = policy or RetryPolicy(timeout=WRITE_TIMEOUT)
    doc = _send(base, token, "PUT", path, {"holdings": rows}, f"holdings of site {site}",
                policy, sleep)
    try:
        if not isinstance(doc, dict) or doc.get("site") != site:
            raise ValueError("another site or none")
        reported = doc.get("reported")
        if not isinstance(reported, str) or len(reported) > 32 or _CTRL.search(reported):
            raise ValueError("the time it was reported is missing")
        return SiteReport(site=site, reported=reported, images=_count(doc, "images"),
                          copies=_count(doc, "copies"), instances=_count(doc, "instances"))
    except ValueError as exc:
        raise CatalogueCallError(f"catalogue {base}: PUT {path}: the answer is not a site "
                                 f"report ({exc})") from exc


def _summary(item: Any, where: str) -> WithdrawnImage | None:
    """A withdrawn image from one entry of the image listing (None when it is listed), or
    ValueError saying what is wrong with the entry."""
    if not isinstance(item, dict):
        raise ValueError(f"{where} is not an object")
    for key in ("image_id", "vo", "sha512", "title", "version", "level"):
        if not isinstance(item.get(key), str):
            raise ValueError(f"{where}: {key} is missing or not a string")
    if not _IMAGE.match(item["image_id"]):
        raise ValueError(f"{where}: image_id {item['image_id'][:80]!r} is not an image id")
    where = f"{where} (image {item['image_id']})"
    if not _NAME.match(item["vo"]):
        raise ValueError(f"{where}: vo {item['vo'][:80]!r} is not a VO name")
    if not _SHA512.match(item["sha512"]):
        raise ValueError(f"{where}: sha512 is not 128 lowercase hex digits")
    for key, limit in _TEXT_LIMITS.items():
        if len(item[key]) > limit or _CTRL.search(item[key]):
            raise ValueError(f"{where}: {key} is longer than {limit} or has control characters")
    for key in ("listed", "suspended"):
        if type(item.get(key)) is not bool:
            raise ValueError(f"{where}: {key} is missing or not true/false")
    if item["listed"]:
        return None
    reason = item.get("unlisted_reason")
    if reason is None:  # a catalogue from before the field
        reason = "not listed (the catalogue gives no reason)"
    if not isinstance(reason, str) or len(reason) > MAX_REASON or _CTRL.search(reason):
        raise ValueError(f"{where}: unlisted_reason is not a short text")
    return WithdrawnImage(image_id=item["image_id"], vo=item["vo"], sha512=item["sha512"],
                          title=item["title"], version=item["version"], level=item["level"],
                          suspended=item["suspended"], reason=reason)


def withdrawn_images(url: str, vo: str | None = None) -> list[WithdrawnImage]:
    """The images the catalogue at ``url`` does not list (of ``vo``, or of every VO), with why:
    suspended, no unexpired report, a level below the VO's minimum, an expired entry. Pages
    through every image (public: no token). CatalogueCallError naming the URL on failure."""
    base = _base(url)
    if vo is not None and (not isinstance(vo, str) or not _NAME.match(vo)):
        raise CatalogueCallError(f"catalogue {base}: {str(vo)[:80]!r} is not a VO name")
    found: dict[str, WithdrawnImage] = {}
    with http_client(READ_TIMEOUT) as http:
        for offset in range(0, MAX_IMAGES, IMAGES_PAGE):
            query: dict[str, str | int] = {"limit": IMAGES_PAGE, "offset": offset}
            if vo is not None:
                query["vo"] = vo
            page_url = f"{base}{API_PREFIX}/images?{urllib.parse.urlencode(query)}"
            page = _page(page_url, http)
            for n, item in enumerate(page):
                try:
                    image = _summary(item, f"entry {offset + n}")
                except ValueError as exc:
                    raise CatalogueCallError(f"{shown(page_url)}: {exc}") from exc
                # An import between two pages shifts them: each image once.
                if image is not None:
                    found.setdefault(image.image_id, image)
            if len(page) < IMAGES_PAGE:
                return list(found.values())
    raise CatalogueCallError(f"catalogue {base}: lists more than {MAX_IMAGES} images")


def image_sha512(url: str, image: str) -> str | None:
    """The SHA-512 of catalogue image ``image``'s current version; None when the catalogue
    at ``url`` does not know that image (public: no token). CatalogueCallError naming the URL
    when it cannot say."""
    import httpx

    base = _base(url)
    if not _IMAGE.match(image):
        return None
    page_url = f"{base}{API_PREFIX}/images/{urllib.parse.quote(image, safe='')}"
    with http_client(READ_TIMEOUT) as http:
        try:
            response = http.get(page_url)
        except httpx.HTTPError as exc:
            raise CatalogueCallError(f"{shown(page_url)}: no answer ({type(exc).__name__})",
                                     transient=True) from exc
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise CatalogueCallError(f"{shown(page_url)}: HTTP {response.status_code}",
                                 status=response.status_code,
                                 transient=response.status_code in (408, 429)
                                 or response.status_code >= 500)
    try:
        doc = json.loads(response.content[:MAX_PAGE_BYTES])
    except (ValueError, RecursionError) as exc:
        raise CatalogueCallError(f"{shown(page_url)}: the answer is not JSON") from exc
    sha = doc.get("sha512") if isinstance(doc, dict) else None
    if not isinstance(sha, str) or not _SHA512.match(sha):
        raise CatalogueCallError(f"{shown(page_url)}: the answer has no SHA-512")
    return sha


def _page(page_url: str, http: Any) -> list[Any]:
    try:
        data = fetch_bytes(page_url, max_bytes=MAX_PAGE_BYTES, timeout=READ_TIMEOUT,
                           client=http)
    except FetchError as exc:
        raise CatalogueCallError(f"catalogue {exc}", transient=exc.transient) from exc
    try:
        page = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise CatalogueCallError(f"{shown(page_url)}: the answer is not JSON") from exc
    if not isinstance(page, list) or len(page) > IMAGES_PAGE:
        raise CatalogueCallError(f"{shown(page_url)}: not a JSON list of at most "
                                 f"{IMAGES_PAGE} images")
    return page


__all__ = [
    "CatalogueCallError",
    "SiteReport",
    "WithdrawnImage",
    "image_sha512",
    "report_holdings",
    "send_containment",
    "withdrawn_images",
]
