"""Where ``imageaudit scan`` puts its report, its progress and its errors, for one image or
several: the real CLI in a subprocess on small root directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.builders.example_tree import clean_scenario, weak_scenario
from tests.clitext import diagnostics, progress_lines
from tests.scenario import write_tree

REPO = Path(__file__).resolve().parents[2]


def imageaudit(*args: str | Path, cwd: Path, env: dict[str, str] | None = None,
               ) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEAUDIT_")}
    environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    environ["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "imageaudit", *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={**environ, **(env or {})})


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``good`` (the clean example, level basic) and ``weak`` (level none) side by side."""
    where = tmp_path_factory.mktemp("roots")
    write_tree(clean_scenario(), where / "good")
    write_tree(weak_scenario(), where / "weak")
    return where


def test_text_report_goes_to_stdout_and_progress_to_stderr(roots: Path) -> None:
    done = imageaudit("scan", "good", cwd=roots)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "Level: BASIC   good"
    steps = progress_lines(done.stderr)
    assert steps[:3] == ["good: opening the image", "good: reading the file system",
                         "good: gathering facts: os"]
    assert "good: gathering facts: accounts" in steps
    assert steps[-3:-1] == ["good: judging with 97 rules", "good: writing reports"]
    assert steps[-1].startswith("good: level basic after ")
    # The report is not repeated on stderr: what a pipe sees is all of it.
    assert diagnostics(done.stderr) == []


def test_quiet_leaves_the_report_alone_on_stdout(roots: Path) -> None:
    done = imageaudit("scan", "weak", "-q", cwd=roots)
    assert (done.returncode, done.stderr) == (0, "")
    grep = [ln for ln in done.stdout.splitlines() if "password_empty" in ln and "FAIL" in ln]
    assert grep and all("User" in ln for ln in grep)


def test_json_to_a_file_prints_the_summary_on_stderr_and_nothing_on_stdout(
        roots: Path, tmp_path: Path) -> None:
    out = tmp_path / "weak.json"
    done = imageaudit("scan", "weak", "-o", out, cwd=roots)  # json inferred from the suffix
    assert (done.returncode, done.stdout) == (0, "")
    assert json.loads(out.read_text())["certification"]["level"] == "none"
    lines = diagnostics(done.stderr)
    assert lines[0] == "Level: NONE   weak"
    assert lines[-1] == f"weak: wrote {out}"
    quiet = imageaudit("scan", "weak", "-o", out, "-q", cwd=roots)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


def test_several_images_with_a_missing_one_keep_every_report(
        roots: Path, tmp_path: Path) -> None:
    done = imageaudit("scan", "good", "/nonexistent", "weak", "-o", tmp_path / "multi.json",
                      "-o", tmp_path / "two.sarif", "-q", cwd=roots)
    assert done.returncode == 2  # an image that cannot be read
    assert done.stderr.splitlines() == [
        "imageaudit: error: /nonexistent: no such file or directory"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "multi.good.json", "multi.weak.json", "two.good.sarif", "two.weak.sarif"]
    good = json.loads((tmp_path / "multi.good.json").read_text())
    weak = json.loads((tmp_path / "two.weak.sarif").read_text())
    assert good["image"]["source"].endswith("good")
    assert weak["runs"][0]["results"]


def test_several_images_on_stdout_make_one_document(roots: Path) -> None:
    array = imageaudit("scan", "good", "weak", "--format", "json", "-q", cwd=roots)
    assert array.returncode == 0, array.stderr
    reports = json.loads(array.stdout)
    assert [r["certification"]["level"] for r in reports] == ["basic", "none"]
    lines = imageaudit("scan", "good", "weak", "--format", "jsonl", "-q", cwd=roots)
    assert [json.loads(ln)["certification"]["level"] for ln in lines.stdout.splitlines()] == [
        "basic", "none"]
    sarif = imageaudit("scan", "good", "weak", "--format", "sarif", "-q", cwd=roots)
    log: dict[str, Any] = json.loads(sarif.stdout)
    assert log["version"] == "2.1.0" and len(log["runs"]) == 2
    html = imageaudit("scan", "good", "weak", "--format", "html", cwd=roots)
    assert (html.returncode, html.stdout) == (2, "")
    assert html.stderr == ("imageaudit: error: --format html: 2 images make 2 documents; "
                           "name a file with -o (one per image) or use --output-dir\n")


def test_require_blocks_on_any_image_below(roots: Path) -> None:
    done = imageaudit("scan", "good", "weak", "--require", "basic", "--format", "jsonl", "-q",
                      cwd=roots)
    assert done.returncode == 3
    assert len(done.stdout.splitlines()) == 2


def test_format_is_inferred_from_the_suffix_and_unknown_ones_are_refused(
        roots: Path, tmp_path: Path) -> None:
    done = imageaudit("scan", "good", "-o", tmp_path / "r.xml", "-o", tmp_path / "r.md",
                      "-o", tmp_path / "r.txt", "-q", cwd=roots)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r.xml").read_text().startswith("<?xml")
    assert (tmp_path / "r.md").read_text().startswith("#")
    assert (tmp_path / "r.txt").read_text().startswith("Level: BASIC")
    bad = imageaudit("scan", "good", "-o", tmp_path / "r.pdf", cwd=roots)
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"imageaudit: error: -o {tmp_path / 'r.pdf'}: cannot tell the "
                                 "format from its name")


def test_output_dir_holds_every_format_per_image(roots: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    done = imageaudit("scan", "good", "weak", "--output-dir", out, "--format", "json",
                      "--format", "sarif", "-q", cwd=roots)
    assert (done.returncode, done.stdout) == (0, "")
    assert sorted(p.name for p in out.iterdir()) == [
        "good.json", "good.sarif", "weak.json", "weak.sarif"]
    assert json.loads((out / "weak.json").read_text())["certification"]["level"] == "none"


def test_timeout_stops_the_image_and_names_the_step(roots: Path, tmp_path: Path) -> None:
    # trivy that never answers, left to run longer than the whole audit may take.
    slow = tmp_path / "slow-trivy"
    slow.write_text("#!/bin/sh\nsleep 300\n")
    slow.chmod(0o755)
    start = time.monotonic()
    done = imageaudit("scan", "good", "--trivy", "--trivy-timeout", "600", "--timeout", "20",
                      "--require", "basic", "-o", tmp_path / "good.json", cwd=roots,
                      env={"IMAGEAUDIT_TRIVY": str(slow)})
    assert time.monotonic() - start < 120
    assert done.returncode == 3  # no level reached: it blocks --require
    assert diagnostics(done.stderr) == [
        "imageaudit: error: good: timed out after 20 s while gathering facts: trivy_scan; the "
        "audit was stopped and nothing was certified"]
    assert "good: gathering facts: accounts" in progress_lines(done.stderr)
    assert not (tmp_path / "good.json").exists()
    alive = subprocess.run(["pgrep", "-f", str(slow)], capture_output=True, text=True,
                           check=False)
    assert alive.stdout == ""  # the child's session was killed whole
    unbounded = imageaudit("scan", "good", "--trivy", "--trivy-timeout", "600", "--timeout",
                           "20", "-q", cwd=roots, env={"IMAGEAUDIT_TRIVY": str(slow)})
    assert unbounded.returncode == 1  # not audited, and no level was asked for


def test_timeout_leaves_a_quick_image_as_it_was(roots: Path) -> None:
    done = imageaudit("scan", "good", "weak", "--timeout", "300", "--format", "json", "-q",
                      cwd=roots)
    assert done.returncode == 0, done.stderr
    assert [r["certification"]["level"] for r in json.loads(done.stdout)] == ["basic", "none"]


def test_debug_logs_through_logging(roots: Path) -> None:
    done = imageaudit("scan", "good", "--debug", "--format", "json", cwd=roots)
    assert done.returncode == 0, done.stderr
    logged = [ln.split(" ", 4)[2:] for ln in diagnostics(done.stderr) if " DEBUG " in ln]
    assert ["DEBUG", "imageaudit.progress:"] in [ln[:2] for ln in logged]
    assert any(ln[1] == "imageaudit.pipeline:" and ln[2].startswith("good: opened in ")
               for ln in logged)
    assert json.loads(done.stdout)["certification"]["level"] == "basic"


def test_facts_timeout_and_inferred_format(roots: Path, tmp_path: Path) -> None:
    out = tmp_path / "facts.json"
    done = imageaudit("facts", "good", "-o", out, "--timeout", "300", "-q", cwd=roots)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert json.loads(out.read_text())["os"]["id"]["value"] == "debian"


def test_each_o_takes_the_format_given_before_it(roots: Path, tmp_path: Path) -> None:
    done = imageaudit("scan", "good", "-o", tmp_path / "a.sarif", "--format", "junit",
                      "-o", tmp_path / "junit.out", "--format", "markdown", "-q", cwd=roots)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "a.sarif").read_text())["version"] == "2.1.0"
    assert (tmp_path / "junit.out").read_text().startswith("<?xml")
    assert done.stdout.startswith("#")  # the markdown, given no -o
