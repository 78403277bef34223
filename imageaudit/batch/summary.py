"""What a batch found, in three files: a JSON document for programs, a CSV sheet for people who
sort and filter, and one HTML page that puts the worst images first.

Every string of a result may come from a hostile image list or image (its name, its title, the
text of an error), so the HTML is rendered by Jinja2 with autoescape forced on, report links are
emitted only for relative paths that stay inside the output directory, CSV cells that a
spreadsheet would read as a formula are quoted, and every shown text is cut at a bound. Each
file is written beside its final name and moved into place, so a reader never sees half of one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from imageaudit.batch.results import ImageResult
from imageaudit.certify import NO_LEVEL
from imageaudit.model import Severity, Status
from imageaudit.report.templating import environment

SCHEMA = "imageaudit-batch-1"
NOT_AUDITED = "not audited"
# Severities worst first, as the FAIL columns show them.
SEVERITIES: tuple[str, ...] = tuple(
    s.value for s in sorted(Severity, key=lambda s: s.rank, reverse=True)
)
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
CSV_COLUMNS: tuple[str, ...] = (
    "source", "identifier", "vo", "title", "sha512", "level", "reached_required", "error",
    *STATUSES, *(f"FAIL_{s}" for s in SEVERITIES), "report_id", "cached", "seconds",
)
# A spreadsheet reads a cell starting with one of these as a formula (or strips the character).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Bounds of what is shown of one string: the page stays readable whatever a list names.
CSV_CELL_MAX = 4000
SHOWN_MAX = 300
TITLE_ATTR_MAX = 2000
ERROR_SHOWN_MAX = 400
REPORT_PATH_MAX = 1024
REPORT_FORMAT_MAX = 24
REPORT_LINKS_MAX = 8
DIGEST_SHOWN = 20
# Pill colours of the levels, lowest to highest; a file with n levels takes n of them spread
# over the range (three levels: amber, green, blue).
LEVEL_PALETTE = ("#b26a00", "#8a7b00", "#2e7d32", "#00796b", "#1565c0")
NONE_COLOUR = "#b00020"
NOT_AUDITED_COLOUR = "#6a1b9a"
UNKNOWN_COLOUR = "#555555"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class BatchMeta:
    """What a batch ran with: its times (ISO 8601, UTC), the versions of the tool, rules,
    levels and feeds, the level it required (``None``: none was), the level names lowest first
    and the inputs the user named."""

    started: str
    finished: str
    tool_version: str
    ruleset_version: str
    levels_version: str
    feeds: str | None
    required: str | None
    level_names: tuple[str, ...]
    inputs: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "finished": self.finished,
            "tool_version": self.tool_version,
            "ruleset_version": self.ruleset_version,
            "levels_version": self.levels_version,
            "feeds": self.feeds,
            "required": self.required,
            "level_names": list(self.level_names),
            "inputs": list(self.inputs),
        }


# --- order and totals -------------------------------------------------------------------------


def _rank(level: str | None, level_names: Sequence[str]) -> int:
    """0 for ``none`` and for a level the levels file does not name, 1 for the lowest level…"""
    if level is None or level not in level_names:
        return 0
    return list(level_names).index(level) + 1


def sort_worst_first(
    results: Iterable[ImageResult], level_names: Sequence[str]
) -> list[ImageResult]:
    """Images that could not be audited first, then by level (lowest first), then by the number
    of critical, then high FAILs (most first), then by source.

    A level the levels file does not name sorts with ``none``: nothing says it is higher.
    """

    def key(r: ImageResult) -> tuple[int, int, int, int, str]:
        return (
            1 if r.audited else 0,
            _rank(r.level, level_names),
            -_count(r.failed, Severity.CRITICAL.value),
            -_count(r.failed, Severity.HIGH.value),
            r.source,
        )

    return sorted(results, key=key)


def _count(counts: Mapping[str, int], name: str) -> int:
    value = counts.get(name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _reached_required(r: ImageResult, meta: BatchMeta) -> bool | None:
    """Whether an audited image reached the required level: as its result says or, when it does
    not say, from the levels; ``None`` without a required level or for an image not audited."""
    if meta.required is None or not r.audited:
        return None
    if r.reached_required is not None:
        return r.reached_required
    return _rank(r.level, meta.level_names) >= _rank(meta.required, meta.level_names)


def _below_required(r: ImageResult, meta: BatchMeta) -> bool:
    """An audited image that did not reach the required level (never true without one)."""
    return _reached_required(r, meta) is False


def totals(results: Sequence[ImageResult], meta: BatchMeta) -> dict[str, Any]:
    """Counts over the batch: images, audited, errors (not audited), cached, below the
    required level, images per level (``none`` and the levels lowest first, then any level the
    levels file does not name) and FAILs per severity."""
    levels: dict[str, int] = {NO_LEVEL: 0, **dict.fromkeys(meta.level_names, 0)}
    failed: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
    for r in results:
        if r.audited:
            assert r.level is not None
            levels[r.level] = levels.get(r.level, 0) + 1
        for sev in SEVERITIES:
            failed[sev] += _count(r.failed, sev)
    audited = sum(1 for r in results if r.audited)
    return {
        "images": len(results),
        "audited": audited,
        "errors": len(results) - audited,
        "cached": sum(1 for r in results if r.cached),
        "required": meta.required,
        "below_required": sum(1 for r in results if _below_required(r, meta)),
        "levels": levels,
        "failed": failed,
    }


# --- JSON and CSV -----------------------------------------------------------------------------


def write_json(results: Sequence[ImageResult], meta: BatchMeta, path: Path) -> None:
    """One document: schema, meta, totals and every image (``ImageResult.to_json``)."""
    document = {
        "schema": SCHEMA,
        "meta": meta.to_json(),
        "totals": totals(results, meta),
        "images": [r.to_json() for r in results],
    }
    write_atomic(path, json.dumps(document, indent=1, ensure_ascii=False) + "\n")


def csv_cell(value: object) -> str | int | float:
    """A CSV cell: numbers as they are, text cut at :data:`CSV_CELL_MAX` and quoted with
    ``'`` when a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value)
    if len(text) > CSV_CELL_MAX:
        text = text[: CSV_CELL_MAX - 1] + "…"
    return "'" + text if text.startswith(FORMULA_START) else text


def render_csv(results: Sequence[ImageResult], meta: BatchMeta) -> str:
    """One row per image, in the order given, under a header row of :data:`CSV_COLUMNS`."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in results:
        row: list[object] = [
            r.source, r.identifier, r.vo, r.title, r.sha512,
            r.level if r.audited else None, _reached_required(r, meta), r.error,
            *(_count(r.counts, s) for s in STATUSES),
            *(_count(r.failed, s) for s in SEVERITIES),
            r.report_id, r.cached, r.seconds,
        ]
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()


def write_csv(results: Sequence[ImageResult], meta: BatchMeta, path: Path) -> None:
    write_atomic(path, render_csv(results, meta))


# --- HTML -------------------------------------------------------------------------------------


def _cut(text: str | None, limit: int) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_report_href(path: str) -> str | None:
    """The href of a report file, or ``None`` when ``path`` is not a plain relative path that
    stays inside the output directory (no scheme, no ``..``, not absolute, no backslash, no
    control character)."""
    if not path or len(path) > REPORT_PATH_MAX or "\\" in path or _CONTROL.search(path):
        return None
    if _SCHEME.match(path) or path.startswith("/"):
        return None
    parts = PurePosixPath(path).parts
    if not parts or any(p == ".." for p in parts) or all(p == "." for p in parts):
        return None
    # Quoting ':' too leaves no way for the href to name a scheme; '?' and '#' stay in the name.
    return quote(path, safe="/")


def _level_colours(level_names: Sequence[str]) -> list[str]:
    n = len(level_names)
    if n == 1:
        return [LEVEL_PALETTE[2]]
    last = len(LEVEL_PALETTE) - 1
    return [LEVEL_PALETTE[min(last, round(i * last / max(1, n - 1)))] for i in range(n)]


@dataclass(frozen=True, slots=True)
class _Bar:
    label: str
    kind: str
    count: int
    percent: float  # of all images
    width: float  # of the longest bar
    css: str
    below: bool


@dataclass(frozen=True, slots=True)
class _Link:
    label: str
    href: str


@dataclass(frozen=True, slots=True)
class _Row:
    level: str
    css: str
    below: bool
    source: str
    source_full: str
    title: str
    details: str
    details_full: str
    sha_short: str
    sha512: str
    failed: tuple[int, ...]
    error: str
    error_full: str
    links: tuple[_Link, ...]
    cached: bool
    seconds: str


def _level_css(level: str | None, audited: bool, level_names: Sequence[str]) -> str:
    if not audited or level is None:
        return "lv-na"
    if level == NO_LEVEL:
        return "lv-none"
    if level in level_names:
        return f"lv-{list(level_names).index(level)}"
    return "lv-unknown"


def _row(r: ImageResult, meta: BatchMeta, report_links: bool) -> _Row:
    details = " · ".join(x for x in (r.identifier, r.vo) if x)
    links: list[_Link] = []
    if report_links:
        for fmt, rel in sorted(r.reports.items()):
            href = safe_report_href(rel)
            if href is not None and len(links) < REPORT_LINKS_MAX:
                links.append(_Link(_cut(fmt, REPORT_FORMAT_MAX), href))
    error = r.error if r.error is not None else ("" if r.audited else "no level recorded")
    return _Row(
        level=r.level if r.audited and r.level is not None else NOT_AUDITED,
        css=_level_css(r.level, r.audited, meta.level_names),
        below=_below_required(r, meta),
        source=_cut(r.source, SHOWN_MAX),
        source_full=_cut(r.source, TITLE_ATTR_MAX),
        title=_cut(r.title, SHOWN_MAX),
        details=_cut(details, SHOWN_MAX),
        details_full=_cut(" · ".join(x for x in (r.title, details) if x), TITLE_ATTR_MAX),
        sha_short=(r.sha512 or "")[:16],
        sha512=_cut(r.sha512, 200),
        failed=tuple(_count(r.failed, s) for s in SEVERITIES),
        error=_cut(error, ERROR_SHOWN_MAX),
        error_full=_cut(error, TITLE_ATTR_MAX),
        links=tuple(links),
        cached=r.cached,
        seconds="" if r.seconds is None else f"{r.seconds:.1f} s",
    )


def _bars(results: Sequence[ImageResult], meta: BatchMeta) -> list[_Bar]:
    """One bar per level, highest first, then ``none``, any level the levels file does not name
    and the images that could not be audited; each as a share of all images, drawn against the
    longest."""
    audited = Counter(r.level for r in results if r.audited)
    total = max(1, len(results))
    required = _rank(meta.required, meta.level_names) if meta.required else 0
    names = list(meta.level_names)
    bars: list[tuple[str, str, int, str, bool]] = [
        (name, "level", audited.get(name, 0), f"lv-{i}", bool(required) and i + 1 < required)
        for i, name in reversed(list(enumerate(names)))
    ]
    bars.append((NO_LEVEL, "none", audited.get(NO_LEVEL, 0), "lv-none", bool(required)))
    for name in sorted(n for n in audited if n is not None and n != NO_LEVEL and n not in names):
        bars.append((_cut(name, 40), "unknown", audited[name], "lv-unknown", bool(required)))
    bars.append((NOT_AUDITED, "not-audited", len(results) - sum(audited.values()), "lv-na",
                 False))
    longest = max(1, *(n for _, _, n, _, _ in bars))
    return [_Bar(label, kind, n, round(100 * n / total, 1), round(100 * n / longest, 1), css,
                 below) for label, kind, n, css, below in bars]


def render_html(
    results: Sequence[ImageResult], meta: BatchMeta, *, report_links: bool = True
) -> str:
    """The batch as one self-contained page (inline CSS, no script, nothing loaded): totals,
    the levels as bars, and every image on one line, worst first."""
    ordered = sort_worst_first(results, meta.level_names)
    colours = [
        *((f"lv-{i}", c) for i, c in enumerate(_level_colours(meta.level_names))),
        ("lv-none", NONE_COLOUR), ("lv-na", NOT_AUDITED_COLOUR), ("lv-unknown", UNKNOWN_COLOUR),
    ]
    template = environment("imageaudit.batch").get_template("summary.html")
    return template.render(
        meta=meta,
        totals=totals(results, meta),
        bars=_bars(results, meta),
        rows=[_row(r, meta, report_links) for r in ordered],
        severities=SEVERITIES,
        colours=colours,
        report_links=report_links,
        inputs=[_cut(i, SHOWN_MAX) for i in meta.inputs],
        run={"ruleset": _cut(meta.ruleset_version, DIGEST_SHOWN),
             "levels": _cut(meta.levels_version, DIGEST_SHOWN),
             "feeds": _cut(meta.feeds, SHOWN_MAX)},
    )


def write_html(
    results: Sequence[ImageResult], meta: BatchMeta, path: Path, *, report_links: bool = True
) -> None:
    write_atomic(path, render_html(results, meta, report_links=report_links))


# --- files ------------------------------------------------------------------------------------


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a file beside ``path`` and move it into place (the batch's summaries
    and per-image reports)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # Created with the umask applied, as a plain open would (mkstemp would leave it 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        # A name read from a file system may hold lone surrogates (bytes that were not UTF-8):
        # written as \udcXX, which is also how JSON spells them.
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


__all__ = [
    "CSV_COLUMNS",
    "SCHEMA",
    "BatchMeta",
    "csv_cell",
    "render_csv",
    "render_html",
    "safe_report_href",
    "sort_worst_first",
    "totals",
    "write_csv",
    "write_html",
    "write_json",
]
