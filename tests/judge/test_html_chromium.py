"""Load the HTML report in headless Chromium: it must render offline, scripts never run, and at
1400 pixels a reader sees the level, the required level and a screenful of findings at once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from imageaudit.example import WEAK, write_tree
from imageaudit.report import render
from tests.batch.test_summary import decode_png
from tests.judge.cdp import FLAGS, Browser, chromium
from tests.judge.helpers import demo_report

CHROMIUM = chromium()
REPO = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 1400, 900
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/bootstrap.sh --test installs it)"
)

# What the page says about itself once laid out, measured by DevTools (the page runs no script).
MEASURE = """(() => {
  const rows = [...document.querySelectorAll('#summary tbody tr')];
  const inView = rows.filter(r => {
    const b = r.getBoundingClientRect();
    return b.top >= 0 && b.bottom <= window.innerHeight;
  });
  const ids = new Set([...document.querySelectorAll('[id]')].map(e => e.id));
  const internal = [...document.querySelectorAll('a[href^="#"]')].map(a => a.hash.slice(1));
  const sha = document.getElementById('sha512');
  return {
    rows: rows.length,
    rowsInView: inView.length,
    rowHeights: rows.map(r => Math.round(r.getBoundingClientRect().height)),
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    summaryWidth: document.getElementById('summary').getBoundingClientRect().width,
    badge: document.getElementById('level-badge').textContent,
    badgeBottom: document.getElementById('level-badge').getBoundingClientRect().bottom,
    required: document.getElementById('required').textContent,
    unevaluatedInView:
      document.getElementById('unevaluated').getBoundingClientRect().bottom <= window.innerHeight,
    dangling: internal.filter(h => !ids.has(h)),
    internal: internal.length,
    external: [...document.querySelectorAll('a[href^="http"]')].map(a => a.href),
    scripts: document.scripts.length,
    shaShownWidth: sha ? sha.getBoundingClientRect().width : null,
  };
})()"""


def weak_report(tmp_path: Path) -> Path:
    """The HTML report of the built-in weak example, written by the real command line."""
    root = write_tree(WEAK, tmp_path / "weak")
    page = tmp_path / "report.html"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "imageaudit", "scan", str(root), "--require", "standard",
         "--format", "html", "-o", str(page)],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO, check=False)
    assert done.returncode == 3, done.stderr[-2000:]  # findings block standard
    return page


@needs_chromium
def test_html_report_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(demo_report(), "html"), encoding="utf-8")
    assert CHROMIUM is not None
    proc = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert '<span id="level-badge" class="pill big lv-none" title="level reached">none</span>' in (
        dom
    )
    assert (
        '<span class="message">User <code>operator</code> has the default password '
        "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code> (/etc/shadow line 24)</span>"
    ) in dom
    assert "<script>" not in dom


@needs_chromium
def test_weak_image_report_at_1400_pixels(tmp_path: Path) -> None:
    page = weak_report(tmp_path)
    png = tmp_path / "report-1400.png"  # kept in the test's directory, to look at
    with Browser(tmp_path / "profile", WIDTH, HEIGHT) as browser:
        browser.goto(page.as_uri())
        m: dict[str, Any] = browser.evaluate(MEASURE)
        browser.screenshot(png)
        # a summary row's link lands on its finding's details, in view
        browser.evaluate("document.querySelector('#summary a[href=\"#finding-7\"]').click()")
        landed = browser.evaluate(
            "[location.hash, document.getElementById('finding-7').getBoundingClientRect().top,"
            " window.scrollY]")
        # a level of the ladder lands on its row of blocking rules
        browser.evaluate("document.querySelector('.ladder a[href=\"#level-standard\"]').click()")
        level = browser.evaluate(
            "[location.hash, document.getElementById('level-standard')"
            ".getBoundingClientRect().top]")

    assert m["badge"] == "none" and m["required"] == "required: standard — not reached"
    assert m["scripts"] == 0
    # the weak example has 40 findings shown, each on one line of the summary
    assert m["rows"] == 40
    assert set(m["rowHeights"]) <= {26, 27, 28}, Counter(m["rowHeights"])
    assert m["rowsInView"] >= 20, m["rowsInView"]
    assert m["badgeBottom"] < 150 and m["unevaluatedInView"]
    # full width, nothing wider than the window
    assert m["scrollWidth"] <= m["clientWidth"], (m["scrollWidth"], m["clientWidth"])
    assert m["summaryWidth"] >= m["clientWidth"] - 60
    assert m["dangling"] == [] and m["internal"] > 100
    machine_id = "https://www.freedesktop.org/software/systemd/man/latest/machine-id.html"
    assert machine_id in m["external"]  # references are links
    assert m["shaShownWidth"] is None  # a root directory has no SHA-512
    assert landed[0] == "#finding-7" and -1 < landed[1] < HEIGHT and landed[2] > HEIGHT
    assert level[0] == "#level-standard" and -1 < level[1] < HEIGHT

    width, height, rows = decode_png(png.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    seen = Counter(row[i : i + 3] for row in rows[::2] for i in range(0, len(row), 6))
    assert seen[b"\xff\xff\xff"] < 0.9 * sum(seen.values()), "the screenshot is nearly blank"
    # the level pill and the critical and high severity badges are painted in their colours
    for colour in ("b00020", "d9480f"):
        assert seen[bytes.fromhex(colour)] > 500, colour


@needs_chromium
def test_sha512_shows_short_and_copies_whole(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(demo_report(), "html", required="basic"), encoding="utf-8")
    with Browser(tmp_path / "profile", WIDTH, HEIGHT) as browser:
        browser.goto(page.as_uri())
        shown = browser.evaluate(
            "(() => { const s = document.getElementById('sha512');"
            " const r = document.createRange(); r.selectNodeContents(s);"
            " return [s.getBoundingClientRect().width, r.toString(), s.title,"
            " document.getElementById('required').textContent]; })()")
    width, selected, title, required = shown
    assert width < 160  # about 16 of the 128 hex digits are painted
    assert selected == title == "0" * 128  # selecting it copies all of them
    assert required == "required: basic — not reached"
