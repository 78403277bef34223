"""OSV advisories as a feed of the snapshot: ``feeds sync --osv PATH`` and the scan matcher.

``feeds sync --osv DIR_OR_ZIP`` (repeatable) copies osv.dev per-ecosystem dumps (zip files, or
directories of ``*.json`` records) into the dated snapshot, so that ``scan --feeds`` judges
from the same frozen data as the update indexes. At scan time :func:`osv_matcher` (listed in
``imageaudit.vulns.match.ADVISORY_MATCHERS``) loads the records of the image's release only
and adds the matches to the vulnerability facts.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import zipfile
from pathlib import Path
from typing import Any

from imageaudit.vulns.model import FeedInfo, FeedProblem, VulnerabilityFacts
from imageaudit.vulns.osv import load_osv, match_osv, osv_coverage
from imageaudit.vulns.osv_ecosystems import image_ecosystem
from imageaudit.vulns.osv_load import OSVLoadError
from imageaudit.vulns.sync import FeedError, Snapshot, SnapshotFeed, SnapshotWriter, iso, utc_now

FORMAT = "osv"
MAX_DIR_BYTES = 2 << 30


def add_sync_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--osv", action="append", default=[], type=Path, metavar="DIR_OR_ZIP",
        help="OSV records (an osv.dev ecosystem dump zip, or a directory of *.json); repeatable",
    )


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


def sync_feeds(args: argparse.Namespace, writer: SnapshotWriter) -> list[SnapshotFeed]:
    """Copy each ``--osv`` source into the snapshot after checking that it loads."""
    feeds: list[SnapshotFeed] = []
    for number, source in enumerate(args.osv, start=1):
        if not source.exists():
            raise FeedError(f"--osv {source}: no such file or directory")
        relative = f"osv/{number:02d}-{source.stem}.zip"
        if source.is_dir():
            writer.add_file(relative, _zip_directory(source))
        elif zipfile.is_zipfile(source):
            writer.add_file(relative, source)
        else:
            raise FeedError(f"--osv {source}: neither a zip file nor a directory")
        try:
            index = load_osv([writer.dir / relative])
        except OSVLoadError as exc:
            raise FeedError(f"--osv {source}: {exc}") from exc
        count = index.stats.records
        info = FeedInfo(
            kind="osv", suite=source.name, url=source.resolve().as_uri(),
            fetched_at=iso(utc_now()), verified=False,
            verification="copied from a local OSV dump (osv.dev does not sign its dumps)",
            package_count=count,
        )
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
