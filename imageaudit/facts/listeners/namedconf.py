"""BIND ``named.conf``: a small bounded tokenizer for the brace syntax, and what it exposes.

Statements are words (strings keep their quotes), an optional ``{ ... }`` block of statements,
and a closing ``;``. ``include "file";`` is spliced in place (bounded, loops refused). An
unbalanced brace, an unterminated string or comment becomes a malformed record; what was
read up to there is kept.

Recorded settings: ``recursion``, ``allow-recursion``, ``allow-query``, ``allow-query-cache``,
``allow-transfer``, ``allow-update``, ``listen-on``, ``listen-on-v6`` from ``options``,
``view NAME`` and ``zone NAME`` blocks, with the block as their ``section``.

Follows named.conf(5) and the BIND 9 Administrator Reference Manual ("Configuration File
Grammar", "options Statement").
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import IncludeGuard, MalformedLine, join_path
from imageaudit.facts.listeners.model import DaemonBuilder
from imageaudit.model import Source

NAMED_FILES = ("/etc/bind/named.conf", "/etc/named.conf")
MAX_DEPTH = 64
MAX_TOKENS = 200_000
KEYS = frozenset(
    {
        "recursion", "allow-recursion", "allow-query", "allow-query-cache", "allow-transfer",
        "allow-update", "listen-on", "listen-on-v6",
    }
)
BLOCKS = frozenset({"options", "view", "zone"})


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # word | { | } | ;
    text: str
    line: int


@dataclass
class Statement:
    words: list[str]
    block: list[Statement] | None
    source: Source


def tokenize(text: str, path: str, malformed: list[MalformedLine]) -> list[Token]:
    """Words, strings, braces and semicolons; comments (``#``, ``//``, ``/* */``) skipped."""
    tokens: list[Token] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        if len(tokens) >= MAX_TOKENS:
            malformed.append(MalformedLine(f"more than {MAX_TOKENS} tokens", "", Source(path)))
            break
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end == -1 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end == -1:
                malformed.append(MalformedLine("unterminated comment", "", Source(path, line)))
                break
            line += text.count("\n", i, end)
            i = end + 2
        elif ch in "{};":
            tokens.append(Token(ch, ch, line))
            i += 1
        elif ch == '"':
            end = text.find('"', i + 1)
            if end == -1:
                malformed.append(MalformedLine("unterminated string", text[i : i + 80],
                                               Source(path, line)))
                break
            tokens.append(Token("word", text[i : end + 1], line))
            line += text.count("\n", i, end)
            i = end + 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in '{};"#':
                if text.startswith("//", i) or text.startswith("/*", i):
                    break
                i += 1
            tokens.append(Token("word", text[start:i], line))
    return tokens


class NamedParser:
    def __init__(self, ctx: CollectContext) -> None:
        self.guard = IncludeGuard(ctx, "listeners")

    def parse_file(self, path: str, depth: int, src: Source | None) -> list[Statement]:
        """Statements of ``path`` with includes spliced in; ``[]`` when it cannot be read."""
        text = self.guard.read(path, depth, src)
        if text is None:
            return []
        malformed = self.guard.malformed
        tokens = tokenize(text, path, malformed)
        root: list[Statement] = []
        stack: list[tuple[list[Statement], list[str], int]] = []  # enclosing level state
        level: list[Statement] = root
        words: list[str] = []
        start = 0
        for tok in tokens:
            if tok.kind == "word":
                if not words:
                    start = tok.line
                words.append(tok.text)
            elif tok.kind == "{":
                if len(stack) >= MAX_DEPTH:
                    malformed.append(MalformedLine(f"nesting deeper than {MAX_DEPTH}", "{",
                                                   Source(path, tok.line)))
                    break
                block: list[Statement] = []
                level.append(Statement(words, block, Source(path, start or tok.line)))
                stack.append((level, words, start))
                level, words = block, []
            elif tok.kind == "}":
                if words:  # a missing ';' before '}' is tolerated, like named-checkconf warns
                    level.append(Statement(words, None, Source(path, start)))
                if not stack:
                    malformed.append(MalformedLine("unexpected '}'", "}", Source(path, tok.line)))
                    words = []
                    continue
                level, words, start = stack.pop()
                words = []  # the statement owning the block is already in place
            else:  # ';'
                if words:
                    self._finish(level, Statement(words, None, Source(path, start)), depth)
                words = []
        if words:
            level.append(Statement(words, None, Source(path, start)))
        if stack:
            malformed.append(MalformedLine(f"{len(stack)} unclosed '{{' at end of file", "",
                                           Source(path)))
        return root

    def _finish(self, level: list[Statement], stmt: Statement, depth: int) -> None:
        if stmt.words[0] == "include" and len(stmt.words) == 2:
            target = join_path(posixpath.dirname(stmt.source.path), stmt.words[1].strip('"'))
            level.extend(self.parse_file(target, depth + 1, stmt.source))
            return
        level.append(stmt)


def render(stmt: Statement) -> str:
    """The value part of a statement as one line: ``port 53 { 127.0.0.1; any; }``."""
    parts = list(stmt.words[1:])
    if stmt.block is not None:
        inner = " ".join(render_whole(s) + ";" for s in stmt.block)
        parts.append("{ " + inner + " }" if inner else "{ }")
    return " ".join(parts)


def render_whole(stmt: Statement) -> str:
    head = stmt.words[0] if stmt.words else ""
    tail = render(stmt)
    return f"{head} {tail}".strip() if stmt.words else tail


def collect_bind(ctx: CollectContext) -> list[DaemonBuilder]:
    """Recursion, query and listen settings of named.conf and its includes."""
    out = DaemonBuilder("bind")
    parser = NamedParser(ctx)
    statements: list[Statement] = []
    for path in NAMED_FILES:
        statements.extend(parser.parse_file(path, 0, None))
    out.files.extend(parser.guard.files)
    out.malformed.extend(parser.guard.malformed)
    todo: list[tuple[Statement, str | None]] = [(s, None) for s in statements]
    todo.reverse()
    while todo:
        stmt, section = todo.pop()
        if not stmt.words:
            continue
        head = stmt.words[0]
        if head in BLOCKS and stmt.block is not None:
            name = " ".join([head, *(w.strip('"') for w in stmt.words[1:2])])
            inner = section + " " + name if section else name
            todo.extend((s, inner) for s in reversed(stmt.block))
        elif head in KEYS and section is not None:
            out.add(head, render(stmt), stmt.source, section)
    return [out]
