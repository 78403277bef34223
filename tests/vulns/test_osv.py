"""OSV loading (directory, zip, hostile inputs), ecosystem keys, severity and matching."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from imageaudit.facts import Facts, collect_facts
from imageaudit.facts.os import OSFacts, OSValue
from imageaudit.facts.packages.model import InstalledPackage
from imageaudit.model import Severity, Source
from imageaudit.openers.directory import DirectoryFS
from imageaudit.vulns.osv import (
    OSVLimits,
    OSVLoadError,
    index_records,
    load_osv,
    match_osv,
    osv_coverage,
)
from imageaudit.vulns.osv_ecosystems import ecosystem_key
from imageaudit.vulns.osv_severity import cvss_base_score, record_severity, severity_of_score
from tests.scenario import write_tree
from tests.vulns import osv_data as data


def facts_of(tree: dict[str, str], root: Path) -> Facts:
    write_tree(tree, root)
    with DirectoryFS(root) as fs:
        return collect_facts(fs)


def matches_of(
    tree: dict[str, str], root: Path, records: object
) -> set[tuple[str, str, str | None]]:
    facts = facts_of(tree, root)
    assert facts.packages is not None
    found = match_osv(facts.packages.packages, facts.os, index_records(records))  # type: ignore[arg-type]
    return {(m.id, m.package, m.fixed_version) for m in found}


@pytest.mark.parametrize(
    ("ecosystem", "key"),
    [
        ("Debian:12", ("debian", "12")),
        ("Ubuntu:22.04:LTS", ("ubuntu", "22.04")),
        ("Ubuntu:24.10", ("ubuntu", "24.10")),
        ("Ubuntu:Pro:18.04:LTS", None),
        ("Alpine:v3.19", ("alpine", "3.19")),
        ("Rocky Linux:9", ("rocky", "9")),
        ("AlmaLinux:8", ("almalinux", "8")),
        ("Red Hat:enterprise_linux:9::appstream", ("redhat", "9")),
        ("Red Hat:rhel_eus:9.2::appstream", None),
        ("SUSE:Linux Enterprise Server 15 SP5", ("suse", "15.5")),
        ("SUSE:Linux Enterprise Module for Basesystem 15 SP6", ("suse", "15.6")),
        ("SUSE:Linux Enterprise Server 12 SP5-LTSS", ("suse", "12.5")),
        ("SUSE:Linux Enterprise Micro 5.5", None),
        ("openSUSE:Leap 15.6", ("opensuse", "leap 15.6")),
        ("PyPI", None),
        ("npm", None),
    ],
)
def test_ecosystem_keys(ecosystem: str, key: tuple[str, str] | None) -> None:
    assert ecosystem_key(ecosystem) == key


def test_directory_and_zip_give_the_same_index(tmp_path: Path) -> None:
    as_dir = load_osv([data.write_dir(tmp_path / "Debian", data.ALL_RECORDS)])
    as_zip = load_osv([data.write_zip(tmp_path / "dumps" / "all.zip", data.ALL_RECORDS)])
    assert as_dir.entries.keys() == as_zip.entries.keys()
    assert sorted(as_dir.entries) == [
        ("alpine", "3.19", "openssl"),
        ("debian", "11", "glibc"),
        ("debian", "12", "glibc"),
        ("debian", "12", "zlib"),
        ("redhat", "9", "sudo"),
        ("rocky", "9", "openssl-libs"),
        ("suse", "15.5", "gzip"),
        ("ubuntu", "22.04", "ncurses"),
    ]
    assert (as_dir.withdrawn, as_zip.withdrawn) == (1, 1)
    assert (as_dir.stats.records, as_zip.stats.records) == (9, 9)
    # A directory of zips (osv.dev's <Ecosystem>/all.zip layout) is read too.
    assert load_osv([tmp_path / "dumps"]).entries.keys() == as_dir.entries.keys()


def test_wanted_releases_only(tmp_path: Path) -> None:
    index = load_osv([data.write_dir(tmp_path, data.ALL_RECORDS)], wanted={("debian", "12")})
    assert sorted(index.entries) == [("debian", "12", "glibc"), ("debian", "12", "zlib")]


def test_bad_records_are_reported_not_raised(tmp_path: Path) -> None:
    root = data.write_dir(tmp_path / "osv", [data.DSA_5514_1])
    (root / "junk.json").write_text("not json at all")
    (root / "list.json").write_text("[1, 2]")
    (root / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "big.json").write_text(json.dumps({"id": "X", "details": "x" * 5000}))
    (root / "README.md").write_text("ignored")
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(data.USN_6587_1))
    (root / "link.json").symlink_to(outside)
    index = load_osv([root], limits=OSVLimits(max_record_bytes=4096))
    assert sorted(index.entries) == [("debian", "11", "glibc"), ("debian", "12", "glibc")]
    assert index.stats.unreadable == 4
    problems = sorted(p.replace(str(root), "ROOT") for p in index.stats.problems or [])
    assert problems == [
        "ROOT/big.json: larger than 4096 bytes",
        "ROOT/deep.json: larger than 4096 bytes",
        "ROOT/junk.json: not a JSON document (JSONDecodeError)",
        "ROOT/list.json: not an OSV record (no `id`)",
    ]
    index = load_osv([root])
    assert "ROOT/deep.json: not a JSON document (RecursionError)" in [
        p.replace(str(root), "ROOT") for p in index.stats.problems or []
    ]


def test_zip_member_lying_about_its_size_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "all.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("DSA-5514-1.json", json.dumps(data.DSA_5514_1))
        archive.writestr("bomb.json", "{" + " " * 10_000_000 + "}")
    index = load_osv([path], limits=OSVLimits(max_record_bytes=64 * 1024))
    assert sorted(index.entries) == [("debian", "11", "glibc"), ("debian", "12", "glibc")]
    assert index.stats.problems == [f"{path}!bomb.json: larger than 65536 bytes"]


def test_record_cap_stops_the_load(tmp_path: Path) -> None:
    root = data.write_dir(tmp_path, data.ALL_RECORDS)
    index = load_osv([root], limits=OSVLimits(max_records=2))
    assert index.stats.records == 2 and index.stats.truncated


def test_missing_source_raises(tmp_path: Path) -> None:
    with pytest.raises(OSVLoadError, match="no such OSV directory or zip file"):
        load_osv([tmp_path / "nope"])


def test_severity_from_vectors_and_words() -> None:
    assert cvss_base_score("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    assert cvss_base_score("CVSS_V3", "CVSS:3.1/AV:N/garbage") is None
    assert cvss_base_score(
        "CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
    ) == 9.3
    assert [severity_of_score(s) for s in (9.0, 8.9, 7.0, 6.9, 4.0, 3.9, 0.1, 0.0)] == [
        Severity.CRITICAL, Severity.HIGH, Severity.HIGH, Severity.MODERATE,
        Severity.MODERATE, Severity.LOW, Severity.LOW, None,
    ]
    rocky = record_severity(data.RLSA_2024_1, data.RLSA_2024_1["affected"][0])
    assert (rocky.severity, rocky.score, rocky.basis) == (Severity.CRITICAL, 9.8, "CVSS_V3")
    debian = record_severity(data.DEBIAN_CVE_2023_4911, data.DEBIAN_CVE_2023_4911["affected"][0])
    assert (debian.severity, debian.score) == (Severity.HIGH, 7.8)  # the vector beats urgency
    ubuntu = record_severity(data.USN_6587_1, data.USN_6587_1["affected"][0])
    assert (ubuntu.severity, ubuntu.basis) == (Severity.MODERATE, "Ubuntu")
    redhat = record_severity(data.RHSA_2025_9978, data.RHSA_2025_9978["affected"][0])
    assert (redhat.severity, redhat.basis) == (Severity.HIGH, "severity")
    urgency = {"ecosystem_specific": {"urgency": "unimportant"}}
    assert record_severity({}, urgency).severity is Severity.INFO
    unassigned = {"ecosystem_specific": {"urgency": "not yet assigned"}}
    assert record_severity({}, unassigned).severity is None


def test_debian_matches_by_source_package_and_version(tmp_path: Path) -> None:
    found = matches_of(data.BOOKWORM_TREE, tmp_path / "r", data.ALL_RECORDS)
    assert found == {
        ("DSA-5514-1", "libc6", "2.36-9+deb12u3"),
        ("DSA-5514-1", "libc-bin", "2.36-9+deb12u3"),
        ("DEBIAN-CVE-2023-4911", "libc6", "2.36-9+deb12u3"),
        ("DEBIAN-CVE-2023-4911", "libc-bin", "2.36-9+deb12u3"),
        ("DEBIAN-CVE-2024-58382", "zlib1g", None),
    }


def test_fixed_and_newer_versions_are_not_affected(tmp_path: Path) -> None:
    tree = dict(data.BOOKWORM_TREE)
    tree["/var/lib/dpkg/status"] = data.dpkg_status(
        ("libc6", "2.36-9+deb12u3", "glibc"),
        ("libc-bin", "2.36-9+deb12u10", "glibc"),
        ("zlib1g", "1:1.2.13.dfsg-1+b1", "zlib (1:1.2.13.dfsg-2)"),
    )
    # The zlib record has no fix: ``introduced: 0`` alone affects every version.
    assert matches_of(tree, tmp_path / "r", data.ALL_RECORDS) == {
        ("DEBIAN-CVE-2024-58382", "zlib1g", None)
    }


def test_bullseye_gets_the_bullseye_fix(tmp_path: Path) -> None:
    tree = {
        "/etc/os-release": 'ID=debian\nVERSION_ID="11"\n',
        "/var/lib/dpkg/status": data.dpkg_status(("libc6", "2.31-13+deb11u5", "glibc")),
    }
    assert matches_of(tree, tmp_path / "r", data.ALL_RECORDS) == {
        ("DSA-5514-1", "libc6", "2.31-13+deb11u7")
    }


def test_ranges_introduced_and_last_affected(tmp_path: Path) -> None:
    record = {
        "id": "DLA-1",
        "affected": [{
            "package": {"ecosystem": "Debian:12", "name": "bash"},
            "ranges": [{"type": "ECOSYSTEM", "events": [
                {"introduced": "5.2.15-1"}, {"fixed": "5.2.15-2"},
                {"introduced": "5.2.15-3"}, {"last_affected": "5.2.15-4"},
            ]}],
        }],
    }
    for version, expected in [
        ("5.2.14-1", set()),
        ("5.2.15-1", {("DLA-1", "bash", "5.2.15-2")}),
        ("5.2.15-2", set()),
        ("5.2.15-3", {("DLA-1", "bash", None)}),
        ("5.2.15-4", {("DLA-1", "bash", None)}),
        ("5.2.15-5", set()),
    ]:
        tree = {"/etc/os-release": 'ID=debian\nVERSION_ID="12"\n',
                "/var/lib/dpkg/status": data.dpkg_status(("bash", version, None))}
        assert matches_of(tree, tmp_path / version, [record]) == expected, version


def test_ubuntu_versions_list_and_pro_ignored(tmp_path: Path) -> None:
    tree = {
        "/etc/os-release": 'ID=ubuntu\nVERSION_ID="22.04"\n',
        "/var/lib/dpkg/status": data.dpkg_status(("libncursesw6", "6.3-2", "ncurses")),
    }
    assert matches_of(tree, tmp_path / "r", data.ALL_RECORDS) == {
        ("USN-6587-1", "libncursesw6", "6.3-2ubuntu0.1")
    }


def test_alpine_matches_by_origin(tmp_path: Path) -> None:
    tree = {
        "/etc/os-release": 'ID=alpine\nVERSION_ID=3.19.1\n',
        "/lib/apk/db/installed": "P:libcrypto3\nV:3.1.4-r0\nA:x86_64\no:openssl\n\n"
        "P:libssl3\nV:3.1.4-r1\nA:x86_64\no:openssl\n\n",
    }
    assert matches_of(tree, tmp_path / "r", data.ALL_RECORDS) == {
        ("ALPINE-CVE-2023-5678", "libcrypto3", "3.1.4-r1")
    }


def test_coverage_messages(tmp_path: Path) -> None:
    index = index_records(data.ALL_RECORDS)
    fedora = facts_of({"/etc/os-release": "ID=fedora\nVERSION_ID=40\n"}, tmp_path / "f")
    assert osv_coverage(fedora.os, index) == "no OSV ecosystem is known for fedora 40"
    trixie = facts_of({"/etc/os-release": "ID=debian\nVERSION_ID=13\n"}, tmp_path / "t")
    assert osv_coverage(trixie.os, index) == "the OSV feed holds no advisories for Debian 13"
    bookworm = facts_of({"/etc/os-release": "ID=debian\nVERSION_ID=12\n"}, tmp_path / "b")
    assert osv_coverage(bookworm.os, index) is None


def _rpm(name: str, epoch: int | None, version: str, release: str, srpm: str) -> InstalledPackage:
    return InstalledPackage(
        name=name, version=version, epoch=epoch, release=release, arch="x86_64",
        source_name=srpm, source_version=f"{version}-{release}", manager="rpm",
        status=None, source=Source("/var/lib/rpm/rpmdb.sqlite"),
    )


def _os(ident: str, version: str) -> OSFacts:
    src = Source("/etc/os-release")
    return OSFacts(kind="directory", id=OSValue(ident, src), version_id=OSValue(version, src))


def test_rpm_matches_by_binary_name_with_epoch() -> None:
    index = index_records(data.ALL_RECORDS)
    old = _rpm("openssl-libs", 1, "3.0.7", "24.el9", "openssl")
    new = _rpm("openssl-libs", 1, "3.0.7", "25.el9_3", "openssl")
    found = match_osv([old], _os("rocky", "9.3"), index)
    assert [(m.id, m.package, m.installed_version, m.fixed_version, m.severity) for m in found] == [
        ("RLSA-2024:0001", "openssl-libs", "1:3.0.7-24.el9", "1:3.0.7-25.el9_3", Severity.CRITICAL)
    ]
    assert match_osv([new], _os("rocky", "9.3"), index) == ()
    assert match_osv([old], _os("almalinux", "9.3"), index) == ()


def test_rhel_main_stream_only_and_suse_modules() -> None:
    index = index_records(data.ALL_RECORDS)
    sudo = _rpm("sudo", None, "1.9.5p2", "9.el9", "sudo")
    found = match_osv([sudo], _os("rhel", "9.4"), index)
    assert [(m.id, m.fixed_version) for m in found] == [("RHSA-2025:9978", "0:1.9.5p2-10.el9_6.1")]
    gzip = _rpm("gzip", None, "1.10", "150200.7.1", "gzip")
    found = match_osv([gzip], _os("sles", "15.5"), index)
    assert [(m.id, m.fixed_version) for m in found] == [("SUSE-SU-2024:0001-1", "1.10-150200.10.1")]
    assert match_osv([gzip], _os("sles", "15.6"), index) == ()


@pytest.mark.parametrize("key", [
    ("debian", "12"), ("ubuntu", "22.04"), ("alpine", "3.19"), ("rocky", "9"),
    ("almalinux", "8"), ("redhat", "9"), ("suse", "15.5"), ("suse", "12"),
    ("opensuse", "leap 15.5"), ("opensuse", "tumbleweed"),
])
def test_an_inventory_s_ecosystem_name_reads_back_to_its_key(key: tuple[str, str]) -> None:
    from imageaudit.vulns.osv_ecosystems import osv_name

    assert ecosystem_key(osv_name(key)) == key
