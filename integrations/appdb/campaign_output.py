"""A campaign's hits as a terminal table, JSON or CSV.

Every string of a hit comes from a publisher or an endorser (titles, file paths, package names,
e-mail addresses), so the table shows control characters escaped and never reads markup in
them, and a CSV cell that a spreadsheet would take for a formula is quoted, as the batch summary
does (``imageaudit.batch.summary``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import Any, TextIO

from integrations.appdb.campaigns import CampaignResult, Hit, Item

CSV_COLUMNS = ("image_id", "version", "title", "sha512", "vos", "endorser_dn", "endorser_name",
               "endorser_email", "level", "listed", "current", "suspended", "matched", "fix",
               "sites")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_CELL_MAX = 4000
SHOWN_MAX = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(text: str | None, limit: int = SHOWN_MAX) -> str:
    """``text`` for a terminal: control characters as ``\\xNN``, cut at ``limit``."""
    if text is None:
        return "—"
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_item(item: Item) -> str:
    """One matched item in words: ``libssl3 3.0.11-1~deb12u2 (source openssl) DSA-5532-1``."""
    if item.get("kind") == "package":
        text = f"{item.get('name')} {item.get('version')}"
        if item.get("via") == "source":
            srcver = item.get("source_version")
            text += f" (source {item.get('source_name')}"
            text += f" {srcver})" if srcver and srcver != item.get("version") else ")"
        if item.get("advisory"):
            text += f" {item['advisory']}"
        return text
    if item.get("kind") == "file":
        indicator = str(item.get("indicator") or "")
        text = f"{item.get('path')} {item.get('by')}"
        if item.get("by") in ("sha256", "sha1", "md5"):
            text += f" {indicator[:16]}…"
        if item.get("provenance"):
            text += " [" + "; ".join(item["provenance"]) + "]"
        return text
    return f"endorsed by {item.get('dn')}"


def describe_sites(hit: Hit, most: int = 5) -> str:
    """The sites holding a hit's file, one a line: ``site-a:3 inst`` (instances running)."""
    text = "\n".join(f"{shown(h.site, 63)}:{h.instances} inst" for h in hit.sites[:most])
    if len(hit.sites) > most:
        text += f"\n… {len(hit.sites) - most} more"
    return text or "—"


def render_json(result: CampaignResult) -> str:
    """A JSON list of hits (``schemas.CampaignHit``)."""
    return json.dumps([h.to_json() for h in result.hits], indent=1, ensure_ascii=False) + "\n"


def csv_cell(value: object) -> str | int:
    """A CSV cell: booleans as true/false, text cut at :data:`CSV_CELL_MAX` and quoted with
    ``'`` when a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    text = str(value)
    if len(text) > CSV_CELL_MAX:
        text = text[: CSV_CELL_MAX - 1] + "…"
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv_row(hit: Hit) -> list[str | int]:
    data: dict[str, Any] = hit.to_json()
    data["vos"] = ";".join(hit.vos)
    data["matched"] = "; ".join(describe_item(m) for m in hit.matched)
    data["sites"] = "; ".join(f"{h.site} (copies {h.copies}, instances {h.instances})"
                              for h in hit.sites)
    return [csv_cell(data[c]) for c in CSV_COLUMNS]


def render_csv(result: CampaignResult) -> str:
    """One row per hit under a header of :data:`CSV_COLUMNS`."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_row(h) for h in result.hits)
    return out.getvalue()


def render_table(result: CampaignResult, stream: TextIO, *,
                 hits: Sequence[Hit] | None = None, title: str | None = None) -> None:
    """A rich table of ``hits`` (default: all of the result) and a line of totals."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    rows = result.hits if hits is None else hits
    # A pipe or a file gets the whole table rather than 80 columns of it.
    console = Console(file=stream, highlight=False, soft_wrap=False,
                      width=None if stream.isatty() else 240)
    table = Table(title=title, show_lines=False)
    for column in ("Image", "Version", "VO", "Endorser", "Level", "State", "Matched", "Fix",
                   "Sites"):
        table.add_column(column, overflow="fold")
    for h in rows:
        state = ("suspended" if h.suspended else "listed" if h.listed
                 else "not listed" if h.current else "old version")
        who = shown(h.endorser_name or h.endorser_dn, 80)
        if h.endorser_email:
            who += f" <{shown(h.endorser_email, 80)}>"
        matched = "\n".join(shown(describe_item(m)) for m in h.matched[:5])
        if len(h.matched) > 5:
            matched += f"\n… {len(h.matched) - 5} more"
        table.add_row(*(Text(x) for x in (shown(h.image_id, 80), shown(h.version, 40),
                                          shown(", ".join(h.vos), 60), who, h.level, state,
                                          matched, shown(h.fix, 80), describe_sites(h))))
    console.print(table)
    listed = sum(h.listed for h in rows)
    line = f"{len(rows)} affected image version(s), {listed} listed"
    at = {h.site for hit in rows for h in hit.sites}
    if at:
        running = sum(h.instances for hit in rows for h in hit.sites)
        line += f", {running} instance(s) running at {len(at)} site(s)"
    line += f" ({result.seconds:.2f} s)"
    if result.advisories:
        line += "; advisories: " + ", ".join(result.advisories)
    console.print(Text(line))
    for warning in result.warnings:
        console.print(Text("warning: " + shown(warning, 300)))
