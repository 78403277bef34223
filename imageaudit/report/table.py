"""Tables for the terminal and for pipes, through rich.

On a terminal: a header rule, bold headers, columns folded to the screen's width. To a pipe or a
file: no box characters and no width limit, one line per row with columns padded by spaces, so
that ``grep``, ``sort`` and ``awk`` see whole rows. Every cell passes through
:func:`imageaudit.findings.printable`: a value from an image or a server is shown, not obeyed.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from imageaudit.findings import printable

# Wide enough that no row of a pipe is ever folded.
PIPE_WIDTH = 10_000


def write_table(stream: TextIO, columns: Sequence[str], rows: Iterable[Sequence[object]], *,
                title: str | None = None) -> None:
    """Print ``rows`` under ``columns`` to ``stream``."""
    tty = stream.isatty()
    # A pipe's rows are rendered apart, then written without the padding after their last cell.
    target = stream if tty else io.StringIO()
    console = Console(file=target, highlight=False, soft_wrap=False,
                      width=None if tty else PIPE_WIDTH, no_color=not tty)
    table = Table(title=printable(title) if title else None, title_justify="left",
                  box=box.SIMPLE_HEAD if tty else None, show_edge=False, pad_edge=False,
                  header_style="bold" if tty else "")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=not tty)
    for row in rows:
        table.add_row(*(Text(printable("" if cell is None else str(cell))) for cell in row))
    console.print(table)
    if isinstance(target, io.StringIO):
        stream.writelines(line.rstrip() + "\n" for line in target.getvalue().splitlines())
