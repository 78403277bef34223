"""rpm repodata and Alpine APKINDEX feeds built by the tests, synced over HTTP, matched."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest
import zstandard

from imageaudit.cli import feeds as feeds_cli
from imageaudit.facts import collect_facts
from imageaudit.facts.os import OSFacts, OSValue
from imageaudit.facts.packages import PackagesFacts
from imageaudit.facts.packages.model import InstalledPackage
from imageaudit.model import Source
from imageaudit.openers.directory import DirectoryFS
from imageaudit.vulns.feeds_rpm import iter_primary, parse_repomd
from imageaudit.vulns.match import assess
from imageaudit.vulns.model import PendingUpdate
from imageaudit.vulns.sync import FeedError, open_snapshot
from tests.scenario import write_tree
from tests.vulns.debrepo import serve

PRIMARY_PACKAGES = [
    # name, arch, epoch, ver, rel, sourcerpm
    ("openssl-libs", "x86_64", "1", "3.0.7", "27.el9", "openssl-3.0.7-27.el9.src.rpm"),
    ("openssl-libs", "x86_64", "1", "3.0.7", "25.el9_3", "openssl-3.0.7-25.el9_3.src.rpm"),
    ("openssl", "x86_64", "1", "3.0.7", "27.el9", "openssl-3.0.7-27.el9.src.rpm"),
    ("bash", "x86_64", "0", "5.1.8", "9.el9", "bash-5.1.8-9.el9.src.rpm"),
    ("tzdata", "noarch", "0", "2024a", "1.el9", "tzdata-2024a-1.el9.src.rpm"),
    ("kernel", "x86_64", "0", "5.14.0", "427.13.1.el9_4", "kernel-5.14.0-427.13.1.el9_4.src.rpm"),
    ("bash", "src", "0", "5.1.8", "9.el9", ""),
]


def primary_xml() -> bytes:
    items = []
    for name, arch, epoch, ver, rel, srpm in PRIMARY_PACKAGES:
        items.append(
            f'<package type="rpm"><name>{name}</name><arch>{arch}</arch>'
            f'<version epoch="{epoch}" ver="{ver}" rel="{rel}"/>'
            f"<checksum type=\"sha256\" pkgid=\"YES\">00</checksum>"
            f"<format><rpm:license>MIT</rpm:license><rpm:sourcerpm>{srpm}</rpm:sourcerpm>"
            f"</format></package>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<metadata xmlns="http://linux.duke.edu/metadata/common" '
        'xmlns:rpm="http://linux.duke.edu/metadata/rpm" '
        f'packages="{len(items)}">' + "".join(items) + "</metadata>\n"
    ).encode()


def repomd(href: str, data: bytes, checksum: str | None = None) -> bytes:
    digest = checksum or hashlib.sha256(data).hexdigest()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<repomd xmlns="http://linux.duke.edu/metadata/repo" '
        'xmlns:rpm="http://linux.duke.edu/metadata/rpm"><revision>1</revision>'
        '<data type="filelists"><location href="repodata/f.xml.gz"/></data>'
        f'<data type="primary"><checksum type="sha256">{digest}</checksum>'
        f'<location href="{href}"/><size>{len(data)}</size></data></repomd>\n'
    ).encode()


def write_rpm_repo(root: Path, compression: str = "gz", checksum: str | None = None) -> None:
    xml = primary_xml()
    data = gzip.compress(xml) if compression == "gz" else zstandard.compress(xml)
    href = f"repodata/abc-primary.xml.{'gz' if compression == 'gz' else 'zst'}"
    (root / "repodata").mkdir(parents=True)
    (root / href).write_bytes(data)
    (root / "repodata/repomd.xml").write_bytes(repomd(href, data, checksum))


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="imageaudit")
    feeds_cli.add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["feeds", *argv])
    return int(args.func(args))


def rpm_pkg(name: str, epoch: int | None, version: str, release: str, arch: str,
            source: str) -> InstalledPackage:
    return InstalledPackage(name, version, epoch, release, arch, source, f"{version}-{release}",
                            "rpm", None, Source("/var/lib/rpm/rpmdb.sqlite"))


class RockyFacts:
    """The two fact families assess reads, for an rpm image (no rpmdb to build here)."""

    os = OSFacts(kind="linux", id=OSValue("rocky", Source("/etc/os-release", 1)),
                 version_id=OSValue("9.3", Source("/etc/os-release", 2)))
    packages = PackagesFacts(packages=(
        rpm_pkg("openssl-libs", 1, "3.0.7", "24.el9", "x86_64", "openssl"),
        rpm_pkg("openssl-devel", 1, "3.0.7", "24.el9", "x86_64", "openssl"),
        rpm_pkg("bash", None, "5.1.8", "9.el9", "x86_64", "bash"),
        rpm_pkg("tzdata", None, "2023c", "1.el9", "noarch", "tzdata"),
        rpm_pkg("kernel", None, "5.14.0", "427.16.1.el9_4", "x86_64", "kernel"),
    ))


@pytest.mark.parametrize("compression", ["gz", "zst"])
def test_rpm_repo_sync_and_match(tmp_path: Path, compression: str) -> None:
    www = tmp_path / "www"
    write_rpm_repo(www / "baseos", compression)
    cache = tmp_path / "cache"
    with serve(www) as (url, counts):
        assert run_cli("sync", "--feeds", str(cache), "--rpm-security",
                       f"rocky-9={url}/baseos") == 0
    assert counts == {"200": 2}
    snap = open_snapshot(cache)
    assert [(f.release, f.format, f.info.package_count) for f in snap.feeds] == [
        ("rpm:rocky-9", "rpm-primary", 6)]
    result = assess(RockyFacts(), cache)
    assert result.release == "rocky-9"
    assert list(result.pending) == [
        PendingUpdate("openssl-devel", "x86_64", "rpm", "3.0.7-24.el9", "3.0.7-27.el9",
                      "rocky-9", "source", True, "openssl"),
        PendingUpdate("openssl-libs", "x86_64", "rpm", "1:3.0.7-24.el9", "1:3.0.7-27.el9",
                      "rocky-9", "binary", True, "openssl"),
        PendingUpdate("tzdata", "noarch", "rpm", "2023c-1.el9", "0:2024a-1.el9", "rocky-9",
                      "binary", True, "tzdata"),
    ]
    # A --rpm-security repository is the release's security channel: its newer builds are fixes.
    assert [(a.package, a.installed_version, a.fixed_version, a.source, a.summary)
            for a in result.advisories] == [
        ("openssl-devel", "1:3.0.7-24.el9", "3.0.7-27.el9", "security",
         "rocky-9 has source `openssl` `3.0.7-27.el9`"),
        ("openssl-libs", "1:3.0.7-24.el9", "1:3.0.7-27.el9", "security",
         "rocky-9 has `1:3.0.7-27.el9`"),
        ("tzdata", "2023c-1.el9", "0:2024a-1.el9", "security", "rocky-9 has `0:2024a-1.el9`"),
    ]
    assert result.problems == ()


def test_rpm_repo_without_a_security_channel_names_the_sync_to_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    www = tmp_path / "www"
    write_rpm_repo(www / "baseos", "gz")
    cache = tmp_path / "cache"
    with serve(www) as (url, _counts):
        assert run_cli("sync", "--feeds", str(cache), "--rpm", f"rocky-9={url}/baseos") == 0
    assert capsys.readouterr().err == (
        "imageaudit: warning: this snapshot has no advisory source (a -security suite from "
        "--debian/--ubuntu, --rpm-security, or --osv): scan cannot evaluate "
        "vulnerable_package_fix_available with it\n")
    result = assess(RockyFacts(), cache)
    assert result.advisories == ()
    assert [(p.feed, p.message) for p in result.problems] == [(
        "security", f"the feed snapshot {open_snapshot(cache).directory} has no security channel "
        "of the image's release rpm:rocky-9 (only rocky-9); run imageaudit feeds sync "
        "--rpm-security rocky-9=URL (a repository of the release's security updates) or --osv "
        "with its OSV dump, then scan --feeds DIR")]


def test_rpm_primary_with_a_wrong_checksum_is_refused(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    write_rpm_repo(tmp_path / "www/baseos", checksum="0" * 64)
    with serve(tmp_path / "www") as (url, _counts):
        assert run_cli("sync", "--feeds", str(tmp_path / "c"), "--rpm",
                       f"rocky-9={url}/baseos") == 1
    assert "repodata/abc-primary.xml.gz: sha256 differs from repomd.xml" in capsys.readouterr().err


def test_repomd_and_primary_parsing() -> None:
    ref = parse_repomd(repomd("repodata/p.xml.gz", b"abc"))
    assert (ref.href, ref.checksum_type, ref.size) == ("repodata/p.xml.gz", "sha256", 3)
    rows = list(iter_primary(primary_xml()))
    assert rows[0] == ["openssl-libs", "1:3.0.7-27.el9", "x86_64", "openssl", "3.0.7-27.el9"]
    assert len(rows) == 6  # the src package is left out
    with pytest.raises(FeedError, match="no usable"):
        parse_repomd(b"<repomd xmlns='http://linux.duke.edu/metadata/repo'/>")
    with pytest.raises(FeedError, match="not XML"):
        list(iter_primary(b"<metadata><package"))


APKINDEX = """\
C:Q1abc=
P:musl
V:1.2.4_git20230717-r5
A:x86_64
o:musl

C:Q1def=
P:libcrypto3
V:3.1.7-r1
A:x86_64
o:openssl

C:Q1ghi=
P:libssl3
V:3.1.7-r1
A:x86_64
o:openssl

P:busybox
V:1.36.1-r15
A:x86_64
o:busybox
"""


def _tar_member(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info.tobuf(format=tarfile.USTAR_FORMAT) + data + b"\0" * (-len(data) % 512)


def apkindex_tar_gz() -> bytes:
    # Like abuild: a signature tar stream without end blocks, then the index tar, each gzipped.
    signature = gzip.compress(_tar_member(".SIGN.RSA.test.rsa.pub", b"sig"))
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w") as tar:
        for name, text in (("DESCRIPTION", b"v3.19.4\n"), ("APKINDEX", APKINDEX.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
    return signature + gzip.compress(body.getvalue())


def test_alpine_index_sync_and_match(tmp_path: Path) -> None:
    www = tmp_path / "www"
    for repo in ("main", "community"):
        path = www / "v3.19" / repo / "x86_64" / "APKINDEX.tar.gz"
        path.parent.mkdir(parents=True)
        path.write_bytes(apkindex_tar_gz() if repo == "main" else _empty_index())
    cache = tmp_path / "cache"
    with serve(www) as (url, _counts):
        assert run_cli("sync", "--feeds", str(cache), "--alpine", "v3.19", "--alpine-mirror",
                       url) == 0
    installed = "".join(
        f"C:Q1x=\nP:{name}\nV:{version}\nA:x86_64\no:{origin}\n\n"
        for name, version, origin in (("musl", "1.2.4_git20230717-r4", "musl"),
                                      ("libssl3", "3.1.4-r5", "openssl"),
                                      ("busybox", "1.36.1-r15", "busybox"),
                                      ("openssl", "3.1.4-r5", "openssl"))
    )
    write_tree({"/etc/os-release": "ID=alpine\nVERSION_ID=3.19.1\n",
                "/lib/apk/db/installed": installed}, tmp_path / "img")
    with DirectoryFS(tmp_path / "img") as fs:
        facts = collect_facts(fs)
    result = assess(facts, cache)
    assert result.release == "v3.19"
    assert [(p.package, p.installed_version, p.available_version, p.matched_by)
            for p in result.pending] == [
        ("libssl3", "3.1.4-r5", "3.1.7-r1", "binary"),
        ("musl", "1.2.4_git20230717-r4", "1.2.4_git20230717-r5", "binary"),
        ("openssl", "3.1.4-r5", "3.1.7-r1", "source"),
    ]
    assert result.feeds[0].verified is False
    assert result.advisories == ()
    assert [(p.feed, p.message) for p in result.problems] == [(
        "security", "Alpine has no separate security channel; run imageaudit feeds sync --osv "
        "https://osv-vulnerabilities.storage.googleapis.com/Alpine/all.zip, then scan --feeds DIR")]


def _empty_index() -> bytes:
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w") as tar:
        info = tarfile.TarInfo("APKINDEX")
        tar.addfile(info, io.BytesIO(b""))
    return gzip.compress(body.getvalue())
