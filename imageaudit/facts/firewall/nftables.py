"""nftables ruleset files: a small bounded tokenizer and the base chains they declare.

Understands the block syntax (``table inet filter { chain input { type filter hook input
priority 0; policy drop; ... } }``) and the flat one (``add chain inet filter input { ... }``,
``add rule inet filter input ...``), ``include "file-or-glob"`` (relative names under
``/etc``, nft's default include path), with depth, loop and token bounds. A chain's policy
is recorded as written, ``None`` when absent (nft then accepts).

Follows nft(8) ("TABLES", "CHAINS", "RULES", "INCLUDE FILES", "LEXICAL CONVENTIONS").
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import IncludeGuard, MalformedLine, glob_files
from imageaudit.model import Source

NFT_MAIN = ("/etc/nftables.conf", "/etc/sysconfig/nftables.conf")
INCLUDE_DIR = "/etc"
MAX_TOKENS = 200_000
MAX_DEPTH = 32
FAMILIES = frozenset({"ip", "ip6", "inet", "arp", "bridge", "netdev"})
VERBS = frozenset({"add", "create", "insert", "replace"})


@dataclass(frozen=True, slots=True)
class NftChain:
    family: str
    table: str
    name: str
    type: str | None  # filter, nat, route; None for a regular (non-base) chain
    hook: str | None
    priority: str | None
    policy: str | None  # as written; None when not stated
    rules: int
    source: Source


@dataclass
class _Stmt:
    words: list[str]
    block: list[_Stmt] | None
    source: Source


def _tokenize(text: str, path: str, bad: list[MalformedLine]) -> list[tuple[str, int]]:
    """Tokens with line numbers; newlines and ';' both end a statement (token ';')."""
    out: list[tuple[str, int]] = []
    i, line, n = 0, 1, len(text)
    while i < n and len(out) < MAX_TOKENS:
        ch = text[i]
        if ch == "\\" and text.startswith("\\\n", i):
            i, line = i + 2, line + 1
        elif ch == "\n":
            out.append((";", line))
            i, line = i + 1, line + 1
        elif ch.isspace():
            i += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end == -1 else end
        elif ch in "{};":
            out.append((ch, line))
            i += 1
        elif ch == '"':
            end = text.find('"', i + 1)
            if end == -1 or "\n" in text[i:end]:
                eol = text.find("\n", i)
                eol = n if eol == -1 else eol
                bad.append(MalformedLine("unterminated string", text[i : min(eol, i + 80)],
                                         Source(path, line)))
                i = eol
                continue
            out.append((text[i : end + 1], line))
            i = end + 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in '{};#"':
                i += 1
            out.append((text[start:i], line))
    if len(out) >= MAX_TOKENS:
        bad.append(MalformedLine(f"more than {MAX_TOKENS} tokens", "", Source(path)))
    return out


class NftParser:
    def __init__(self, ctx: CollectContext) -> None:
        self.guard = IncludeGuard(ctx, "firewall")

    def parse_file(self, path: str, depth: int, src: Source | None) -> list[_Stmt]:
        text = self.guard.read(path, depth, src)
        if text is None:
            return []
        bad = self.guard.malformed
        root: list[_Stmt] = []
        stack: list[list[_Stmt]] = []
        level: list[_Stmt] = root
        words: list[str] = []
        start = 0
        for tok, line in _tokenize(text, path, bad):
            if tok == "{":
                if len(stack) >= MAX_DEPTH:
                    bad.append(MalformedLine(f"nesting deeper than {MAX_DEPTH}", "{",
                                             Source(path, line)))
                    break
                block: list[_Stmt] = []
                level.append(_Stmt(words, block, Source(path, start or line)))
                stack.append(level)
                level, words = block, []
            elif tok == "}":
                if words:
                    self._finish(level, _Stmt(words, None, Source(path, start)), depth)
                words = []
                if not stack:
                    bad.append(MalformedLine("unexpected '}'", "}", Source(path, line)))
                    continue
                level = stack.pop()
            elif tok == ";":
                if words:
                    self._finish(level, _Stmt(words, None, Source(path, start)), depth)
                words = []
            else:
                if not words:
                    start = line
                words.append(tok)
        if words:
            self._finish(level, _Stmt(words, None, Source(path, start)), depth)
        if stack:
            bad.append(MalformedLine(f"{len(stack)} unclosed '{{' at end of file", "",
                                     Source(path)))
        return root

    def _finish(self, level: list[_Stmt], stmt: _Stmt, depth: int) -> None:
        if stmt.words[0] == "include" and len(stmt.words) == 2:
            name = stmt.words[1].strip('"')
            pattern = name if name.startswith("/") else posixpath.join(INCLUDE_DIR, name)
            for inc in glob_files(self.guard.ctx, pattern):
                level.extend(self.parse_file(inc, depth + 1, stmt.source))
            return
        level.append(stmt)


def _family_table(words: list[str]) -> tuple[str, str] | None:
    if words and words[0] in FAMILIES:
        return (words[0], words[1]) if len(words) > 1 else None
    return ("ip", words[0]) if words else None  # nft's default family is ip


def _base(stmts: list[_Stmt]) -> dict[str, str | None]:
    info: dict[str, str | None] = {"type": None, "hook": None, "priority": None, "policy": None}
    for s in stmts:
        w = s.words
        if w[0] == "type" and len(w) >= 4 and w[2] == "hook":
            info["type"], info["hook"] = w[1], w[3]
            if "priority" in w:
                idx = w.index("priority")
                info["priority"] = " ".join(w[idx + 1 :]) or None
        elif w[0] == "policy" and len(w) >= 2:
            info["policy"] = w[1]
    return info


def _is_rule(stmt: _Stmt) -> bool:
    return stmt.words[0] not in ("type", "policy", "comment", "devices") and stmt.block is None


@dataclass
class _Slot:
    source: Source
    info: dict[str, str | None]
    rules: int = 0

    def merge(self, body: list[_Stmt]) -> None:
        self.info.update({k: v for k, v in _base(body).items() if v is not None})
        self.rules += sum(1 for s in body if _is_rule(s))


def _chain_name(rest: list[str]) -> str | None:
    """The chain name in ``[family] table chain``."""
    need = 3 if rest and rest[0] in FAMILIES else 2
    return rest[need - 1] if len(rest) >= need else None


def chains(statements: list[_Stmt]) -> list[NftChain]:
    """Chains of every table, merged when a chain is declared more than once."""
    found: dict[tuple[str, str, str], _Slot] = {}

    def slot(key: tuple[str, str, str], source: Source) -> _Slot:
        return found.setdefault(key, _Slot(source, _base([])))

    for stmt in statements:
        words = stmt.words[1:] if stmt.words[0] in VERBS else stmt.words
        if not words:
            continue
        kind, rest = words[0], words[1:]
        ft = _family_table(rest)
        if ft is None:
            continue
        if kind == "table" and stmt.block is not None:
            for inner in stmt.block:
                if inner.words[0] == "chain" and len(inner.words) >= 2:
                    slot((*ft, inner.words[1]), inner.source).merge(inner.block or [])
        elif kind == "chain" and (name := _chain_name(rest)) is not None:
            slot((*ft, name), stmt.source).merge(stmt.block or [])
        elif kind == "rule" and stmt.words[0] in VERBS and (name := _chain_name(rest)):
            slot((*ft, name), stmt.source).rules += 1
    return [
        NftChain(family, table, name, sl.info["type"], sl.info["hook"], sl.info["priority"],
                 sl.info["policy"], sl.rules, sl.source)
        for (family, table, name), sl in sorted(found.items())
    ]
