from __future__ import annotations

from pathlib import Path

from imageaudit.facts.base import CollectContext
from imageaudit.facts.packages import COLLECTOR, collect
from imageaudit.facts.packages.model import PackageDatabase, split_source_rpm
from imageaudit.model import to_jsonable
from imageaudit.openers.directory import DirectoryFS
from tests.scenario import write_tree


def test_managers_together_sorted(tmp_path: Path) -> None:
    root = write_tree(
        {
            "/var/lib/dpkg/status": (
                "Package: zlib1g\nVersion: 1.2\n\nPackage: adduser\nVersion: 3\n"
            ),
            "/lib/apk/db/installed": "P:musl\nV:1.2.4-r2\n",
        },
        tmp_path / "root",
    )
    facts = collect(CollectContext(fs=DirectoryFS(root)))
    assert [(p.manager, p.name) for p in facts.packages] == [
        ("apk", "musl"), ("dpkg", "adduser"), ("dpkg", "zlib1g")
    ]  # fmt: skip
    assert facts.databases == (
        PackageDatabase("dpkg", "dpkg-status", "/var/lib/dpkg/status", 2),
        PackageDatabase("apk", "apk-installed", "/lib/apk/db/installed", 1),
    )
    assert facts.managers == ("apk", "dpkg")
    assert [p.full_version for p in facts.named("musl", "apk")] == ["1.2.4-r2"]
    assert facts.named("musl", "dpkg") == ()
    assert to_jsonable(facts.packages[0]) == {
        "name": "musl",
        "version": "1.2.4-r2",
        "epoch": None,
        "release": None,
        "arch": None,
        "source_name": "musl",
        "source_version": "1.2.4-r2",
        "manager": "apk",
        "status": "installed",
        "source": {"path": "/lib/apk/db/installed", "line": 1},
        "owned_count": 0,
    }


def test_collector_declaration() -> None:
    assert COLLECTOR.name == "packages"
    assert "/var/lib/dpkg/status" in COLLECTOR.patterns
    assert "/var/lib/rpm/rpmdb.sqlite" in COLLECTOR.patterns
    assert "/lib/apk/db/installed" in COLLECTOR.patterns


def test_split_source_rpm() -> None:
    assert split_source_rpm("bash-5.1.8-6.el9.src.rpm") == ("bash", "5.1.8-6.el9")
    assert split_source_rpm("kernel-rt-5.14.0-1.nosrc.rpm") == ("kernel-rt", "5.14.0-1")
    assert split_source_rpm("garbage") == (None, None)
    assert split_source_rpm("x-1.src.rpm") == (None, None)
