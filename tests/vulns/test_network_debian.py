"""Against the real Debian archive: a bookworm root built from the release suite alone must
show exactly the updates that ``bookworm-security`` offers, as apt itself computes them."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from imageaudit.cli import feeds as feeds_cli
from imageaudit.facts import collect_facts
from imageaudit.openers.directory import DirectoryFS
from imageaudit.vulns.match import assess
from tests.vulns import aptref

pytestmark = [pytest.mark.network, pytest.mark.slow]


def test_bookworm_root_pending_security_updates_equal_apts(tmp_path: Path) -> None:
    from tests.builders.debian import debian_root

    root = debian_root()  # mmdebstrap of the bookworm release suite only
    parser = argparse.ArgumentParser(prog="imageaudit")
    feeds_cli.add_parsers(parser.add_subparsers(dest="command", required=True))
    cache = tmp_path / "feeds"
    args = parser.parse_args(["feeds", "sync", "--dir", str(cache), "--debian", "bookworm"])
    assert args.func(args) == 0

    with DirectoryFS(root) as fs:
        facts = collect_facts(fs)
    result = assess(facts, cache)
    assert result.release == "bookworm"
    ours = {p.package: (p.installed_version, p.available_version)
            for p in result.pending if p.suite == "bookworm-security" and p.matched_by == "binary"}

    options = aptref.apt_options(root, tmp_path / "apt", [
        f"deb [signed-by={aptref.KEYRING}] http://deb.debian.org/debian-security "
        "bookworm-security main contrib non-free non-free-firmware",
    ])
    aptref.update(options)
    theirs, _seconds = aptref.upgradable(options)
    assert ours == theirs
    # A source-only match is a binary the security suite no longer builds: apt cannot see it.
    extra = [p for p in result.pending if p.suite == "bookworm-security" and
             p.matched_by == "source"]
    assert all(p.package not in theirs for p in extra)
