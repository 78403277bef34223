from __future__ import annotations

from pathlib import Path

from imageaudit.facts.base import CollectContext
from imageaudit.facts.exports import (
    DEFAULT_OPTIONS,
    ExportEntry,
    ExportsFacts,
    ExportsFile,
    collect,
    effective_options,
)
from imageaudit.facts.textlines import MalformedLine
from imageaudit.model import Source
from imageaudit.openers.directory import DirectoryFS
from tests.scenario import Scenario, write_tree

EX = "/etc/exports"


def run(tmp_path: Path, scenario: Scenario) -> ExportsFacts:
    root = write_tree(scenario, tmp_path / "root")
    with DirectoryFS(root) as fs:
        return collect(CollectContext(fs=fs))


def eff(*given: str) -> tuple[str, ...]:
    return effective_options(given)


def test_space_trap_continuation_quotes_and_defaults(tmp_path: Path) -> None:
    facts = run(
        tmp_path,
        {
            EX: (
                "# comment\n"
                "/srv/data host1 (rw,no_root_squash)\n"
                "/srv/ok 10.0.0.0/8(rw,sync) \\\n"
                "    *.example.org(ro)   # trailing comment\n"
                '"/srv/with space" @netgroup(rw)\n'
                "/srv/alone\n"
                "/srv/dash -rw,async h1 h2(ro)\n"
                "/srv/oct\\040dir h(rw)\n"
                "relative h(rw)\n"
                '"/srv/unterminated h(rw)\n'
                "/srv/bad h(rw)(ro)\n"
            ),
            "/etc/exports.d/a.exports": "/export *(rw,insecure)\n",
            "/etc/exports.d/ignored.conf": "/nope *(rw)\n",
        },
    )
    assert facts.files == (ExportsFile(EX, True), ExportsFile("/etc/exports.d/a.exports", True))
    s = Source
    assert facts.entries == (
        ExportEntry(s(EX, 2), "/srv/data", "host1", (), DEFAULT_OPTIONS),
        ExportEntry(
            s(EX, 2),
            "/srv/data",
            "*",
            ("rw", "no_root_squash"),
            eff("rw", "no_root_squash"),
            world_via_space=True,
        ),
        ExportEntry(s(EX, 3), "/srv/ok", "10.0.0.0/8", ("rw", "sync"), eff("rw", "sync")),
        ExportEntry(s(EX, 3), "/srv/ok", "*.example.org", ("ro",), DEFAULT_OPTIONS),
        ExportEntry(s(EX, 5), "/srv/with space", "@netgroup", ("rw",), eff("rw")),
        ExportEntry(s(EX, 6), "/srv/alone", "*", (), DEFAULT_OPTIONS, no_client_given=True),
        ExportEntry(s(EX, 7), "/srv/dash", "h1", ("rw", "async"), eff("rw", "async")),
        ExportEntry(s(EX, 7), "/srv/dash", "h2", ("rw", "async", "ro"), eff("async")),
        ExportEntry(s(EX, 8), "/srv/oct dir", "h", ("rw",), eff("rw")),
        ExportEntry(
            s("/etc/exports.d/a.exports", 1),
            "/export",
            "*",
            ("rw", "insecure"),
            eff("rw", "insecure"),
        ),
    )
    assert facts.entries[1].effective_options == (
        "rw", "sync", "wdelay", "hide", "no_subtree_check", "secure", "no_root_squash",
        "no_all_squash", "secure_locks", "sec=sys", "anonuid=65534", "anongid=65534",
    )  # fmt: skip
    assert facts.malformed == (
        MalformedLine(s(EX, 9), "export path is not absolute", "relative h(rw)"),
        MalformedLine(s(EX, 10), "unterminated quote", '"/srv/unterminated h(rw)'),
        MalformedLine(s(EX, 11), "bad client specification 'h(rw)(ro)'", "/srv/bad h(rw)(ro)"),
    )


def test_absent_empty_and_garbage(tmp_path: Path) -> None:
    assert run(tmp_path / "a", {"/etc/hostname": "x\n"}) == ExportsFacts(
        (ExportsFile(EX, False),), (), ()
    )
    assert run(tmp_path / "b", {EX: ""}) == ExportsFacts((ExportsFile(EX, True),), (), ())
    garbage = run(tmp_path / "c", {EX: b"\x00\xff\xfe\n/ok h\n"})
    assert garbage.entries == (ExportEntry(Source(EX, 2), "/ok", "h", (), DEFAULT_OPTIONS),)
    assert garbage.malformed == (
        MalformedLine(Source(EX, 1), "export path is not absolute", "\x00\ufffd\ufffd"),
    )
    assert eff("anonuid=0", "all_squash")[7:11] == (
        "all_squash",
        "secure_locks",
        "sec=sys",
        "anonuid=0",
    )
    assert eff("fsid=0")[-1] == "fsid=0"
