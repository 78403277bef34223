"""The batch summary files: the JSON document and its totals, a CSV that a spreadsheet cannot
be tricked by, and the HTML page (escaped, worst first, one bar per level, only safe report
links), which must render offline in headless Chromium."""

from __future__ import annotations

import csv
import json
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from imageaudit.batch.results import ImageResult
from imageaudit.batch.summary import (
    CSV_COLUMNS,
    LEVEL_PALETTE,
    NONE_COLOUR,
    NOT_AUDITED_COLOUR,
    SCHEMA,
    BatchMeta,
    render_csv,
    render_html,
    safe_report_href,
    sort_worst_first,
    totals,
    write_csv,
    write_html,
    write_json,
)
from imageaudit.certify import load_levels

ROOT = Path(__file__).resolve().parents[2]
LEVEL_NAMES = load_levels(ROOT / "imageaudit" / "ruleset" / "levels.yaml").names()
SHA = "ab" * 64
HOSTILE_CSV = "=cmd|' /C calc'!A0"
HOSTILE_HTML = "<script>alert(1)</script>"


def meta(required: str | None = "standard") -> BatchMeta:
    return BatchMeta(
        started="2026-09-01T10:00:00Z",
        finished="2026-09-01T10:42:17Z",
        tool_version="0.1.0",
        ruleset_version="sha256:" + "1" * 64,
        levels_version="sha256:" + "2" * 64,
        feeds="snapshot-2026-09-01",
        required=required,
        level_names=LEVEL_NAMES,
        inputs=("lists/fedcloud.json", "oci://registry.example/vm/ubuntu"),
    )


def audited(source: str, level: str, critical: int = 0, high: int = 0, **kw: object) -> ImageResult:
    failed = {"critical": critical, "high": high, "moderate": 2, "low": 1, "info": 0}
    fails = sum(failed.values())
    args: dict[str, object] = {
        "source": source, "inputs": ("lists/fedcloud.json",), "sha512": SHA, "level": level,
        "counts": {"PASS": 40, "FAIL": fails, "ERROR": 0, "NOT_APPLICABLE": 3, "WAIVED": 1},
        "failed": failed, "report_id": "r-" + source[-8:], "seconds": 12.5,
        "reports": {"json": f"reports/{abs(hash(source))}.json"},
    }
    args.update(kw)
    return ImageResult(**args)  # type: ignore[arg-type]


def failed_image(source: str, error: str) -> ImageResult:
    return ImageResult(source=source, inputs=("lists/fedcloud.json",), error=error)


def sample() -> list[ImageResult]:
    return [
        audited("https://a.example/good.qcow2", "hardened", cached=True, reached_required=True),
        audited("https://a.example/ok.qcow2", "standard", reached_required=True),
        audited("https://a.example/weak.qcow2", "basic", high=3, reached_required=False),
        audited("https://a.example/bad.qcow2", "none", critical=2, high=1, reached_required=False),
        failed_image("https://a.example/gone.qcow2", "HTTP 404 Not Found"),
    ]


# --- JSON -------------------------------------------------------------------------------------


def test_json_has_meta_totals_and_every_image(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_json(sample(), meta(), path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert list(doc) == ["schema", "meta", "totals", "images"]
    assert doc["schema"] == SCHEMA
    assert doc["meta"]["required"] == "standard"
    assert doc["meta"]["level_names"] == ["basic", "standard", "hardened"]
    totals = doc["totals"]
    assert totals["images"] == 5
    assert totals["audited"] == 4
    assert totals["errors"] == 1
    assert totals["cached"] == 1
    assert totals["below_required"] == 2
    assert totals["levels"] == {"none": 1, "basic": 1, "standard": 1, "hardened": 1}
    assert totals["failed"]["critical"] == 2
    assert totals["failed"]["high"] == 4
    assert len(doc["images"]) == 5
    for image in doc["images"]:
        assert {"source", "sha512", "level", "counts", "error"} <= set(image)
    assert doc["images"][4]["error"] == "HTTP 404 Not Found"
    assert doc["images"][4]["level"] is None
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_below_required_is_computed_from_levels_when_the_result_does_not_say() -> None:
    results = [audited("a", "basic"), audited("b", "standard"), audited("c", "none")]
    assert totals(results, meta("standard"))["below_required"] == 2
    assert totals(results, meta("hardened"))["below_required"] == 3
    assert totals(results, meta(None))["below_required"] == 0
    rows = list(csv.DictReader(render_csv(results, meta("standard")).splitlines()))
    assert [r["reached_required"] for r in rows] == ["false", "true", "false"]
    rows = list(csv.DictReader(render_csv(results, meta(None)).splitlines()))
    assert [r["reached_required"] for r in rows] == ["", "", ""]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.mkdir()
    (path / "keep").write_text("old\n")
    with pytest.raises(OSError):
        write_json(sample(), meta(), path)
    assert (path / "keep").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_names_that_are_not_utf8_are_written(tmp_path: Path) -> None:
    name = "/srv/images/caf\udce9.qcow2"  # os.fsdecode of b"caf\xe9"
    results = [audited(name, "basic"), failed_image(name + "2", "cannot open " + name)]
    write_json(results, meta(), tmp_path / "s.json")
    write_csv(results, meta(), tmp_path / "s.csv")
    write_html(results, meta(), tmp_path / "s.html")
    doc = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert doc["images"][0]["source"] == name
    assert "caf\\udce9" in (tmp_path / "s.csv").read_text(encoding="utf-8")
    assert "caf\\udce9" in (tmp_path / "s.html").read_text(encoding="utf-8")


# --- CSV --------------------------------------------------------------------------------------


def test_csv_round_trips_and_quotes_formulas(tmp_path: Path) -> None:
    results = [
        *sample(),
        audited(HOSTILE_CSV, "basic", title="+SUM(A1:A9)", vo="@vo", identifier="-2+3"),
        failed_image("\tTAB", "\rboom"),
    ]
    path = tmp_path / "summary.csv"
    write_csv(results, meta(), path)
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 1 + len(results)
    table = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert table[0]["source"] == "https://a.example/good.qcow2"
    assert table[0]["level"] == "hardened"
    assert table[0]["reached_required"] == "true"
    assert table[0]["cached"] == "true"
    assert table[0]["PASS"] == "40"
    assert table[3]["FAIL_critical"] == "2"
    assert table[3]["FAIL"] == "6"
    assert table[4]["level"] == ""
    assert table[4]["error"] == "HTTP 404 Not Found"
    hostile = table[5]
    assert hostile["source"] == "'" + HOSTILE_CSV
    assert hostile["title"] == "'+SUM(A1:A9)"
    assert hostile["vo"] == "'@vo"
    assert hostile["identifier"] == "'-2+3"
    assert table[6]["source"] == "'\tTAB"
    assert table[6]["error"] == "'\rboom"
    # no cell of image data starts a formula
    for row in table:
        for column in ("source", "identifier", "vo", "title", "error", "report_id"):
            assert not row[column].startswith(("=", "+", "-", "@", "\t", "\r"))


# --- HTML -------------------------------------------------------------------------------------


class Page(HTMLParser):
    """Tags with their attributes, the source of every table row, the bars of the chart."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.sources: list[str] = []
        self.levels: list[str] = []
        self.row_classes: list[str] = []
        self._in: str | None = None
        self._body = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        classes = (a.get("class") or "").split()
        if tag == "tbody":
            self._body = True
        elif tag == "tr" and self._body:
            self.row_classes.append(" ".join(classes))
        if tag == "span" and "src" in classes:
            self._in = "src"
            self.sources.append("")
        elif tag == "span" and "pill" in classes:
            self._in = "pill"
            self.levels.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._body = False
        if tag == "span":
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "src":
            self.sources[-1] += data
        elif self._in == "pill":
            self.levels[-1] += data

    def bars(self) -> list[tuple[str | None, int]]:
        return [(a["data-level"], int(a["data-count"] or "-1")) for t, a in self.tags
                if "data-count" in a]

    def hrefs(self) -> list[str | None]:
        return [a.get("href") for t, a in self.tags if t == "a"]


def test_html_escapes_hostile_strings() -> None:
    attr = '"><img src=x onerror=alert(1)>'
    results = [
        audited(HOSTILE_HTML, "basic", title=attr, vo=HOSTILE_HTML),
        failed_image("https://a.example/x", "could not fetch " + HOSTILE_HTML),
    ]
    text = render_html(results, meta())
    assert "<script" not in text
    assert "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    page = Page(text)
    assert {t for t, _ in page.tags}.isdisjoint({"script", "img", "iframe", "object"})
    assert HOSTILE_HTML in page.sources
    assert all(not k.startswith("on") for _, a in page.tags for k in a)


def test_html_lists_images_worst_first() -> None:
    results = [
        audited("z-hardened", "hardened"),
        audited("b-standard", "standard", critical=0, high=5),
        audited("a-standard", "standard", critical=0, high=5),
        audited("c-standard-crit", "standard", critical=1, high=0),
        audited("y-none-1crit", "none", critical=1, high=9),
        audited("x-none-3crit", "none", critical=3, high=0),
        audited("d-basic", "basic", high=1),
        failed_image("q-failed", "timeout after 600 s"),
        failed_image("p-failed", "not a disk image"),
    ]
    expected = ["p-failed", "q-failed", "x-none-3crit", "y-none-1crit", "d-basic",
                "c-standard-crit", "a-standard", "b-standard", "z-hardened"]
    assert [r.source for r in sort_worst_first(results, LEVEL_NAMES)] == expected
    page = Page(render_html(results, meta()))
    assert page.sources == expected
    assert page.levels == ["not audited", "not audited", "none", "none", "basic", "standard",
                           "standard", "standard", "hardened"]


def test_html_chart_has_one_bar_per_level_with_its_count() -> None:
    results = [*sample(), audited("s2", "standard"), audited("s3", "standard"),
               failed_image("f2", "no space left")]
    page = Page(render_html(results, meta()))
    assert page.bars() == [("hardened", 1), ("standard", 3), ("basic", 1), ("none", 1),
                           ("not audited", 2)]


def test_html_marks_images_below_the_required_level() -> None:
    text = render_html([audited("low", "basic"), audited("high", "hardened")], meta("standard"))
    page = Page(text)
    below = [a for t, a in page.tags if "below-tag" in (a.get("class") or "").split()]
    assert len(below) == 1
    assert page.row_classes == ["below", ""]
    unrequired = Page(render_html([audited("low", "basic")], meta(None)))
    assert not [a for t, a in unrequired.tags if "below-tag" in (a.get("class") or "")]


def test_html_links_only_reports_inside_the_output_directory() -> None:
    reports = {
        "json": "reports/abc.json",
        "html": "reports/abc report#1.html",
        "up": "../secret.json",
        "updeep": "reports/../../secret.json",
        "abs": "/etc/passwd",
        "js": "javascript:alert(1)",
        "jsupper": "JavaScript:alert(1)",
        "url": "https://evil.example/x",
        "proto": "//evil.example/x",
        "win": "..\\secret",
        "ctl": "reports/\x00x",
        "dot": ".",
    }
    page = Page(render_html([audited("a", "basic", reports=reports)], meta()))
    assert sorted(h or "" for h in page.hrefs()) == ["reports/abc%20report%231.html",
                                                     "reports/abc.json"]
    assert safe_report_href("reports/x:y.json") == "reports/x%3Ay.json"
    no_links = Page(render_html([audited("a", "basic", reports=reports)], meta(),
                                report_links=False))
    assert no_links.hrefs() == []


def test_html_page_loads_nothing_from_outside() -> None:
    text = render_html(sample(), meta())
    page = Page(text)
    for tag, attrs in page.tags:
        assert tag not in {"link", "script", "img", "iframe"}
        assert "src" not in attrs
    assert "url(" not in text
    assert "@import" not in text
    assert "http-equiv" in text and "default-src 'none'" in text


# --- in a browser -----------------------------------------------------------------------------


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the RGB rows of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    assert header is not None
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    bpp = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(bytes(idat)), width * bpp
    prev, rows = bytearray(stride), []
    for y in range(height):
        start = y * (stride + 1)
        kind_, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if kind_ == 1:
                line[i] = (line[i] + a) & 255
            elif kind_ == 2:
                line[i] = (line[i] + b) & 255
            elif kind_ == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif kind_ == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line[j + k] for j in range(0, stride, bpp) for k in range(3)))
        prev = line
    return width, height, rows


def screenshot(page: Path, png: Path, profile: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (scripts/bootstrap.sh --test installs it)")
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--window-size=1400,1000",
         f"--screenshot={png}", page.as_uri()],
        capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]


def thirty() -> list[ImageResult]:
    results = []
    for i in range(30):
        name = f"https://appdb.example/images/{i:02d}/ubuntu-22.04-{i:02d}.qcow2"
        if i % 9 == 4:
            results.append(failed_image(name, f"fetch failed: HTTP 50{i % 4} from appdb.example"))
        else:
            level = ("none", *LEVEL_NAMES)[i % 4]
            results.append(audited(name, level, critical=(i * 7) % 3 if level == "none" else 0,
                                   high=(i * 5) % 4 if level in ("none", "basic") else 0,
                                   identifier=f"img-{i:04d}", vo="fedcloud.egi.eu",
                                   title=f"Ubuntu 22.04 LTS build {i}", cached=i % 5 == 0,
                                   reports={"json": f"reports/{i:02d}.json",
                                            "html": f"reports/{i:02d}.html"}))
    return results


def test_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    page, png = tmp_path / "summary.html", tmp_path / "summary.png"
    write_html(thirty(), meta(), page)
    screenshot(page, png, tmp_path / "profile")
    width, height, rows = decode_png(png.read_bytes())
    assert (width, height) == (1400, 1000)
    pixels = Counter(row[i : i + 3] for row in rows[::4] for i in range(0, len(row), 12))
    assert len(pixels) > 50, "the screenshot is nearly blank"
    white = pixels[b"\xff\xff\xff"]
    assert white < 0.97 * sum(pixels.values()), "the screenshot is nearly blank"
    # the bars and pills are painted in their colours: none, every level, not audited
    colours = {bytes.fromhex(c.lstrip("#")) for c in (NONE_COLOUR, NOT_AUDITED_COLOUR)}
    colours |= {bytes.fromhex(c.lstrip("#")) for c in (LEVEL_PALETTE[0], LEVEL_PALETTE[2],
                                                       LEVEL_PALETTE[4])}
    seen = {row[i : i + 3] for row in rows for i in range(0, len(row), 3)}
    assert colours <= seen, [c.hex() for c in colours - seen]
