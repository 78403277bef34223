"""A scanned directory is never published: it has no image file whose SHA-512 a catalogue could
bind the report to. The real command line, a root filesystem built by the tests, and a stub
catalogue on 127.0.0.1 that must see no request."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders.example_tree import clean_scenario
from tests.publish.stub_catalogue import CatalogueState, StubCatalogue
from tests.scenario import write_tree

TOKEN = "auditor-token-1"
REFUSAL = ("a directory has no image file whose SHA-512 a catalogue could bind the report to; "
           "publish the image file instead")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imageaudit", *args], capture_output=True, text=True, check=False
    )


@pytest.fixture
def catalogue() -> Iterator[StubCatalogue]:
    stub = StubCatalogue(CatalogueState(tokens={TOKEN: "auditor"})).start()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture
def auditor(tmp_path: Path) -> list[str]:
    """``--token``, ``--signing-key`` and ``--store`` options that would let a report go."""
    key = tmp_path / "auditor.key"
    made = _cli("keys", "generate", str(key))
    assert made.returncode == 0, made.stderr
    return ["--token", TOKEN, "--signing-key", str(key),
            "--store", f"sqlite:///{tmp_path / 'results.db'}"]


def _outbox(auditor: list[str]) -> str:
    listed = _cli("outbox", "list", "--all", "--store", auditor[-1])
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def test_scan_of_a_directory_with_publish_is_refused_before_scanning(
    tmp_path: Path, catalogue: StubCatalogue, auditor: list[str]
) -> None:
    root = write_tree(clean_scenario(), tmp_path / "root")
    done = _cli("scan", str(root), "--format", "json", "--publish", "--catalogue", catalogue.url,
                *auditor)
    assert (done.returncode, done.stdout) == (2, "")  # no report: nothing was scanned
    assert done.stderr == f"imageaudit: error: --publish: {root}: {REFUSAL}\n"
    assert catalogue.state.requests == []
    assert _outbox(auditor) == "outbox empty\n"


def test_the_old_publish_url_spelling_warns_and_is_refused_the_same(
    tmp_path: Path, catalogue: StubCatalogue, auditor: list[str]
) -> None:
    root = write_tree(clean_scenario(), tmp_path / "root")
    done = _cli("scan", str(root), "--format", "json", "--publish", catalogue.url, *auditor)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "imageaudit: warning: --publish URL is deprecated; use --catalogue URL --publish\n"
        f"imageaudit: error: --publish: {root}: {REFUSAL}\n")
    assert catalogue.state.requests == []


def test_publishing_the_report_of_a_directory_scan_is_refused(
    tmp_path: Path, catalogue: StubCatalogue, auditor: list[str]
) -> None:
    root = write_tree(clean_scenario(), tmp_path / "root")
    report = tmp_path / "report.json"
    scanned = _cli("scan", str(root), "--format", "json", "-o", str(report), "-q")
    assert scanned.returncode == 0, scanned.stderr
    assert json.loads(report.read_text())["image"]["kind"] == "directory"
    done = _cli("publish", str(report), "--catalogue", catalogue.url, *auditor)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"imageaudit: error: {root}: {REFUSAL}\n"
    assert catalogue.state.requests == []
    assert _outbox(auditor) == "outbox empty\n"
