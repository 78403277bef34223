"""Line handling shared by the text-file collectors: malformed-line records, continuations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from imageaudit.model import Source


@dataclass(frozen=True, slots=True)
class MalformedLine:
    """A line a collector could not parse; the reason is the fact."""

    source: Source
    reason: str
    text: str = ""


def glibc_lines(text: str) -> list[str]:
    """The lines of ``text`` as glibc, sshd, exportfs, sudo and PAM read them: split on ``\\n``.

    ``str.splitlines()`` also splits on ``\\r``, ``\\v``, ``\\f``, ``\\x1c``-``\\x1e`` and more,
    which the consumers of these files do not: a ``\\r`` inside a shadow line would otherwise
    start a phantom entry, or hide a real one, that the system never sees. A final newline
    does not start an empty last line. (fgets(3), fgetpwent(3))
    """
    lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    return lines


def logical_lines(
    text: str, continuation: bool = True, joiner: str = " "
) -> Iterator[tuple[int, str]]:
    """``(first line number, joined text)``; a trailing backslash joins the next line."""
    lines = glibc_lines(text)
    i = 0
    while i < len(lines):
        start = i + 1
        line = lines[i]
        while continuation and line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + joiner + lines[i]
        if continuation and line.endswith("\\"):
            line = line[:-1]
        yield start, line
        i += 1
