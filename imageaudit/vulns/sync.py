"""Downloading feeds with HTTP caching, and the dated snapshot directory ``scan`` reads.

Layout of a feed cache directory (``imageaudit feeds sync --feeds CACHE``)::

    CACHE/http/<sha256(url)>.body|.json      conditional-request cache (ETag, Last-Modified)
    CACHE/snapshots/<YYYY-MM-DDTHHMMSSZ>/     one snapshot per sync, never modified after
        manifest.json                         the feeds, their release, files and checks
        <kind>/<suite>/...                    the verified files as downloaded, and parsed
    CACHE/latest                              name of the newest complete snapshot

``scan --feeds`` accepts the cache directory (latest snapshot) or one snapshot directory.
Other feed kinds (OSV dumps...) add their files through :class:`SnapshotWriter` as well.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import hashlib
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from imageaudit.httpclient import (
    FetchError,
    Final,
    from_httpx,
    http_client,
    status_error,
    with_retries,
)
from imageaudit.vulns.model import FeedInfo

TIMEOUT = 60.0
# Tries per URL: a mirror that fails with 5xx or a cut connection is asked again.
ATTEMPTS = 3
MAX_DOWNLOAD = 1 << 30  # 1 GiB: the largest index we expect is ~100 MiB (Ubuntu universe)
MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "imageaudit-feeds/1"
LATEST = "latest"


class FeedError(Exception):
    """A feed could not be fetched, verified or parsed; the message names it."""


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Download:
    """A fetched URL: where its body is, its validators, and whether the server said 304."""

    url: str
    path: Path
    sha256: str
    size: int
    fetched_at: str
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


class HttpCache:
    """Fetches URLs, revalidating earlier copies with If-None-Match / If-Modified-Since."""

    def __init__(self, directory: Path, timeout: float = TIMEOUT) -> None:
        self.directory = directory
        self.timeout = timeout
        directory.mkdir(parents=True, exist_ok=True)

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode()).hexdigest()
        return self.directory / f"{key}.body", self.directory / f"{key}.json"

    def fetch(self, url: str, max_bytes: int = MAX_DOWNLOAD) -> Download:
        """Download ``url`` (or revalidate the cached copy) through the shared HTTP client:
        bounded, transient failures retried; FeedError naming the URL on any failure."""
        body, meta_path = self._paths(url)
        meta: dict[str, Any] = {}
        if body.is_file() and meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                meta = {}
        headers: dict[str, str] = {}
        if meta.get("etag"):
            headers["If-None-Match"] = meta["etag"]
        if meta.get("last_modified"):
            headers["If-Modified-Since"] = meta["last_modified"]
        now = iso(utc_now())
        partial = body.with_suffix(".partial")

        def once(http: httpx.Client) -> dict[str, Any] | None:
            try:
                with http.stream("GET", url, headers=headers) as response:
                    if response.status_code == 304 and meta:
                        return None
                    if response.status_code != 200:
                        raise status_error(response)
                    size, digest = _copy_capped(response.iter_bytes(), partial, max_bytes, url)
                    return {"url": url, "etag": response.headers.get("ETag"),
                            "last_modified": response.headers.get("Last-Modified"),
                            "sha256": digest, "size": size, "fetched_at": now}
            except httpx.HTTPError as exc:
                raise from_httpx(exc) from exc

        try:
            with http_client(self.timeout) as http:
                fresh = with_retries(url, ATTEMPTS, lambda: once(http))
        except FetchError as exc:
            raise FeedError(str(exc)) from exc
        if fresh is None:
            meta["fetched_at"] = now
            meta_path.write_text(json.dumps(meta))
            return Download(url, body, meta["sha256"], meta["size"], now, meta.get("etag"),
                            meta.get("last_modified"), not_modified=True)
        partial.replace(body)
        meta_path.write_text(json.dumps(fresh))
        return Download(url, body, fresh["sha256"], fresh["size"], now, fresh["etag"],
                        fresh["last_modified"])


def _copy_capped(chunks: Iterable[bytes], target: Path, max_bytes: int,
                 url: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                out.close()
                target.unlink(missing_ok=True)
                raise Final(f"larger than {max_bytes} bytes")
            digest.update(chunk)
            out.write(chunk)
    return size, digest.hexdigest()


def http_date(moment: dt.datetime) -> str:
    """An RFC 7231 date (for servers and tests)."""
    return email.utils.format_datetime(moment.astimezone(dt.UTC), usegmt=True)


@dataclass(frozen=True, slots=True)
class SnapshotFeed:
    """One feed in a snapshot manifest.

    ``release`` is the image release it serves (``debian:bookworm``, ``ubuntu:jammy``,
    ``rpm:rocky-9``, ``alpine:v3.19``); ``format`` how its parsed file is read
    (``deb-packages``, ``rpm-primary``, ``apk-index``, or another kind's own format);
    ``files`` are paths relative to the snapshot; ``parsed`` the normalised index, if any.
    """

    info: FeedInfo
    release: str
    format: str
    security: bool
    files: tuple[str, ...] = ()
    parsed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["files"] = list(self.files)
        data["parsed"] = list(self.parsed)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SnapshotFeed:
        return cls(
            info=FeedInfo(**data["info"]),
            release=str(data["release"]),
            format=str(data["format"]),
            security=bool(data["security"]),
            files=tuple(data.get("files", ())),
            parsed=tuple(data.get("parsed", ())),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A complete snapshot read back from disk."""

    directory: Path
    created: str
    feeds: tuple[SnapshotFeed, ...]

    def path(self, relative: str) -> Path:
        """The file ``relative`` of the snapshot; FeedError when it leaves the directory."""
        target = (self.directory / relative).resolve()
        if not target.is_relative_to(self.directory.resolve()):
            raise FeedError(f"{self.directory}: manifest names {relative!r} outside it")
        return target


class SnapshotWriter:
    """Builds a new snapshot in a ``.partial`` directory and publishes it on :meth:`commit`."""

    def __init__(self, cache_dir: Path, now: dt.datetime | None = None) -> None:
        self.cache_dir = cache_dir
        self.created = now or utc_now()
        stamp = self.created.strftime("%Y-%m-%dT%H%M%SZ")
        base = cache_dir / "snapshots"
        base.mkdir(parents=True, exist_ok=True)
        name, counter = stamp, 1
        while (base / name).exists() or (base / f"{name}.partial").exists():
            counter += 1
            name = f"{stamp}-{counter}"
        self.name = name
        self.final = base / name
        self.dir = base / f"{name}.partial"
        self.dir.mkdir()
        self.feeds: list[SnapshotFeed] = []
        self.http = HttpCache(cache_dir / "http")

    def add_file(self, relative: str, source: Path | bytes) -> str:
        """Copy a file (or bytes) into the snapshot at ``relative``; returns ``relative``."""
        target = self.dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            target.write_bytes(source)
        else:
            shutil.copyfile(source, target)
        return relative

    def add_json(self, relative: str, data: Any) -> str:
        """Write ``data`` as compact JSON into the snapshot."""
        return self.add_file(relative, json.dumps(data, separators=(",", ":")).encode())

    def add_feed(self, feed: SnapshotFeed) -> None:
        self.feeds.append(feed)

    def commit(self) -> Path:
        """Write the manifest, publish the snapshot and point ``latest`` at it."""
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "created": iso(self.created),
            "feeds": [f.to_json() for f in self.feeds],
        }
        (self.dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
        self.dir.replace(self.final)
        latest = self.cache_dir / LATEST
        tmp = latest.with_suffix(".tmp")
        tmp.write_text(self.name + "\n")
        tmp.replace(latest)
        return self.final

    def abort(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def open_snapshot(path: Path) -> Snapshot:
    """Read a snapshot: ``path`` is a snapshot directory or a cache directory (its latest)."""
    directory = path
    if not (path / MANIFEST).is_file():
        latest = path / LATEST
        if not latest.is_file():
            raise FeedError(f"{path}: no feed snapshot here; run imageaudit feeds sync")
        name = latest.read_text().strip()
        if not name or "/" in name or name.startswith("."):
            raise FeedError(f"{latest}: bad snapshot name {name!r}")
        directory = path / "snapshots" / name
    try:
        data = json.loads((directory / MANIFEST).read_text())
        if data.get("schema") != MANIFEST_SCHEMA:
            raise FeedError(f"{directory}: unknown manifest schema {data.get('schema')!r}")
        feeds = tuple(SnapshotFeed.from_json(f) for f in data["feeds"])
        created = str(data["created"])
        parse_iso(created)
    except FeedError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FeedError(f"{directory / MANIFEST}: unreadable manifest: {exc}") from exc
    return Snapshot(directory, created, feeds)


def read_parsed(snapshot: Snapshot, feed: SnapshotFeed) -> list[list[Any]]:
    """The normalised package rows of a feed (``[name, version, arch, source, srcver]``)."""
    rows: list[list[Any]] = []
    for relative in feed.parsed:
        try:
            data = json.loads(snapshot.path(relative).read_text())
        except (OSError, ValueError) as exc:
            raise FeedError(f"{relative}: unreadable parsed index: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("packages"), list):
            raise FeedError(f"{relative}: not a parsed package index")
        rows.extend(data["packages"])
    return rows
