from __future__ import annotations

from pathlib import Path

from imageaudit.facts.base import CollectContext
from imageaudit.facts.packages import PackagesFacts, collect
from imageaudit.facts.packages.model import InstalledPackage, PackageDatabase, PackageError
from imageaudit.model import Source
from imageaudit.openers.directory import DirectoryFS
from tests.scenario import write_tree

DB = "/lib/apk/db/installed"

INSTALLED = """\
C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
o:musl
t:1695000000
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1xyz=
R:libc.musl-x86_64.so.1

P:busybox-binsh
V:1.36.1-r15
A:x86_64
o:busybox
R:toplevel-file
F:bin
R:sh
F:etc/busybox-paths.d
R:busybox-binsh
"""


def collect_tree(root: Path) -> PackagesFacts:
    return collect(CollectContext(fs=DirectoryFS(root)))


def test_installed_database(tmp_path: Path) -> None:
    facts = collect_tree(write_tree({DB: INSTALLED}, tmp_path / "root"))
    assert facts.packages == (
        InstalledPackage("busybox-binsh", "1.36.1-r15", None, None, "x86_64", "busybox",
                         "1.36.1-r15", "apk", "installed", Source(DB, 14), 5,
                         frozenset({"/toplevel-file", "/bin", "/bin/sh", "/etc/busybox-paths.d",
                                    "/etc/busybox-paths.d/busybox-binsh"})),
        InstalledPackage("musl", "1.2.4-r2", None, None, "x86_64", "musl", "1.2.4-r2", "apk",
                         "installed", Source(DB, 1), 3,
                         frozenset({"/lib", "/lib/ld-musl-x86_64.so.1",
                                    "/lib/libc.musl-x86_64.so.1"})),
    )  # fmt: skip
    assert facts.databases == (PackageDatabase("apk", "apk-installed", DB, 2),)
    assert facts.errors == ()
    assert facts.managers == ("apk",)
    assert [p.name for p in facts.owners("/bin/sh")] == ["busybox-binsh"]


def test_malformed_lines_and_nameless_stanza(tmp_path: Path) -> None:
    text = "P:ok\nV:1\nthis is not apk\n\nV:2\nA:x86_64\n"
    facts = collect_tree(write_tree({DB: text}, tmp_path / "root"))
    assert [(p.name, p.version) for p in facts.packages] == [("ok", "1")]
    assert facts.errors == (
        PackageError("apk", Source(DB, 3), "line is not X:value"),
        PackageError("apk", Source(DB, 5), "stanza has no P: (name) line"),
    )


def test_binary_garbage(tmp_path: Path) -> None:
    facts = collect_tree(write_tree({DB: bytes(range(256)) * 100}, tmp_path / "root"))
    assert facts.packages == ()
    assert facts.databases == (PackageDatabase("apk", "apk-installed", DB, 0),)
    assert facts.errors[0] == PackageError("apk", Source(DB, 1), "line is not X:value")
