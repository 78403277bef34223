"""The text view of the facts shows hostile strings from the image escaped, never obeyed."""

from __future__ import annotations

import os
from pathlib import Path

from imageaudit.facts import collect_facts
from imageaudit.openers.directory import DirectoryFS
from imageaudit.report.facts_text import render_facts_text
from tests.scenario import write_tree


def test_file_names_are_escaped_like_in_reports(tmp_path: Path) -> None:
    root = write_tree({"/etc/os-release": "ID=debian\nVERSION_ID=12\n"}, tmp_path / "root")
    (root / "srv").mkdir()
    # Not valid UTF-8, an ANSI colour sequence and a right-to-left override; world-writable,
    # so the name shows up in the facts.
    bad = root / "srv" / os.fsdecode(b"bad\xff\x1b[31mname\xe2\x80\xae")
    bad.write_bytes(b"x")
    bad.chmod(0o777)
    fs = DirectoryFS(root)
    try:
        text = render_facts_text(collect_facts(fs))
    finally:
        fs.close()
    assert "/srv/bad\\xff\\x1b[31mname\\u202e" in text
    assert not any(c in text for c in "\x1b\u202e\udcff")
