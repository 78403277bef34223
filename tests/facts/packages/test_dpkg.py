from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from imageaudit.facts.base import CollectContext
from imageaudit.facts.packages import PackagesFacts, collect
from imageaudit.facts.packages.dpkg import split_version
from imageaudit.facts.packages.model import InstalledPackage, PackageDatabase, PackageError
from imageaudit.model import Source, to_jsonable
from imageaudit.openers.directory import DirectoryFS
from tests.builders.debian import debian_root_dir  # noqa: F401 - pytest fixture
from tests.scenario import write_tree

STATUS = "/var/lib/dpkg/status"

STATUS_TEXT = """\
Package: libc6
Status: install ok installed
Priority: optional
Multi-Arch: same
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries.
 .
 More text.

Package: bash
Status: install ok installed
Architecture: amd64
Source: bash (5.2.15-2)
Version: 5.2.15-2+b2

Package: oldtool
Status: deinstall ok config-files
Architecture: all
Version: 1:0.1-1

Package: tzdata
Version: 2024a
Architecture: all
Status: install ok unpacked
"""


def collect_tree(root: Path) -> PackagesFacts:
    return collect(CollectContext(fs=DirectoryFS(root)))


def test_status_stanzas_all_kept(tmp_path: Path) -> None:
    root = write_tree(
        {
            STATUS: STATUS_TEXT,
            "/var/lib/dpkg/info/libc6:amd64.list": "/.\n/lib\n/lib/x86_64-linux-gnu/libc.so.6\n",
            "/var/lib/dpkg/info/bash.list": "/.\n/bin\n/bin/bash\n",
            "/var/lib/dpkg/info/bash.md5sums": "abc  bin/bash\n",
        },
        tmp_path / "root",
    )
    facts = collect_tree(root)
    assert facts.packages == (
        InstalledPackage("bash", "5.2.15", None, "2+b2", "amd64", "bash", "5.2.15-2", "dpkg",
                         "install ok installed", Source(STATUS, 13), 3,
                         frozenset({"/", "/bin", "/bin/bash"})),
        InstalledPackage("libc6", "2.36", None, "9+deb12u4", "amd64", "glibc",
                         "2.36-9+deb12u4", "dpkg", "install ok installed", Source(STATUS, 1), 3,
                         frozenset({"/", "/lib", "/lib/x86_64-linux-gnu/libc.so.6"})),
        InstalledPackage("oldtool", "0.1", 1, "1", "all", "oldtool", "1:0.1-1", "dpkg",
                         "deinstall ok config-files", Source(STATUS, 19)),
        InstalledPackage("tzdata", "2024a", None, None, "all", "tzdata", "2024a", "dpkg",
                         "install ok unpacked", Source(STATUS, 24)),
    )  # fmt: skip
    assert facts.databases == (PackageDatabase("dpkg", "dpkg-status", STATUS, 4),)
    assert facts.errors == ()
    assert [p.full_version for p in facts.packages] == [
        "5.2.15-2+b2", "2.36-9+deb12u4", "1:0.1-1", "2024a"
    ]  # fmt: skip
    assert [p.present for p in facts.packages] == [True, True, False, True]
    assert facts.managers == ("dpkg",)
    assert [p.name for p in facts.owners("/bin/bash")] == ["bash"]
    data = to_jsonable(facts)
    assert data["packages"][0]["owned_count"] == 3
    assert "owned_paths" not in data["packages"][0]


@pytest.mark.parametrize(
    ("version", "parts"),
    [
        ("1:2.3-4", (1, "2.3", "4")),
        ("2.3", (None, "2.3", None)),
        ("2.3-4-5", (None, "2.3-4", "5")),
        ("x:2.3", (None, "x:2.3", None)),
        ("", (None, "", None)),
    ],
)
def test_split_version(version: str, parts: tuple[int | None, str, str | None]) -> None:
    assert split_version(version) == parts


def test_absent_empty_and_truncated_status(tmp_path: Path) -> None:
    assert collect_tree(write_tree({"/etc/x": ""}, tmp_path / "a")) == PackagesFacts()
    empty = collect_tree(write_tree({STATUS: ""}, tmp_path / "b"))
    assert empty == PackagesFacts(databases=(PackageDatabase("dpkg", "dpkg-status", STATUS, 0),))
    cut = "Package: bash\nStatus: install ok installed\nVersion: 5.2\n\nPackage: zsh\nVers"
    facts = collect_tree(write_tree({STATUS: cut}, tmp_path / "c"))
    assert [(p.name, p.version) for p in facts.packages] == [("bash", "5.2"), ("zsh", "")]
    assert facts.errors == (PackageError("dpkg", Source(STATUS, 6), "line is not a field"),)


def test_malformed_stanzas(tmp_path: Path) -> None:
    text = (
        " orphan continuation\n"
        "Status: install ok installed\nVersion: 1\n\n"
        "Package: a\nPackage: b\nVersion: 1\n"
    )
    facts = collect_tree(write_tree({STATUS: text}, tmp_path / "root"))
    assert [p.name for p in facts.packages] == ["a"]
    assert facts.errors == (
        PackageError("dpkg", Source(STATUS, 1), "continuation line outside a field"),
        PackageError("dpkg", Source(STATUS, 6), "duplicate field Package"),
        PackageError("dpkg", Source(STATUS, 2), "stanza has no Package field"),
    )


def test_binary_garbage_is_bounded_and_fast(tmp_path: Path) -> None:
    garbage = bytes(range(256)) * 4000 + b"\n\x00\xff\n" * 50_000
    root = write_tree({STATUS: garbage}, tmp_path / "root")
    start = time.monotonic()
    facts = collect_tree(root)
    assert time.monotonic() - start < 5
    assert facts.packages == ()
    assert len(facts.errors) == 201
    assert facts.errors[0] == PackageError("dpkg", Source(STATUS, 1), "line is not a field")
    assert facts.errors[-1].message.endswith("further malformed lines")


def test_distroless_status_d(tmp_path: Path) -> None:
    root = write_tree(
        {
            "/var/lib/dpkg/status.d/base-files": (
                "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n"
            ),
            "/var/lib/dpkg/status.d/base-files.md5sums": (
                "0123  etc/debian_version\n4567  usr/lib/os-release\n"
            ),
            "/var/lib/dpkg/status.d/tzdata": (
                "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\nSource: tzdata\n"
            ),
        },
        tmp_path / "root",
    )
    facts = collect_tree(root)
    assert facts.packages == (
        InstalledPackage("base-files", "12.4+deb12u5", None, None, "amd64", "base-files",
                         "12.4+deb12u5", "dpkg", None,
                         Source("/var/lib/dpkg/status.d/base-files", 1), 2,
                         frozenset({"/etc/debian_version", "/usr/lib/os-release"})),
        InstalledPackage("tzdata", "2024a", None, "0+deb12u1", "all", "tzdata",
                         "2024a-0+deb12u1", "dpkg", None,
                         Source("/var/lib/dpkg/status.d/tzdata", 1)),
    )  # fmt: skip
    assert facts.databases == (
        PackageDatabase("dpkg", "dpkg-status.d", "/var/lib/dpkg/status.d", 2),
    )


@pytest.mark.network
@pytest.mark.slow
def test_real_debian_root_matches_dpkg_query(debian_root_dir: Path) -> None:  # noqa: F811
    if not shutil.which("dpkg-query"):
        pytest.skip("needs the host's dpkg-query as the reference")
    admindir = debian_root_dir / "var/lib/dpkg"
    reference = subprocess.run(
        ["dpkg-query", f"--admindir={admindir}", "-W", "-f",
         "${Package} ${Version} ${Architecture} ${source:Package} ${source:Version}\\n"],
        check=True, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"},
    ).stdout  # fmt: skip
    facts = collect_tree(debian_root_dir)
    ours = [
        f"{p.name} {p.full_version} {p.arch} {p.source_name} {p.source_version}"
        for p in facts.packages
    ]
    assert sorted(ours) == sorted(reference.splitlines())
    assert facts.errors == ()
    assert [p.name for p in facts.owners("/usr/sbin/sshd")] == ["openssh-server"]
    assert all(p.owned_count > 0 for p in facts.packages)
