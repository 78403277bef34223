"""What a test reads of the CLI's stderr: its diagnostics, without the progress lines."""

from __future__ import annotations

import re

# ``imageaudit scan`` and ``facts`` off a terminal: one timestamped line per sub-step.
PROGRESS_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[ *\d+\.\ds\] ")


def diagnostics(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not progress lines."""
    return [line for line in stderr.splitlines() if not PROGRESS_LINE.match(line)]


def progress_lines(stderr: str) -> list[str]:
    """The progress lines of ``stderr``, their timestamp and clock removed."""
    return [PROGRESS_LINE.sub("", line) for line in stderr.splitlines()
            if PROGRESS_LINE.match(line)]
