"""Scenarios for rules/package: pending updates (through a real feed snapshot) and unwanted
packages."""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path

from imageaudit.facts import Facts
from imageaudit.model import Severity, Status
from imageaudit.vulns.match import assess
from imageaudit.vulns.model import AdvisoryMatch, FeedInfo
from imageaudit.vulns.sync import SnapshotFeed, SnapshotWriter
from tests.rules.harness import case

OS_RELEASE = "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n"
NOW = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)


def dpkg_status(*packages: tuple[str, str, str]) -> str:
    """A dpkg status file of installed packages (name, version, architecture)."""
    return "\n".join(
        f"Package: {n}\nStatus: install ok installed\nArchitecture: {a}\nVersion: {v}\n"
        f"Description: {n}\n"
        for n, v, a in packages
    )


def debian_tree(*packages: tuple[str, str, str]) -> dict[str, str]:
    return {"/etc/os-release": OS_RELEASE, "/var/lib/dpkg/status": dpkg_status(*packages)}


_SNAPSHOTS: list[tempfile.TemporaryDirectory[str]] = []


def snapshot(feeds: dict[tuple[str, bool], list[list[str]]], fetched: str) -> Path:
    """A feed snapshot on disk: {(suite, security): rows [name, ver, arch, src, srcver]}."""
    holder = tempfile.TemporaryDirectory(prefix="imageaudit-feeds-")
    _SNAPSHOTS.append(holder)
    writer = SnapshotWriter(Path(holder.name), now=dt.datetime(2026, 1, 3, tzinfo=dt.UTC))
    for (suite, security), rows in feeds.items():
        parsed = writer.add_json(f"debian/{suite}/packages.json", {"packages": rows})
        info = FeedInfo("debian", suite, f"http://mirror.invalid/{suite}", fetched, True,
                        "test snapshot", len(rows))
        writer.add_feed(SnapshotFeed(info, "debian:bookworm", "deb-packages", security, (),
                                     (parsed,)))
    writer.commit()
    return Path(holder.name)


def with_feeds(path: Path, advisories: tuple[AdvisoryMatch, ...] = ()) -> Callable[[Facts], Facts]:
    def attach(facts: Facts) -> Facts:
        vulns = assess(facts, path, now=NOW)
        if advisories:
            vulns = vulns.with_advisories(advisories, "osv")
        return dataclasses.replace(facts, vulnerabilities=vulns)

    return attach


FEEDS = snapshot(
    {
        ("bookworm-security", True): [
            ["libssl3", "3.0.15-1~deb12u1", "amd64", "openssl", "3.0.15-1~deb12u1"],
            ["openssl", "3.0.15-1~deb12u1", "amd64", "openssl", "3.0.15-1~deb12u1"],
            ["bash", "5.2.15-2+b2", "amd64", "bash", "5.2.15-2"],
        ],
        ("bookworm-updates", False): [["tzdata", "2025a-0+deb12u1", "all", "tzdata",
                                       "2025a-0+deb12u1"]],
    },
    fetched="2026-01-03T00:00:00Z",
)
OLD_FEEDS = snapshot({("bookworm-security", True): []}, fetched="2025-10-01T00:00:00Z")
UP_TO_DATE = debian_tree(("libssl3", "3.0.15-1~deb12u1", "amd64"), ("bash", "5.2.15-2+b2", "amd64"),
                         ("tzdata", "2025a-0+deb12u1", "all"))
BEHIND = debian_tree(("libssl3", "3.0.11-1~deb12u2", "amd64"), ("bash", "5.2.15-2+b2", "amd64"),
                     ("tzdata", "2024a-0+deb12u1", "all"))
DSA = AdvisoryMatch("DSA-5999-1", "libssl3", "3.0.11-1~deb12u2", "3.0.15-1~deb12u1",
                    Severity.CRITICAL, "osv")

case("security_updates_pending", Status.PASS, UP_TO_DATE, attach=with_feeds(FEEDS))
case("security_updates_pending", Status.FAIL, BEHIND, attach=with_feeds(FEEDS),
     resources={"libssl3"}, severity=Severity.HIGH,
     message="Package `libssl3` `3.0.11-1~deb12u2` has a pending security update to "
     "`3.0.15-1~deb12u1` in bookworm-security (feed snapshot of 2026-01-03, 7 days old, "
     "/var/lib/dpkg/status line 1)")
case("security_updates_pending", Status.FAIL, BEHIND, attach=with_feeds(FEEDS, (DSA,)),
     name="advisory-severity", resources={"libssl3"}, severity=Severity.CRITICAL,
     message="Package `libssl3` `3.0.11-1~deb12u2` has a pending security update to "
     "`3.0.15-1~deb12u1` in bookworm-security (feed snapshot of 2026-01-03, 7 days old, "
     "/var/lib/dpkg/status line 1; severity critical from DSA-5999-1)")
case("security_updates_pending", Status.ERROR, BEHIND, name="no-feeds",
     message="Could not evaluate: the `vulnerabilities` facts are missing (no update feed "
     "given; run imageaudit feeds sync, then scan --feeds DIR)")
case("security_updates_pending", Status.ERROR, BEHIND, name="stale",
     attach=with_feeds(OLD_FEEDS),
     message="Could not evaluate: the feed snapshot of 2025-10-01, 101 days old is older than "
     "30 days; run imageaudit feeds sync")
case("security_updates_pending", Status.ERROR,
     {"/etc/os-release": "ID=debian\nVERSION_CODENAME=trixie\n",
      "/var/lib/dpkg/status": dpkg_status(("bash", "5.2.15-2", "amd64"))},
     name="other-release", attach=with_feeds(FEEDS))

case("updates_pending", Status.PASS, UP_TO_DATE, attach=with_feeds(FEEDS))
case("updates_pending", Status.FAIL, BEHIND, attach=with_feeds(FEEDS),
     resources={"tzdata"},
     message="Package `tzdata` `2024a-0+deb12u1` has a pending update to `2025a-0+deb12u1` in "
     "bookworm-updates (feed snapshot of 2026-01-03, 7 days old, /var/lib/dpkg/status line 13)")

CLEAN = debian_tree(("openssh-server", "1:9.2p1-2+deb12u3", "amd64"))
case("plaintext_login_server_installed", Status.PASS, CLEAN)
case("plaintext_login_server_installed", Status.FAIL,
     debian_tree(("openssh-server", "1:9.2p1-2+deb12u3", "amd64"),
                 ("telnetd", "0.17+2.4-2+deb12u1", "amd64"),
                 ("rsh-redone-server", "85-4", "amd64")),
     resources={"telnetd", "rsh-redone-server"},
     message="Package `telnetd` `0.17+2.4-2+deb12u1` is installed: a telnet server sends "
     "passwords in clear text (/var/lib/dpkg/status line 7)")
case("plaintext_login_server_installed", Status.NOT_APPLICABLE, {"/etc/os-release": OS_RELEASE},
     name="no-package-database")

case("legacy_network_service_installed", Status.PASS, CLEAN)
case("legacy_network_service_installed", Status.FAIL,
     debian_tree(("xinetd", "1:2.3.15.3-1", "amd64"), ("tftpd-hpa", "5.2+20150808-1.4", "amd64")),
     resources={"xinetd", "tftpd-hpa"},
     message="Package `tftpd-hpa` `5.2+20150808-1.4` is installed: TFTP serves files without "
     "any authentication (/var/lib/dpkg/status line 7)")
