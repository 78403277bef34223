"""The ``filehashes`` collector: which files are hashed, why, and what is left out."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from imageaudit.facts import filehashes
from imageaudit.facts.base import CollectContext
from imageaudit.facts.filehashes import FileHashesFacts, NotHashed, collect
from imageaudit.openers.directory import DirectoryFS
from tests.scenario import Dir, File, Scenario, write_tree

ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 57


def run(tree: Scenario, tmp_path: Path) -> FileHashesFacts:
    root = write_tree(tree, tmp_path / "root")
    with DirectoryFS(root) as fs:
        return collect(CollectContext(fs=fs))


def test_what_is_hashed_and_why(tmp_path: Path) -> None:
    facts = run({
        "/usr/bin/tool": File(ELF, mode=0o755),
        "/usr/lib/x86_64-linux-gnu/libz.so.1": File(ELF),
        "/usr/lib/x86_64-linux-gnu/not-a-lib.so.txt": File("text"),  # named .so, no ELF
        "/usr/share/doc/readme": File("plain data"),  # nothing asks about it
        "/etc/cron.d/job": File("* * * * * root /tmp/.x\n"),
        "/etc/ld.so.preload": File("/lib/libevil.so\n"),
        "/lib/x86_64-linux-gnu/security/pam_evil.so": File(ELF),
        "/tmp": Dir(mode=0o1777),
        "/tmp/.x": File("#!/bin/sh\necho\n", mode=0o755),
        "/root/notes.txt": File("hello"),
        "/home/alice/.profile": File("export X=1\n"),
    }, tmp_path)
    got = {f.path: f.kinds for f in facts.files}
    assert got == {
        "/etc/cron.d/job": ("persistence",),
        "/etc/ld.so.preload": ("persistence",),
        "/home/alice/.profile": ("home",),
        "/lib/x86_64-linux-gnu/security/pam_evil.so": ("persistence", "elf"),
        "/root/notes.txt": ("home",),
        "/tmp/.x": ("exec", "writable", "script"),
        "/usr/bin/tool": ("exec", "elf"),
        "/usr/lib/x86_64-linux-gnu/libz.so.1": ("elf",),
    }
    tool = next(f for f in facts.files if f.path == "/usr/bin/tool")
    assert (tool.sha256, tool.sha1, tool.md5, tool.size) == (
        hashlib.sha256(ELF).hexdigest(), hashlib.sha1(ELF).hexdigest(),
        hashlib.md5(ELF).hexdigest(), len(ELF))
    assert [f.path for f in facts.files] == sorted(got)
    assert facts.complete and facts.not_hashed == ()


def test_caps_are_said_never_silent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filehashes, "MAX_FILE_BYTES", 10)
    monkeypatch.setattr(filehashes, "MAX_FILES", 2)
    facts = run({
        "/usr/bin/a": File("#!/bin/sh\n", mode=0o755),
        "/usr/bin/big": File("#!/bin/sh\n" + "x" * 100, mode=0o755),
        "/usr/bin/c": File("#!/bin/sh\n", mode=0o755),
        "/usr/bin/d": File("#!/bin/sh\n", mode=0o755),
    }, tmp_path)
    assert [f.path for f in facts.files] == ["/usr/bin/a", "/usr/bin/c"]
    assert not facts.complete
    assert facts.not_hashed_count == 2
    assert facts.not_hashed == (NotHashed("/usr/bin/big", "larger than 10 bytes"),
                                NotHashed("/usr/bin/d", "more than 2 files to hash"))
