"""A human view of the facts: one section per family, one table per list of records.

Every string from the image is passed through :func:`terminal_safe` so that control characters
(terminal escape sequences planted in a file name or a config value) are shown, not obeyed.
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from imageaudit.facts import Facts
from imageaudit.findings import printable

MAX_ROWS = 200


def terminal_safe(value: object) -> str:
    """Render a value as text escaped as in reports (``\\x1b`` instead of ESC; see
    :func:`imageaudit.findings.printable`)."""
    return printable(str(value))


def _cell(value: Any) -> str:
    if isinstance(value, dict) and set(value) <= {"path", "line"} and "path" in value:
        line = value.get("line")
        return terminal_safe(f"{value['path']}:{line}" if line is not None else value["path"])
    if isinstance(value, dict) and "value" in value and isinstance(value.get("source"), dict):
        src = value["source"]
        where = f"{src.get('path')}:{src.get('line')}" if src.get("line") else src.get("path")
        return terminal_safe(f"{value['value']} ({where})")
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            return terminal_safe(", ".join(str(v) for v in value))
        return f"[{len(value)} items]"
    if isinstance(value, dict):
        return terminal_safe(", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, "")))
    if value is None:
        return ""
    return terminal_safe(value)


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    columns: list[str] = []
    for row in rows[:MAX_ROWS]:
        for key in row:
            if key not in columns:
                columns.append(key)
    table = Table(title=terminal_safe(title), title_justify="left", show_lines=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows[:MAX_ROWS]:
        table.add_row(*(Text(_cell(row.get(c))) for c in columns))
    if len(rows) > MAX_ROWS:
        table.caption = f"{len(rows) - MAX_ROWS} more rows (see --format json)"
    return table


def _render_family(console: Console, name: str, data: Any) -> None:
    console.rule(Text(name, style="bold"))
    if data is None:
        console.print(Text("not collected (see errors)", style="yellow"))
        return
    if not isinstance(data, dict):
        console.print(Text(_cell(data)))
        return
    scalars = {k: v for k, v in data.items() if not isinstance(v, (list, dict)) or k == "source"}
    for key, value in scalars.items():
        console.print(Text.assemble((f"{key}: ", "cyan"), _cell(value)))
    for key, value in data.items():
        if key in scalars:
            continue
        if isinstance(value, list):
            if not value:
                console.print(Text.assemble((f"{key}: ", "cyan"), "none"))
            elif all(isinstance(v, dict) for v in value):
                console.print(_table(f"{name}.{key} ({len(value)})", value))
            else:
                console.print(Text.assemble((f"{key}: ", "cyan"), _cell(value)))
        elif isinstance(value, dict):
            if value and all(isinstance(v, dict) for v in value.values()):
                rows = [{"name": k, **v} for k, v in value.items()]
                console.print(_table(f"{name}.{key}", rows))
            else:
                console.print(Text.assemble((f"{key}: ", "cyan"), _cell(value)))


def render_facts_text(facts: Facts, width: int = 160) -> str:
    """The facts as text tables (for a terminal or a file)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    data = facts.to_json()
    image = data.get("image", {})
    console.print(
        Text(
            f"imageaudit facts: {terminal_safe(image.get('source'))} "
            f"({image.get('kind')}, {image.get('format')})",
            style="bold",
        )
    )
    for note in image.get("notes", []):
        console.print(Text(f"note: {terminal_safe(note)}"))
    skip = {"schema", "image", "errors", "timings"}
    for name, value in data.items():
        if name not in skip:
            _render_family(console, name, value)
    console.rule(Text("errors", style="bold"))
    errors = data.get("errors", [])
    if errors:
        console.print(_table("errors", errors))
    else:
        console.print("none")
    console.rule(Text("timings (s)", style="bold"))
    console.print(Text(", ".join(f"{k}={v}" for k, v in data.get("timings", {}).items())))
    return buffer.getvalue()
