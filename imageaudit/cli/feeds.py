"""``imageaudit feeds sync|show``: build and inspect the feed snapshot ``scan --feeds`` reads
(``--feeds DIR`` here too).

The lead wires :func:`add_parsers` into :mod:`imageaudit.cli.main`. Other feed kinds hook into
``feeds sync`` through :data:`SYNC_EXTENSIONS`: each named module provides
``add_sync_arguments(parser)``, ``check_sync_arguments(args) -> list[str]`` (the problems of its
arguments, found before anything is downloaded), ``sync_requested(args) -> bool`` and
``sync_feeds(args, writer) -> list[SnapshotFeed]``.

Every argument is checked before the first download: a mistake in the last one should not
cost the minutes of fetching and verifying the others (exit 2, each problem named).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import re
import shutil
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from imageaudit.helptext import add_command, add_deprecated, warn_deprecated
from imageaudit.vulns import default_feeds_dir

if TYPE_CHECKING:
    from imageaudit.vulns.sync import SnapshotFeed, SnapshotWriter

# The feed readers are imported by the commands that run them, not to build the parser: the
# mirror options default to None, which stands for each reader's own mirror.
SYNC_EXTENSIONS: tuple[str, ...] = ("imageaudit.vulns.osv_feed",)
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Debian and Ubuntu codenames (bookworm, jammy); the suites are made from them.
_CODENAME = re.compile(r"^[a-z][a-z0-9]*$")
_ALPINE_BRANCH = re.compile(r"^(v[0-9]+\.[0-9]+|edge)$")
_ARCH = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
MIRROR_SCHEMES = ("http", "https", "file")
OSV_DEBIAN = "https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip"
SYNC_CODES = {
    EXIT_OK: "the snapshot is written",
    EXIT_FAILED: "a feed could not be fetched or verified (no snapshot written)",
    EXIT_USAGE: "usage error (each problem named, before anything is downloaded)",
}


def _extensions() -> list[ModuleType]:
    return [importlib.import_module(name) for name in SYNC_EXTENSIONS]


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def add_parsers(subparsers: Any) -> None:
    """Add ``feeds sync`` and ``feeds show`` to the top-level subparsers."""
    parser = add_command(subparsers, "feeds", "download update/advisory feeds for scan --feeds",
                         exit_codes=SYNC_CODES,
                         examples=["imageaudit feeds sync --debian bookworm",
                                   "imageaudit feeds show"])
    sub = parser.add_subparsers(dest="feeds_command", required=True)
    sync = add_command(
        sub, "sync", "download, verify and store a dated feed snapshot",
        description="Download, verify and store a dated feed snapshot for scan --feeds. The "
        "advisory source of vulnerable_package_fix_available is the security channel of each "
        "release given (Debian/Ubuntu <release>-security, verified through its signed "
        "InRelease; --rpm-security repositories): a newer build there is a published security "
        "fix. --osv adds OSV records (advisory ids and severities), e.g. "
        f"{OSV_DEBIAN}.",
        exit_codes=SYNC_CODES,
        examples=["imageaudit feeds sync --debian bookworm --alpine v3.20",
                  f"imageaudit feeds sync --feeds /srv/feeds --debian bookworm --osv {OSV_DEBIAN}"])
    _feeds_option(sync)
    sync.add_argument("--debian", type=_csv, default=[], metavar="RELEASES",
                      help="Debian releases, e.g. bookworm,bullseye: their -security suite "
                      "(the advisory source) and -updates")
    sync.add_argument("--ubuntu", type=_csv, default=[], metavar="RELEASES",
                      help="Ubuntu releases, e.g. jammy,noble: their -security pocket "
                      "(the advisory source) and -updates")
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
                      help="an rpm repository carrying only security updates (the advisory "
                      "source of that release)")
    sync.add_argument("--alpine", type=_csv, default=[], metavar="BRANCHES",
                      help="Alpine branches, e.g. v3.19,v3.20 (main and community)")
    sync.add_argument("--alpine-mirror")
    sync.add_argument("--alpine-arch", default="x86_64")
    for module in _extensions():
        module.add_sync_arguments(sync)
    sync.set_defaults(func=cmd_sync)
    show = add_command(sub, "show", "describe the latest snapshot of a feed cache",
                       exit_codes={EXIT_OK: "done", EXIT_USAGE: "no readable snapshot"},
                       examples=["imageaudit feeds show",
                                 "imageaudit feeds show --feeds /srv/feeds"])
    _feeds_option(show)
    # The directory was once a positional argument: still read, with a warning.
    show.add_argument("old_dir", nargs="?", type=Path, action=_PositionalDir,
                      help=argparse.SUPPRESS)
    show.set_defaults(func=cmd_show)


def _feeds_option(parser: argparse.ArgumentParser) -> None:
    """``--feeds DIR`` (the name ``scan --feeds`` gives the same directory); ``--dir`` is its
    old spelling."""
    parser.add_argument("--feeds", dest="dir", type=Path, default=default_feeds_dir(),
                        metavar="DIR", help="feed cache directory")
    add_deprecated(parser, "--dir", "dir", "--feeds", type=Path, metavar="DIR")


class _PositionalDir(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if values is not None:
            warn_deprecated("feeds show DIR", "feeds show --feeds DIR")
            namespace.dir = values


def _rpm_specs(values: list[str]) -> list[tuple[str, str]]:
    return [(release, url) for release, _sep, url in (v.partition("=") for v in values)]


def _url_problem(url: str) -> str | None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in MIRROR_SCHEMES:
        return f"not a URL ({', '.join(s + '://' for s in MIRROR_SCHEMES)})"
    if parts.scheme.lower() != "file" and not parts.hostname:
        return "the URL names no host"
    return None


def _release_problems(args: argparse.Namespace) -> list[str]:
    problems = []
    for distro, example in (("debian", "bookworm"), ("ubuntu", "jammy")):
        for release in getattr(args, distro):
            if not _CODENAME.match(release):
                problems.append(
                    f"--{distro} {release}: not a release codename such as {example} "
                    "(the -security and -updates suites are added to it)")
    problems += [f"--alpine {branch}: not an Alpine branch such as v3.19 or edge"
                 for branch in args.alpine if not _ALPINE_BRANCH.match(branch)]
    problems += [f"--arch {arch}: not an architecture name such as amd64"
                 for arch in args.arch if not _ARCH.match(arch)]
    if args.alpine and not _ARCH.match(args.alpine_arch):
        problems.append(f"--alpine-arch {args.alpine_arch}: not an architecture such as x86_64")
    return problems


def _url_problems(args: argparse.Namespace) -> list[str]:
    problems = []
    for option in ("debian_mirror", "debian_security_mirror", "ubuntu_mirror",
                   "ubuntu_security_mirror", "alpine_mirror"):
        url = getattr(args, option)
        problem = None if url is None else _url_problem(url)
        if problem is not None:
            problems.append(f"--{option.replace('_', '-')} {url}: {problem}")
    for flag, values in (("--rpm", args.rpm), ("--rpm-security", args.rpm_security)):
        for value in values:
            release, sep, url = value.partition("=")
            if not sep or not release or not url:
                problems.append(f"{flag} {value}: expected RELEASE=URL (e.g. rocky-9=https://...)")
            elif (problem := _url_problem(url)) is not None:
                problems.append(f"{flag} {value}: {problem}")
    return problems


def _keyring_problems(args: argparse.Namespace) -> list[str]:
    if not (args.debian or args.ubuntu):
        return []
    problems = []
    if shutil.which("gpgv") is None:
        problems.append("--debian/--ubuntu: gpgv is not installed; cannot verify InRelease "
                        "(apt-get install gpgv)")
    for ring in args.keyring:
        try:
            with ring.open("rb"):
                pass
        except OSError as exc:
            problems.append(f"--keyring {ring}: {exc.strerror or exc}")
    return problems


def _dir_problem(directory: Path) -> str | None:
    """Why ``directory`` (made if missing) could not take a snapshot, None when it can."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def argument_problems(args: argparse.Namespace, extensions: list[ModuleType]) -> list[str]:
    """Every problem of the ``feeds sync`` arguments, each naming its option; empty when the
    sync can start. Nothing here touches the network."""
    problems = _release_problems(args) + _url_problems(args) + _keyring_problems(args)
    for module in extensions:
        problems += module.check_sync_arguments(args)
    cache = args.dir or default_feeds_dir()
    if (problem := _dir_problem(cache)) is not None:
        problems.append(f"--feeds {cache}: {problem}")
    return problems


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

    extensions = _extensions()
    problems = argument_problems(args, extensions)
    for problem in problems:
        print(f"imageaudit: error: {problem}", file=sys.stderr)
    if problems:
        return EXIT_USAGE
    jobs = _jobs(args)
    if not jobs and not any(module.sync_requested(args) for module in extensions):
        print("imageaudit: error: nothing to sync (give --debian, --ubuntu, --rpm, --alpine, "
              "--osv...)", file=sys.stderr)
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
    _say_advisories(writer.feeds)
    path = writer.commit()
    print(f"snapshot {path}")
    return EXIT_OK


def _say_advisories(feeds: list[SnapshotFeed]) -> None:
    """Name the snapshot's advisory sources, or warn that it has none."""
    channels = [f.info.suite for f in feeds if f.security and f.info.kind != "osv"]
    osv = [f.info.suite for f in feeds if f.info.kind == "osv"]
    if channels:
        print(f"advisories: {', '.join(channels)} (a newer build there is a security fix)")
    if osv:
        print(f"advisories: OSV {', '.join(osv)}")
    if not channels and not osv:
        print("imageaudit: warning: this snapshot has no advisory source (a -security suite "
              "from --debian/--ubuntu, --rpm-security, or --osv): scan cannot evaluate "
              "vulnerable_package_fix_available with it", file=sys.stderr)


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
