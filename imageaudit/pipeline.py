"""The pipeline the CLI drives: open an image, collect its facts, judge and certify them."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console

from imageaudit.facts import Facts, collect_facts
from imageaudit.openers import open_image


@contextlib.contextmanager
def _status(console: Console | None, message: str) -> Iterator[None]:
    if console is None:
        yield
        return
    with console.status(message, spinner="dots"):
        yield


def gather_facts(spec: str, progress: bool = True) -> Facts:
    """Open ``spec`` read-only, run every collector, close it; timings per phase included."""
    console = Console(stderr=True) if progress else None
    t0 = time.perf_counter()
    with _status(console, f"Opening {spec}"):
        fs = open_image(spec)
    timings = {"open": time.perf_counter() - t0}
    for key, value in fs.info.details.items():
        if key.endswith("_s") and isinstance(value, (int, float)):
            timings[f"open.{key[:-2]}"] = float(value)
    try:
        with _status(console, f"Collecting facts from {spec}"):
            facts = collect_facts(fs, timings=timings)
    finally:
        fs.close()
    facts.timings["total"] = round(time.perf_counter() - t0, 4)
    if console is not None:
        for note in facts.image.notes:
            console.print(f"[yellow]note:[/] {note}", highlight=False, markup=True)
    return facts
