"""The images a catalogue holds, as a batch audit lists them: every registered version.

A site auditing its catalogue wants every image file it may still serve, not only each image's
current version, so the list comes from the catalogue's ``GET /api/v1/versions`` (public, paged
with ``limit`` and ``offset``). The catalogue is another party: its answer is checked field by
field (types, lengths, a 128-hex SHA-512, an http(s) URI) and bounded in bytes and in count, and
anything wrong is a :class:`FetchError` that names the URL and the entry.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx

from imageaudit.batch.fetch import FetchError, check_url, fetch_bytes, http_client, shown
from integrations.appdb.imagelist import ImageListError, check_uri

VERSIONS_PATH = "/api/v1/versions"
PAGE = 1000
MAX_VERSIONS = 100_000
MAX_PAGE_BYTES = 16 * 1024 * 1024
TIMEOUT = 60.0

_VO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$")
_SHA512 = re.compile(r"^[0-9a-f]{128}$")
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TEXT_LIMITS = {"version": 255, "title": 1024}


@dataclass(frozen=True, slots=True)
class CatalogueVersion:
    """One image file the catalogue registered. ``uri`` may be empty (the list gave none);
    ``current`` is true for the image's current version."""

    image_id: str
    vo: str
    version: str
    title: str
    uri: str
    size: int | None
    sha512: str
    current: bool


def _said(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def _page_url(base: str, vo: str | None, offset: int) -> str:
    query: dict[str, str | int] = {"limit": PAGE, "offset": offset}
    if vo is not None:
        query = {"vo": vo, **query}
    return f"{base}{VERSIONS_PATH}?{urllib.parse.urlencode(query)}"


def _entry(item: Any, where: str) -> CatalogueVersion:
    """One entry checked, or ValueError saying what is wrong with it."""
    if not isinstance(item, dict):
        raise ValueError(f"{where} is not an object")
    for key in ("image_id", "vo", "version", "title", "uri", "sha512"):
        if not isinstance(item.get(key), str):
            raise ValueError(f"{where}: {key} is missing or not a string")
    ident = item["image_id"]
    if not _IDENT.match(ident):
        raise ValueError(f"{where}: image_id {ident[:80]!r} is not an image identifier")
    where = f"{where} (image {ident})"
    if not _VO.match(item["vo"]):
        raise ValueError(f"{where}: vo {item['vo'][:80]!r} is not a VO name")
    for key, limit in _TEXT_LIMITS.items():
        if len(item[key]) > limit or _CTRL.search(item[key]):
            raise ValueError(f"{where}: {key} is longer than {limit} or has control characters")
    if not _SHA512.match(item["sha512"]):
        raise ValueError(f"{where}: sha512 is not 128 lowercase hex digits")
    uri = item["uri"]
    if len(uri) > 2048:
        raise ValueError(f"{where}: uri is longer than 2048")
    try:
        check_uri(uri, "uri")
    except ImageListError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    size = item.get("size")
    if size is not None and (type(size) is not int or not 0 <= size <= 2**62):
        raise ValueError(f"{where}: size is not a byte count")
    if type(item.get("current")) is not bool:
        raise ValueError(f"{where}: current is missing or not true/false")
    return CatalogueVersion(image_id=ident, vo=item["vo"], version=item["version"],
                            title=item["title"], uri=uri, size=size, sha512=item["sha512"],
                            current=item["current"])


def list_versions(url: str, vo: str | None, *,
                  client: httpx.Client | None = None) -> list[CatalogueVersion]:
    """Every image version the catalogue at ``url`` (its base URL) registered, of ``vo`` or of
    all VOs, in the catalogue's order (by image, oldest version first); FetchError naming the
    URL when the catalogue cannot be read, answers something malformed, or holds more than
    MAX_VERSIONS."""
    base = check_url(url.strip()).rstrip("/")
    parts = urllib.parse.urlsplit(base)
    if parts.query or parts.fragment:
        raise FetchError(f"{shown(url)}: a catalogue URL has no query or fragment")
    if vo is not None and not _VO.match(vo):
        raise FetchError(f"{shown(url)}: VO {vo[:80]!r} is not a VO name")
    own = client is None
    http = http_client(TIMEOUT) if client is None else client
    try:
        return _pages(http, base, url, vo)
    finally:
        if own:
            http.close()


def _pages(http: httpx.Client, base: str, url: str, vo: str | None) -> list[CatalogueVersion]:
    found: list[CatalogueVersion] = []
    seen: set[tuple[str, str]] = set()
    for offset in range(0, MAX_VERSIONS + 1, PAGE):
        page_url = _page_url(base, vo, offset)
        data = fetch_bytes(page_url, max_bytes=MAX_PAGE_BYTES, timeout=TIMEOUT, client=http)
        try:
            page = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise FetchError(f"{shown(page_url)}: not JSON ({_said(exc)})") from exc
        if not isinstance(page, list):
            raise FetchError(f"{shown(page_url)}: not a JSON list of versions")
        if len(page) > PAGE:
            raise FetchError(f"{shown(page_url)}: {len(page)} entries for a page of {PAGE}")
        for index, item in enumerate(page):
            try:
                version = _entry(item, f"entry {offset + index}")
            except ValueError as exc:
                raise FetchError(f"{shown(page_url)}: {exc}") from exc
            # An import between two pages shifts them: keep each file once.
            if (version.image_id, version.sha512) not in seen:
                seen.add((version.image_id, version.sha512))
                found.append(version)
        if len(found) > MAX_VERSIONS:
            break
        if len(page) < PAGE:
            return found
    raise FetchError(f"{shown(url)}: the catalogue lists more than {MAX_VERSIONS} image "
                     "versions")
