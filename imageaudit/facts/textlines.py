"""Line handling shared by the text-file collectors: malformed-line records, continuations,
include budgets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

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


@dataclass
class IncludeBudget:
    """How much of a configuration's include fan-out is read, each file's text read once.

    sshd, smbd and sudo parse an included file again at every inclusion, so files that include
    one another many times fan out exponentially. A parser follows them the same way, counting
    each parse (:meth:`parse`) against ``max_parses`` (see :meth:`full`) and ``max_lines``; the
    first limit reached stops the reading (:meth:`stop`), and ``on_stop(why, path)`` is told
    once, so that the facts can be marked incomplete.
    """

    read: Callable[[str], str | None]
    max_parses: int
    max_lines: int
    on_stop: Callable[[str, str], None]
    parses: int = 0
    lines: int = 0
    stopped: str = ""  # the first reason, once stopped
    texts: dict[str, str | None] = field(default_factory=dict)

    def text(self, path: str) -> str | None:
        """The text of ``path``, read once however often it is included (a failure too)."""
        if path not in self.texts:
            self.texts[path] = self.read(path)
        return self.texts[path]

    def parse(self, lines: int) -> bool:
        """Count one more parse, of ``lines`` lines; ``False`` when the lines are over budget."""
        self.parses += 1
        self.lines += lines
        return self.lines <= self.max_lines

    def full(self) -> bool:
        """Whether no further inclusion may be parsed."""
        return self.parses >= self.max_parses

    def stop(self, why: str, path: str) -> None:
        """Stop reading; the first reason is the one reported."""
        if not self.stopped:
            self.stopped = why
            self.on_stop(why, path)
