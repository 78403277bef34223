"""The documented path to level standard, through the real command line: ``feeds sync --debian``
against a signed local mirror, then ``scan --feeds DIR --require standard`` on the built-in
clean example. The security suite of the image's release is the advisory source."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imageaudit.example import CLEAN
from tests.scenario import write_tree
from tests.vulns.debrepo import Deb, build_suite, make_key, serve

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("dpkg-deb", "dpkg-scanpackages", "apt-ftparchive",
                                           "gpg", "gpgv")),
    reason="needs dpkg-dev, apt-utils, gpg and gpgv",
)

RULE = "vulnerable_package_fix_available"
# The clean example's packages at the versions it holds, as bookworm-security has them.
SECURITY = [
    Deb("openssh-server", "1:9.2p1-2+deb12u3", source="openssh"),
    Deb("openssh-client", "1:9.2p1-2+deb12u3", source="openssh"),
    Deb("passwd", "1:4.13+dfsg1-1+b1", source="shadow"),
]
UPDATES = [Deb("tzdata", "2024a-0+deb12u1", arch="all")]
OLD_SSH = "1:9.2p1-2+deb12u2"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(served URL holding debian/ and debian-security/ for bookworm and bullseye, keyring)."""
    base = tmp_path_factory.mktemp("mirror")
    keyring = make_key(base / "gnupg")
    root = base / "www"
    build_suite(root / "debian-security", "bookworm-security", SECURITY, base / "gnupg")
    build_suite(root / "debian", "bookworm-updates", UPDATES, base / "gnupg")
    build_suite(root / "debian-security", "bullseye-security",
                [Deb("openssh-server", "1:8.4p1-5+deb11u3", source="openssh")], base / "gnupg")
    build_suite(root / "debian", "bullseye-updates", UPDATES, base / "gnupg")
    with serve(root) as (url, _counts):
        yield url, keyring


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imageaudit", *map(str, args)],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "NO_COLOR": "1"})


def feeds_sync(mirror: tuple[str, Path], feeds: Path, release: str) -> str:
    url, keyring = mirror
    done = cli("feeds", "sync", "--feeds", feeds, "--debian", release,
               "--debian-mirror", f"{url}/debian", "--debian-security-mirror",
               f"{url}/debian-security", "--keyring", keyring)
    assert done.returncode == 0, done.stderr
    return done.stdout


def scan(root: Path, feeds: Path) -> tuple[int, dict[str, Any]]:
    done = cli("scan", root, "--feeds", feeds, "--require", "standard", "--format", "json",
               "-o", root.parent / "report.json")
    assert done.returncode in (0, 3), done.stderr
    return done.returncode, json.loads((root.parent / "report.json").read_text())


def findings(report: dict[str, Any], rule: str = RULE) -> list[tuple[str, str | None, str]]:
    return [(f["status"], f["resource"], f["message"]) for f in report["findings"]
            if f["rule_id"] == rule]


def level(report: dict[str, Any], name: str) -> dict[str, Any]:
    levels: list[dict[str, Any]] = report["certification"]["levels"]
    return next(lv for lv in levels if lv["name"] == name)


def test_a_fully_patched_image_is_certified_standard(mirror: tuple[str, Path],
                                                      tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    out = feeds_sync(mirror, feeds, "bookworm")
    assert "advisories: bookworm-security (a newer build there is a security fix)" in out
    root = write_tree(CLEAN, tmp_path / "clean")
    code, report = scan(root, feeds)
    assert code == 0
    assert report["certification"]["level"] == "hardened"
    assert level(report, "standard")["granted"] is True
    [(status, resource, message)] = findings(report)
    fetched = feeds_date(feeds)
    assert (status, resource, message) == (
        "PASS", None, "No known fix is missing among the 2 installed packages, judged by "
        f"bookworm-security of {fetched}")


def feeds_date(feeds: Path) -> str:
    manifest = json.loads((feeds / "snapshots" / (feeds / "latest").read_text().strip()
                           / "manifest.json").read_text())
    return str(manifest["feeds"][0]["info"]["fetched_at"])[:10]


def test_feeds_sync_help_names_the_advisory_source() -> None:
    done = cli("feeds", "sync", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert ("The advisory source of vulnerable_package_fix_available is the security channel "
            "of each release given (Debian/Ubuntu <release>-security, verified through its "
            "signed InRelease; --rpm-security repositories)") in text
    assert "https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip" in text


def test_an_older_package_blocks_standard_naming_both_versions(mirror: tuple[str, Path],
                                                                 tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    feeds_sync(mirror, feeds, "bookworm")
    status = str(CLEAN["/var/lib/dpkg/status"]).replace("1:9.2p1-2+deb12u3", OLD_SSH)
    root = write_tree({**CLEAN, "/var/lib/dpkg/status": status}, tmp_path / "old")
    code, report = scan(root, feeds)
    assert code == 3
    assert findings(report) == [(
        "FAIL", "openssh-server",
        f"Package `openssh-server` `{OLD_SSH}` has a security fix available: fixed in "
        "`1:9.2p1-2+deb12u3`; bookworm-security has `1:9.2p1-2+deb12u3` (no advisory id "
        "known: the snapshot has no advisory record of it; found by security)",
    )]
    assert RULE in level(report, "standard")["blocking"]


def test_a_snapshot_without_the_image_release_cannot_judge(mirror: tuple[str, Path],
                                                           tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    feeds_sync(mirror, feeds, "bullseye")
    root = write_tree(CLEAN, tmp_path / "clean")
    code, report = scan(root, feeds)
    assert code == 3
    [(status, resource, message)] = findings(report)
    assert (status, resource) == ("ERROR", "security")
    snapshot = (feeds / "snapshots" / (feeds / "latest").read_text().strip())
    assert message == (
        f"Could not evaluate: the feed snapshot {snapshot} has no security channel of the "
        "image's release debian:bookworm (its releases: debian:bullseye); run imageaudit "
        "feeds sync --debian bookworm, then scan --feeds DIR")
    assert RULE in level(report, "standard")["unevaluated"]


def test_without_feeds_the_reason_names_the_sync_to_run(tmp_path: Path) -> None:
    root = write_tree(CLEAN, tmp_path / "clean")
    done = cli("scan", root, "--require", "standard", "--format", "json",
               "-o", tmp_path / "report.json")
    assert done.returncode == 3, done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert findings(report) == [(
        "ERROR", None,
        "Could not evaluate: the `vulnerabilities` facts are missing (no advisory feed given; "
        "run imageaudit feeds sync --debian bookworm, then scan --feeds DIR)",
    )]
