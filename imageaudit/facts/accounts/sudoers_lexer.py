"""How sudoers cuts a line: comments, quoting, and lists split at top-level separators.

A ``#`` starts a comment unless it is a uid (``#123``), escaped or quoted. A separator
(``,``, ``:`` or ``=``) counts only outside double quotes and parentheses and when no
backslash escapes it. Lines without a quote, parenthesis or backslash, by far the most
common, take a fast path that finds the same positions.

Follows: sudoers(5) ("SUDOERS FILE FORMAT", "Other special characters and reserved words").
"""

from __future__ import annotations

import itertools
import re


def unquote(value: str) -> str:
    """``value`` without its surrounding double quotes, or with its escaped spaces."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value.replace("\\ ", " ")


def strip_comment(line: str) -> str:
    """Drop a ``#`` comment; ``#123`` (a uid) and escaped or quoted ``#`` are kept."""
    if "#" not in line:  # most lines: no need for the character walk below
        return line
    in_quote = False
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            in_quote = not in_quote
        elif c == "#" and not in_quote and not line[i + 1 : i + 2].isdigit():
            return line[:i]
        i += 1
    return line


def _nests(text: str) -> bool:
    """Whether ``text`` holds a quote, a parenthesis or a backslash (the slow path's cases)."""
    return '"' in text or "(" in text or ")" in text or "\\" in text


_SPECIAL = {sep: re.compile(r'\\.?|["()]|' + re.escape(sep), re.S) for sep in ",:="}


def top_positions(text: str, sep: str) -> list[int]:
    """Indexes of ``sep`` outside quotes and parentheses and not escaped by a backslash."""
    if not _nests(text):  # nothing nests or escapes: every ``sep`` counts
        plain: list[int] = []
        i = text.find(sep)
        while i >= 0:
            plain.append(i)
            i = text.find(sep, i + 1)
        return plain
    special = _SPECIAL.get(sep) or re.compile(r'\\.?|["()]|' + re.escape(sep), re.S)
    found: list[int] = []
    depth = 0
    in_quote = False
    # Jump from one character that matters to the next instead of walking every character.
    for m in special.finditer(text):
        c = m.group()
        if c[0] == "\\":
            continue
        if c == '"':
            in_quote = not in_quote
        elif not in_quote and c == "(":
            depth += 1
        elif not in_quote and c == ")":
            depth = max(0, depth - 1)
        elif not in_quote and depth == 0 and c == sep:
            found.append(m.start())
    return found


def split_at(text: str, positions: list[int]) -> list[str]:
    bounds = [-1, *positions, len(text)]
    return [text[a + 1 : b] for a, b in itertools.pairwise(bounds)]


def split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quotes and parentheses and not escaped by a backslash."""
    if not _nests(text):
        return text.split(sep)
    return split_at(text, top_positions(text, sep))


def split_list(text: str) -> tuple[str, ...]:
    """The items of a ``,`` list, stripped, empty ones dropped."""
    return tuple(p.strip() for p in split_top(text, ",") if p.strip())
