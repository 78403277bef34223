"""Debian update feeds end to end, offline: a signed test repository, feeds sync over HTTP,
and the pending updates of a root whose dpkg status holds the old versions."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageaudit.cli import feeds as feeds_cli
from imageaudit.cli.main import build_parser
from imageaudit.facts import Facts, collect_facts
from imageaudit.openers.directory import DirectoryFS
from imageaudit.vulns.match import assess
from imageaudit.vulns.model import PendingUpdate
from imageaudit.vulns.sync import FeedError, open_snapshot
from tests.scenario import write_tree
from tests.vulns.debrepo import Deb, build_suite, make_key, serve

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("dpkg-deb", "dpkg-scanpackages", "apt-ftparchive",
                                           "gpg", "gpgv")),
    reason="needs dpkg-dev, apt-utils, gpg and gpgv",
)

SECURITY = [
    Deb("libfoo1", "1.0-1+deb12u1", source="foo"),
    Deb("foo-doc", "1.0-1+deb12u1", arch="all", source="foo"),
    Deb("baz", "3.0-1"),
    Deb("qux", "0.99-1"),
    Deb("zed", "1.0-1"),
    Deb("gone", "5.0-1"),
]
UPDATES = [Deb("bar", "2.0-2", arch="all"), Deb("tzdata", "2024a-0+deb12u1", arch="all")]

# name, version, arch, source field, status
INSTALLED = [
    ("libfoo1", "1.0-1", "amd64", "foo", "install ok installed"),
    ("foo-utils", "1.0-1", "amd64", "foo", "install ok installed"),
    ("bar", "2.0-1", "all", None, "install ok installed"),
    ("baz", "3.0-1", "amd64", None, "install ok installed"),
    ("qux", "1:0.9-1", "amd64", None, "install ok installed"),
    ("zed", "1.0~rc1-1", "amd64", None, "install ok installed"),
    ("gone", "4.0-1", "amd64", None, "deinstall ok config-files"),
    ("tzdata", "2024a-0+deb12u1", "all", None, "install ok installed"),
]

EXPECTED = [
    PendingUpdate("bar", "all", "dpkg", "2.0-1", "2.0-2", "bookworm-updates", "binary", False,
                  "bar"),
    PendingUpdate("foo-utils", "amd64", "dpkg", "1.0-1", "1.0-1+deb12u1", "bookworm-security",
                  "source", True, "foo"),
    PendingUpdate("libfoo1", "amd64", "dpkg", "1.0-1", "1.0-1+deb12u1", "bookworm-security",
                  "binary", True, "foo"),
    PendingUpdate("zed", "amd64", "dpkg", "1.0~rc1-1", "1.0-1", "bookworm-security", "binary",
                  True, "zed"),
]


def status_file() -> str:
    stanzas = []
    for name, version, arch, source, status in INSTALLED:
        lines = [f"Package: {name}", f"Status: {status}", "Priority: optional",
                 f"Architecture: {arch}", f"Version: {version}"]
        if source:
            lines.append(f"Source: {source}")
        lines.append(f"Description: {name}")
        stanzas.append("\n".join(lines))
    return "\n\n".join(stanzas) + "\n"


OS_RELEASE = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    "VERSION_CODENAME=bookworm\nID=debian\n"
)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(served root holding debian/ and debian-security/, test keyring)."""
    base = tmp_path_factory.mktemp("debrepo")
    keyring = make_key(base / "gnupg")
    root = base / "www"
    build_suite(root / "debian-security", "bookworm-security", SECURITY, base / "gnupg")
    build_suite(root / "debian", "bookworm-updates", UPDATES, base / "gnupg")
    yield root, keyring


def image_facts(root: Path) -> Facts:
    write_tree({"/var/lib/dpkg/status": status_file(), "/etc/os-release": OS_RELEASE}, root)
    with DirectoryFS(root) as fs:
        return collect_facts(fs)


def sync(url: str, keyring: Path, cache: Path, *extra: str) -> int:
    parser = build_parser_with_feeds()
    args = parser.parse_args([
        "feeds", "sync", "--feeds", str(cache), "--debian", "bookworm",
        "--debian-mirror", f"{url}/debian", "--debian-security-mirror", f"{url}/debian-security",
        "--keyring", str(keyring), *extra,
    ])
    return int(args.func(args))


def build_parser_with_feeds() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imageaudit")
    feeds_cli.add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser


def test_sync_and_match_give_the_exact_pending_updates(
    repo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, keyring = repo
    cache = tmp_path / "cache"
    with serve(root) as (url, counts):
        assert sync(url, keyring, cache) == 0
        first = dict(counts)
        # Second sync: every file is revalidated, nothing is downloaded again.
        assert sync(url, keyring, cache) == 0
    assert first == {"200": 4}  # 2 InRelease + 2 Packages.xz, nothing else
    assert counts == {"200": 4, "304": 4}
    out = capsys.readouterr().out
    assert "bookworm-security: 6 packages (InRelease signed by " in out
    snapshots = sorted(p.name for p in (cache / "snapshots").iterdir())
    assert len(snapshots) == 2
    snap = open_snapshot(cache)
    assert snap.directory.name == snapshots[-1]
    assert [(f.release, f.info.suite, f.security, f.info.package_count) for f in snap.feeds] == [
        ("debian:bookworm", "bookworm-security", True, 6),
        ("debian:bookworm", "bookworm-updates", False, 2),
    ]
    facts = image_facts(tmp_path / "img")
    now = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    result = assess(facts, cache, now=now)
    assert result.release == "bookworm"
    assert list(result.pending) == EXPECTED
    assert result.problems == ()
    assert result.snapshot_age_days is not None and 2.99 < result.snapshot_age_days < 3.01
    assert result.sources == ("debian:bookworm-security", "debian:bookworm-updates", "security")


def test_scan_cli_wiring_accepts_the_feeds_option() -> None:
    args = build_parser().parse_args(["scan", "img", "--feeds", "/x"])
    assert args.feeds == "/x"


def test_a_foreign_key_is_refused_and_no_snapshot_is_published(
    repo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = repo
    other = make_key(tmp_path / "other-gnupg")
    cache = tmp_path / "cache"
    with serve(root) as (url, _counts):
        assert sync(url, other, cache) == 1
    err = capsys.readouterr().err
    assert "bookworm-security InRelease: signature not valid with" in err
    assert "No public key" in err
    assert "no snapshot written" in err
    assert not (cache / "latest").exists()
    assert list((cache / "snapshots").iterdir()) == []
    with pytest.raises(FeedError, match="no feed snapshot here; run imageaudit feeds sync"):
        open_snapshot(cache)


def test_a_tampered_index_is_refused(repo: tuple[Path, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    root, keyring = repo
    copy = tmp_path / "www"
    shutil.copytree(root, copy)
    index = copy / "debian-security/dists/bookworm-security/main/binary-amd64/Packages.xz"
    index.write_bytes(index.read_bytes()[:-1] + b"\0")
    with serve(copy) as (url, _counts):
        assert sync(url, keyring, tmp_path / "cache") == 1
    assert "main/binary-amd64/Packages.xz: size/SHA256 differ from InRelease" in (
        capsys.readouterr().err)


def test_a_suite_substituted_for_another_is_refused(
    repo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, keyring = repo
    copy = tmp_path / "www"
    shutil.copytree(root, copy)
    # Serve the (validly signed) updates suite where the security suite should be.
    sec = copy / "debian-security/dists/bookworm-security"
    shutil.rmtree(sec)
    shutil.copytree(copy / "debian/dists/bookworm-updates", sec)
    with serve(copy) as (url, _counts):
        assert sync(url, keyring, tmp_path / "cache") == 1
    assert "bookworm-security: InRelease is for suite 'bookworm-updates'" in (
        capsys.readouterr().err)


def test_no_feed_for_the_image_release_is_a_problem(repo: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    root, keyring = repo
    cache = tmp_path / "cache"
    with serve(root) as (url, _counts):
        assert sync(url, keyring, cache) == 0
    write_tree({"/etc/os-release": "ID=debian\nVERSION_ID=11\n",
                "/var/lib/dpkg/status": status_file()}, tmp_path / "img")
    with DirectoryFS(tmp_path / "img") as fs:
        facts = collect_facts(fs)
    result = assess(facts, cache)
    assert result.release is None
    assert result.pending == ()
    snapshot = open_snapshot(cache).directory
    assert [(p.feed, p.message) for p in result.problems] == [
        (str(snapshot), "no update feed for the image's release debian:bullseye (the snapshot "
         "has debian:bookworm)"),
        ("security", f"the feed snapshot {snapshot} has no security channel of the image's "
         "release debian:bullseye (its releases: debian:bookworm); run imageaudit feeds sync "
         "--debian bullseye, then scan --feeds DIR"),
    ]


def test_manifest_is_json_with_dates(repo: tuple[Path, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    root, keyring = repo
    cache = tmp_path / "cache"
    with serve(root) as (url, _counts):
        assert sync(url, keyring, cache) == 0
    snap = open_snapshot(cache)
    manifest = json.loads((snap.directory / "manifest.json").read_text())
    assert manifest["schema"] == "imageaudit-feeds/1"
    assert manifest["feeds"][0]["files"] == [
        "debian/bookworm-security/InRelease",
        "debian/bookworm-security/main/binary-amd64/Packages.xz",
    ]
    assert manifest["feeds"][0]["info"]["verified"] is True
    args = build_parser_with_feeds().parse_args(["feeds", "show", str(cache)])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3] == f"snapshot {snap.directory} created {manifest['created']}"
    assert lines[-2].startswith("  debian:bookworm bookworm-security: 6 entries, fetched ")
    assert ", verified: InRelease signed by " in lines[-2]


def test_ubuntu_suites_and_release_from_the_codename(tmp_path: Path) -> None:
    gnupg = tmp_path / "gnupg"
    keyring = make_key(gnupg)
    www = tmp_path / "www"
    build_suite(www / "ubuntu", "jammy-security", [Deb("libc6", "2.35-0ubuntu3.8",
                                                       source="glibc")], gnupg)
    build_suite(www / "ubuntu", "jammy-updates", [Deb("libc6", "2.35-0ubuntu3.9",
                                                      source="glibc")], gnupg)
    cache = tmp_path / "cache"
    parser = build_parser_with_feeds()
    with serve(www) as (url, _counts):
        args = parser.parse_args([
            "feeds", "sync", "--feeds", str(cache), "--ubuntu", "jammy", "--keyring", str(keyring),
            "--ubuntu-mirror", f"{url}/ubuntu", "--ubuntu-security-mirror", f"{url}/ubuntu"])
        assert args.func(args) == 0
    write_tree({
        "/etc/os-release": "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\"\n"
                           "VERSION_CODENAME=jammy\n",
        "/var/lib/dpkg/status": "Package: libc6\nStatus: install ok installed\n"
                                "Architecture: amd64\nSource: glibc\nVersion: 2.35-0ubuntu3.6\n",
    }, tmp_path / "img")
    with DirectoryFS(tmp_path / "img") as fs:
        facts = collect_facts(fs)
    result = assess(facts, cache)
    assert result.release == "jammy"
    assert [(p.suite, p.available_version, p.security) for p in result.pending] == [
        ("jammy-security", "2.35-0ubuntu3.8", True),
        ("jammy-updates", "2.35-0ubuntu3.9", False),
    ]


def test_a_missing_feeds_directory_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    facts = image_facts(tmp_path / "img")
    result = assess(facts, tmp_path / "nowhere")
    assert result.release is None
    assert [p.message for p in result.problems] == [
        f"{tmp_path / 'nowhere'}: no feed snapshot here; run imageaudit feeds sync"]
