"""OSV advisories as a feed of the snapshot: ``feeds sync --osv SOURCE`` and the scan matcher.

``feeds sync --osv SOURCE`` (repeatable) copies osv.dev per-ecosystem dumps (zip files, or
directories of ``*.json`` records, or the URL of a dump such as
``https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip``) into the dated
snapshot, so that ``scan --feeds`` judges from the same frozen data as the update indexes.
A URL is fetched like the update indexes (:class:`imageaudit.vulns.sync.HttpCache`: bounded,
revalidated with ETag / Last-Modified). At scan time :func:`osv_matcher` (listed in
``imageaudit.vulns.match.ADVISORY_MATCHERS``) loads the records of the image's release only
and adds the matches to the vulnerability facts.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import re
import urllib.parse
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from imageaudit.vulns.model import FeedInfo, FeedProblem, VulnerabilityFacts
from imageaudit.vulns.osv import load_osv, match_osv, osv_coverage
from imageaudit.vulns.osv_ecosystems import image_ecosystem
from imageaudit.vulns.osv_load import OSVLoadError
from imageaudit.vulns.sync import FeedError, Snapshot, SnapshotFeed, SnapshotWriter, iso, utc_now

FORMAT = "osv"
MAX_DIR_BYTES = 2 << 30
URL_SCHEMES = ("http", "https")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def add_sync_arguments(parser: argparse.ArgumentParser) -> None:
    # A string, not a Path: Path would fold the "//" of a URL into a local path.
    parser.add_argument(
        "--osv", action="append", default=[], metavar="DIR_ZIP_OR_URL",
        help="OSV records: an osv.dev ecosystem dump (zip file or its http(s) URL, e.g. "
        "https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip), or a directory "
        "of *.json; repeatable",
    )


def _has_scheme(source: str) -> bool:
    return "://" in source


def sync_requested(args: argparse.Namespace) -> bool:
    """Whether ``feeds sync`` was given anything for this feed kind."""
    return bool(args.osv)


def _local_problem(source: str) -> str | None:
    path = Path(source)
    if not path.exists():
        return "no such file or directory"
    try:
        if path.is_dir():
            next(path.iterdir(), None)
            return None
        if not path.is_file():
            return "neither a zip file nor a directory"
        with path.open("rb"):
            pass
        if not zipfile.is_zipfile(path):
            return "neither a zip file nor a directory"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    return None


def _url_problem(source: str) -> str | None:
    parts = urllib.parse.urlsplit(source)
    if parts.scheme.lower() not in URL_SCHEMES:
        return (f"only {' and '.join(s + '://' for s in URL_SCHEMES)} URLs are fetched; "
                "give a local file without a scheme")
    if not parts.hostname:
        return "the URL names no host"
    return None


def check_sync_arguments(args: argparse.Namespace) -> list[str]:
    """The problems of the ``--osv`` sources, found before anything is downloaded: a local
    source must exist and be a readable zip file or directory, a URL must be http(s)."""
    problems = []
    for source in args.osv:
        problem = _url_problem(source) if _has_scheme(source) else _local_problem(source)
        if problem is not None:
            problems.append(f"--osv {source}: {problem}")
    return problems


def _zip_directory(directory: Path) -> bytes:
    """The ``*.json`` files of a directory as one zip, refusing more than :data:`MAX_DIR_BYTES`."""
    buffer = io.BytesIO()
    total = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(directory.rglob("*.json")):
            if path.is_symlink() or not path.is_file():
                continue
            total += path.stat().st_size
            if total > MAX_DIR_BYTES:
                raise FeedError(f"{directory}: more than {MAX_DIR_BYTES} bytes of OSV records")
            zf.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def _fetched(source: str, number: int, writer: SnapshotWriter) -> tuple[str, FeedInfo]:
    """Download the dump at URL ``source`` (revalidating an earlier copy) into the snapshot."""
    download = writer.http.fetch(source)
    if not zipfile.is_zipfile(download.path):
        raise FeedError(f"--osv {source}: the server did not send a zip file")
    path = PurePosixPath(urllib.parse.urlsplit(source).path)
    stem = _UNSAFE_NAME.sub("_", path.stem) or "osv"
    relative = writer.add_file(f"osv/{number:02d}-{stem}.zip", download.path)
    # osv.dev's dumps are named <Ecosystem>/all.zip: keep the ecosystem in the name.
    suite = "/".join(path.parts[-2:]).lstrip("/") or source
    return relative, FeedInfo(
        kind="osv", suite=suite, url=source, fetched_at=download.fetched_at, verified=False,
        verification=f"downloaded from {source} (osv.dev does not sign its dumps)",
        package_count=0,
    )


def _copied(source: str, number: int, writer: SnapshotWriter) -> tuple[str, FeedInfo]:
    """Copy a local dump (zip file or directory of records) into the snapshot."""
    path = Path(source)
    problem = _local_problem(source)
    if problem is not None:  # it was there when the arguments were checked
        raise FeedError(f"--osv {source}: {problem}")
    relative = f"osv/{number:02d}-{_UNSAFE_NAME.sub('_', path.stem) or 'osv'}.zip"
    writer.add_file(relative, _zip_directory(path) if path.is_dir() else path)
    return relative, FeedInfo(
        kind="osv", suite=path.name, url=path.resolve().as_uri(), fetched_at=iso(utc_now()),
        verified=False,
        verification="copied from a local OSV dump (osv.dev does not sign its dumps)",
        package_count=0,
    )


def sync_feeds(args: argparse.Namespace, writer: SnapshotWriter) -> list[SnapshotFeed]:
    """Copy (or download) each ``--osv`` source into the snapshot after checking it loads."""
    feeds: list[SnapshotFeed] = []
    for number, source in enumerate(args.osv, start=1):
        take = _fetched if _has_scheme(source) else _copied
        relative, info = take(source, number, writer)
        try:
            index = load_osv([writer.dir / relative])
        except OSVLoadError as exc:
            raise FeedError(f"--osv {source}: {exc}") from exc
        info = dataclasses.replace(info, package_count=index.stats.records)
        feeds.append(SnapshotFeed(info=info, release="osv", format=FORMAT, security=True,
                                  files=(relative,)))
    return feeds


def osv_matcher(facts: Any, snapshot: Snapshot, result: VulnerabilityFacts) -> VulnerabilityFacts:
    """Match the image's packages against the snapshot's OSV feeds (when it has any)."""
    feeds = [f for f in snapshot.feeds if f.format == FORMAT]
    if not feeds:
        return result
    os_facts = getattr(facts, "os", None)
    key = image_ecosystem(os_facts)
    sources = [snapshot.path(rel) for f in feeds for rel in f.files]
    try:
        index = load_osv(sources, wanted={key} if key is not None else None)
    except OSVLoadError as exc:
        raise FeedError(f"OSV records in the snapshot: {exc}") from exc
    problem = osv_coverage(os_facts, index)
    packages = getattr(getattr(facts, "packages", None), "packages", ())
    merged = result.with_advisories(match_osv(packages, os_facts, index), source="osv")
    merged = dataclasses.replace(merged, feeds=(*merged.feeds, *(f.info for f in feeds)))
    if problem is not None:
        merged = dataclasses.replace(
            merged, problems=(*merged.problems, FeedProblem("osv", problem))
        )
    return merged
