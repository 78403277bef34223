"""Load the HTML report in headless Chromium: it must render offline, scripts never run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from imageaudit.report import render
from tests.judge.helpers import demo_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_html_report_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(demo_report(), "html"), encoding="utf-8")
    assert CHROMIUM is not None
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert '<span id="level-badge" class="badge level-none">none</span>' in dom
    assert (
        '<p class="message">User <code>operator</code> has the default password '
        "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code> (/etc/shadow line 24)</p>"
    ) in dom
    assert "<script>" not in dom
