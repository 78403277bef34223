"""``imageaudit feeds sync|show``: build and inspect the feed snapshot ``scan --feeds`` reads.

The lead wires :func:`add_parsers` into :mod:`imageaudit.cli.main`. Other feed kinds hook into
``feeds sync`` through :data:`SYNC_EXTENSIONS`: each named module provides
``add_sync_arguments(parser)`` and ``sync_feeds(args, writer) -> list[SnapshotFeed]``.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from imageaudit.vulns import default_feeds_dir

if TYPE_CHECKING:
    from imageaudit.vulns.sync import SnapshotFeed, SnapshotWriter

# The feed readers are imported by the commands that run them, not to build the parser: the
# mirror options default to None, which stands for each reader's own mirror.
SYNC_EXTENSIONS: tuple[str, ...] = ("imageaudit.vulns.osv_feed",)
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _extensions() -> list[ModuleType]:
    return [importlib.import_module(name) for name in SYNC_EXTENSIONS]


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def add_parsers(subparsers: Any) -> None:
    """Add ``feeds sync`` and ``feeds show`` to the top-level subparsers."""
    parser = subparsers.add_parser("feeds", help="download update/advisory feeds for scan --feeds")
    sub = parser.add_subparsers(dest="feeds_command", required=True)
    sync = sub.add_parser("sync", help="download, verify and store a dated feed snapshot")
    sync.add_argument("--dir", type=Path, default=None,
                      help=f"feed cache directory (default {default_feeds_dir()})")
    sync.add_argument("--debian", type=_csv, default=[], metavar="RELEASES",
                      help="Debian releases, e.g. bookworm,bullseye (-security and -updates)")
    sync.add_argument("--ubuntu", type=_csv, default=[], metavar="RELEASES",
                      help="Ubuntu releases, e.g. jammy,noble (-security and -updates)")
    sync.add_argument("--with-release", action="store_true",
                      help="also index the release suite itself (point-release updates)")
    sync.add_argument("--debian-mirror")
    sync.add_argument("--debian-security-mirror")
    sync.add_argument("--ubuntu-mirror")
    sync.add_argument("--ubuntu-security-mirror")
    sync.add_argument("--keyring", type=Path, action="append", default=[],
                      help="keyring(s) to verify InRelease with (default: the archive keyring)")
    sync.add_argument("--arch", type=_csv, default=["amd64"], metavar="ARCHES",
                      help="Debian/Ubuntu architectures (default amd64)")
    sync.add_argument("--components", type=_csv, default=None,
                      help="components to index (default: all the suite lists)")
    sync.add_argument("--rpm", action="append", default=[], metavar="RELEASE=URL",
                      help="an rpm repository (dir holding repodata/) for e.g. rocky-9")
    sync.add_argument("--rpm-security", action="append", default=[], metavar="RELEASE=URL",
                      help="an rpm repository carrying only security updates")
    sync.add_argument("--alpine", type=_csv, default=[], metavar="BRANCHES",
                      help="Alpine branches, e.g. v3.19,v3.20 (main and community)")
    sync.add_argument("--alpine-mirror")
    sync.add_argument("--alpine-arch", default="x86_64")
    for module in _extensions():
        module.add_sync_arguments(sync)
    sync.set_defaults(func=cmd_sync)
    show = sub.add_parser("show", help="describe the latest (or a given) snapshot")
    show.add_argument("dir", nargs="?", type=Path, default=None)
    show.set_defaults(func=cmd_show)


def _rpm_specs(values: list[str]) -> list[tuple[str, str]]:
    from imageaudit.vulns.sync import FeedError

    specs = []
    for value in values:
        release, sep, url = value.partition("=")
        if not sep or not release or not url:
            raise FeedError(f"--rpm {value!r}: expected RELEASE=URL (e.g. rocky-9=https://...)")
        specs.append((release, url))
    return specs


Job = Callable[["SnapshotWriter"], "SnapshotFeed"]


def _jobs(args: argparse.Namespace) -> list[tuple[str, Job]]:
    from imageaudit.vulns import feeds_apk, feeds_debian, feeds_rpm

    keyrings: list[Path] = list(args.keyring)
    jobs: list[tuple[str, Job]] = []
    for distro, releases in (("debian", args.debian), ("ubuntu", args.ubuntu)):
        mirror = getattr(args, f"{distro}_mirror")
        security = getattr(args, f"{distro}_security_mirror")
        rings = keyrings or [feeds_debian.DEBIAN_KEYRING if distro == "debian"
                             else feeds_debian.UBUNTU_KEYRING]
        for release in releases:
            for suite in feeds_debian.default_suites(distro, release, mirror, security,
                                                     args.with_release):
                job: Job = functools.partial(
                    feeds_debian.sync_suite, suite=suite, keyrings=rings, arches=args.arch,
                    components=args.components)
                jobs.append((suite.suite, job))
    for flag, security_only in ((args.rpm, False), (args.rpm_security, True)):
        for release, url in _rpm_specs(flag):
            job = functools.partial(feeds_rpm.sync_repo, release=release, url=url,
                                    security=security_only)
            jobs.append((f"rpm {release}", job))
    for branch in args.alpine:
        mirror = feeds_apk.ALPINE_MIRROR if args.alpine_mirror is None else args.alpine_mirror
        job = functools.partial(feeds_apk.sync_index, branch=branch, arch=args.alpine_arch,
                                mirror=mirror)
        jobs.append((f"alpine {branch}", job))
    return jobs


def cmd_sync(args: argparse.Namespace) -> int:
    """Run every requested feed; publish the snapshot only when all of them succeeded."""
    from imageaudit.vulns.sync import FeedError, SnapshotWriter

    try:
        jobs = _jobs(args)
    except FeedError as exc:
        print(f"imageaudit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    extensions = _extensions()
    if not jobs and not extensions:
        print("imageaudit: error: nothing to sync (give --debian, --ubuntu, --rpm, --alpine...)",
              file=sys.stderr)
        return EXIT_USAGE
    cache = args.dir or default_feeds_dir()
    writer = SnapshotWriter(cache)
    try:
        for label, job in jobs:
            feed = job(writer)
            writer.add_feed(feed)
            print(f"{label}: {feed.info.package_count} packages ({feed.info.verification})")
        for module in extensions:
            for feed in module.sync_feeds(args, writer):
                writer.add_feed(feed)
                print(f"{feed.info.kind} {feed.info.suite}: {feed.info.package_count} records")
    except FeedError as exc:
        writer.abort()
        print(f"imageaudit: error: {exc}; no snapshot written", file=sys.stderr)
        return EXIT_FAILED
    if not writer.feeds:
        writer.abort()
        print("imageaudit: error: no feed was synced; no snapshot written", file=sys.stderr)
        return EXIT_FAILED
    path = writer.commit()
    print(f"snapshot {path}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """Print the feeds of a snapshot, their dates and how they were verified."""
    from imageaudit.vulns.sync import FeedError, open_snapshot

    try:
        snapshot = open_snapshot(args.dir or default_feeds_dir())
    except FeedError as exc:
        print(f"imageaudit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"snapshot {snapshot.directory} created {snapshot.created}")
    for feed in snapshot.feeds:
        info = feed.info
        flag = "verified" if info.verified else "NOT verified"
        print(f"  {feed.release} {info.suite}: {info.package_count} entries, fetched "
              f"{info.fetched_at}, {flag}: {info.verification}")
    return EXIT_OK
