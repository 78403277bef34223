"""Small shared pieces for the services, listeners and firewall collectors.

Reading a config file with a cap, records for settings and malformed lines, shell-style
``NAME=value`` files (``/etc/default/*``, ``/etc/sysconfig/*``), getopt-style option strings
and bounded include following. Nothing here judges a value.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field

from imageaudit.facts.base import CollectContext
from imageaudit.facts.masking import shown_setting
from imageaudit.facts.textlines import glibc_lines
from imageaudit.imagefs import ImageFSError
from imageaudit.model import Source

CONFIG_LIMIT = 1024 * 1024  # bytes read from one config file; the rest is reported as cut
MAX_INCLUDE_DEPTH = 16
MAX_FILES = 256  # config files read for one daemon or mechanism, includes included


@dataclass(frozen=True, slots=True)
class MalformedLine:
    """A line (or construct) that could not be understood: a fact, never dropped."""

    reason: str
    text: str
    source: Source


@dataclass(frozen=True, slots=True)
class Setting:
    """One directive as written: key (normalised as the daemon compares it), raw value.

    The value is kept whole for the checks; written out, a secret's is masked.
    """

    key: str
    value: str = field(metadata={"shown": shown_setting})
    source: Source
    section: str | None = None


def read_config(ctx: CollectContext, path: str, limit: int = CONFIG_LIMIT) -> str | None:
    """Text of an in-image file capped at ``limit``; ``None`` when absent or unreadable.

    A directory or other non-regular file is ``None`` with an error recorded by ``ctx``.
    """
    return ctx.read_text(path, limit)


def is_file(ctx: CollectContext, path: str) -> bool:
    """True when ``path`` resolves (inside the image) to a regular file."""
    return ctx.fs.is_file(path)


def readable_or_broken(ctx: CollectContext, path: str) -> bool:
    """A regular file, or something that cannot be resolved (a dangling link, a loop).

    The second kind is kept so that reading it marks the facts incomplete: a link to a file
    made at run time hides configuration we cannot see, where ``is_file`` would call it absent.
    Directories and other existing non-regular entries are left out, as the daemons skip them.
    """
    try:
        return ctx.fs.stat(path).is_file
    except ImageFSError:
        try:
            ctx.fs.lstat(path)
        except ImageFSError:
            return False
        return True


def glob_files(ctx: CollectContext, pattern: str) -> list[str]:
    """Regular files (and unresolvable links) matching an in-image glob, sorted."""
    try:
        return [p for p in ctx.fs.glob(pattern) if readable_or_broken(ctx, p)]
    except ImageFSError:
        return []


def canonical(ctx: CollectContext, path: str) -> str:
    """Canonical in-image path (for loop detection); the path itself when it cannot resolve."""
    try:
        return ctx.fs.resolve(path)
    except ImageFSError:
        return path


def numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` pairs, 1-based, as fgets(3)/getline(3) readers see them.

    Lines end at ``\\n`` only: a ``\\r``, ``\\v`` or ``\\f`` inside a line stays in it, as
    it does for the C daemons reading these files (``str.splitlines`` would invent lines).
    """
    yield from enumerate(glibc_lines(text), start=1)


_UNIVERSAL_EOL = re.compile(r"\r\n|\r|\n")
_SYSTEMD_EOL = re.compile(r"\r\n|\r|\n|\0")


def _split(eol: re.Pattern[str], text: str) -> list[str]:
    lines = eol.split(text)
    if lines and not lines[-1]:
        lines.pop()
    return lines


def universal_lines(text: str) -> list[str]:
    """Lines as Python's text mode reads them (``\\n``, ``\\r\\n`` or ``\\r`` end one): for
    files read by daemons written in Python (firewalld, ufw) and by YAML parsers."""
    return _split(_UNIVERSAL_EOL, text)


def systemd_lines(text: str) -> list[str]:
    """Lines as systemd's ``read_line()`` reads unit and env files: ``\\n``, ``\\r``,
    ``\\r\\n`` and NUL each end a line (but not ``\\v``, ``\\f`` and the rest)."""
    return _split(_SYSTEMD_EOL, text)


def strip_comment(line: str, chars: str = "#") -> str:
    """The line without a comment starting at the first comment character (no quoting)."""
    cut = len(line)
    for ch in chars:
        idx = line.find(ch)
        if idx != -1:
            cut = min(cut, idx)
    return line[:cut].strip()


def join_path(base_dir: str, path: str) -> str:
    """``path`` if absolute, else relative to ``base_dir`` (all in-image)."""
    return path if path.startswith("/") else posixpath.join(base_dir, path)


def split_words(value: str) -> list[str] | None:
    """Shell-like words of ``value``; ``None`` when quoting is unbalanced."""
    try:
        return shlex.split(value, comments=False, posix=True)
    except ValueError:
        return None


def parse_shell_vars(
    text: str, path: str
) -> tuple[list[Setting], list[MalformedLine]]:
    """``NAME=value`` assignments of a shell fragment, values unquoted but never expanded."""
    settings: list[Setting] = []
    malformed: list[MalformedLine] = []
    for number, raw in numbered_lines(text):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        name, sep, value = line.partition("=")
        if not sep or not name.replace("_", "a").isalnum() or name[0].isdigit():
            malformed.append(
                MalformedLine("not a NAME=value assignment", raw, Source(path, number))
            )
            continue
        words = split_words(value)
        if words is None:
            malformed.append(MalformedLine("unbalanced quotes", raw, Source(path, number)))
            continue
        settings.append(Setting(name, " ".join(words), Source(path, number)))
    return settings, malformed


def parse_options(
    words: list[str], with_arg: dict[str, str], source: Source
) -> list[Setting]:
    """Getopt-style options as settings keyed by their short flag.

    ``with_arg`` maps every spelling that takes an argument (``-l``, ``--listen``) to the key
    recorded (``-l``). Other options take the next word as their value when it does not start
    with ``-`` (a guess: the daemon's option table is not known here), else an empty value.
    """
    out: list[Setting] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("-"):
            continue
        name, eq, attached = word.partition("=")
        if name in with_arg:
            if eq:
                out.append(Setting(with_arg[name], attached, source))
            elif i < len(words):
                out.append(Setting(with_arg[name], words[i], source))
                i += 1
            else:
                out.append(Setting(with_arg[name], "", source))
            continue
        short = word[:2]
        if not word.startswith("--") and len(word) > 2 and short in with_arg:
            out.append(Setting(with_arg[short], word[2:], source))  # -l127.0.0.1
            continue
        if not eq and i < len(words) and not words[i].startswith("-"):
            out.append(Setting(name, words[i], source))  # unknown option: take its argument
            i += 1
            continue
        out.append(Setting(name, attached, source))
    return out


class IncludeGuard:
    """Bounds for following includes: depth, loops (by canonical path), file count."""

    def __init__(self, ctx: CollectContext, collector: str, max_files: int = MAX_FILES) -> None:
        self.ctx = ctx
        self.collector = collector
        self.max_files = max_files
        self.seen: set[str] = set()
        self.files: list[str] = []
        self.malformed: list[MalformedLine] = []

    def enter(self, path: str, depth: int, source: Source | None) -> bool:
        """True when ``path`` may be read now; records why not otherwise."""
        canon = canonical(self.ctx, path)
        where = source or Source(path)
        if depth > MAX_INCLUDE_DEPTH:
            reason = f"include deeper than {MAX_INCLUDE_DEPTH} levels"
            self.malformed.append(MalformedLine(reason, path, where))
            self.ctx.incomplete(f"not read: {reason} ({where})", path)
            return False
        if canon in self.seen:
            self.malformed.append(MalformedLine("include loop", path, where))
            return False
        if len(self.files) >= self.max_files:
            reason = f"more than {self.max_files} config files"
            self.malformed.append(MalformedLine(reason, path, where))
            self.ctx.incomplete(f"not read: {reason} ({where})", path)
            return False
        self.seen.add(canon)
        return True

    def read(self, path: str, depth: int = 0, source: Source | None = None) -> str | None:
        """Text of ``path`` when the bounds allow it and it exists; remembered in ``files``."""
        if not self.enter(path, depth, source):
            return None
        text = read_config(self.ctx, path)
        if text is not None:
            self.files.append(path)
        return text
