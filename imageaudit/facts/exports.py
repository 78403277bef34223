"""NFS exports: ``/etc/exports`` and ``/etc/exports.d/*.exports``.

Each client of each export line is one entry with the options given and the options in
effect once nfs-utils' defaults are applied. Two traps are made explicit: a line with no
client at all exports to everyone, and ``/srv host (rw)`` — a space before the parenthesis —
gives ``host`` the defaults and *everyone* ``(rw)``; both become a ``*`` client with the
reason recorded.

Follows: exports(5), exportfs(8) (nfs-utils support/nfs/exports.c behaviour for defaults,
quoting, ``\\`` continuations, ``-options`` default lines, "No host name given").
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from imageaudit.facts.base import CollectContext, Collector
from imageaudit.facts.textlines import MalformedLine, logical_lines
from imageaudit.model import Source

MAIN = "/etc/exports"
DROPIN_GLOB = "/etc/exports.d/*.exports"

DEFAULT_OPTIONS: tuple[str, ...] = (
    "ro",
    "sync",
    "wdelay",
    "hide",
    "no_subtree_check",
    "secure",
    "root_squash",
    "no_all_squash",
    "secure_locks",
    "sec=sys",
    "anonuid=65534",
    "anongid=65534",
)
# Options that replace one another; the key names the setting they belong to.
_GROUPS: dict[str, str] = {
    "ro": "access", "rw": "access",
    "sync": "sync", "async": "sync",
    "wdelay": "wdelay", "no_wdelay": "wdelay",
    "hide": "hide", "nohide": "hide",
    "subtree_check": "subtree", "no_subtree_check": "subtree",
    "secure": "secure", "insecure": "secure",
    "root_squash": "root_squash", "no_root_squash": "root_squash",
    "all_squash": "all_squash", "no_all_squash": "all_squash",
    "secure_locks": "locks", "insecure_locks": "locks",
    "auth_nlm": "locks", "no_auth_nlm": "locks",
    "acl": "acl", "no_acl": "acl",
    "crossmnt": "crossmnt", "nocrossmnt": "crossmnt",
    "pnfs": "pnfs", "no_pnfs": "pnfs",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExportEntry:
    """One (path, client) pair of an exports line."""

    source: Source
    path: str
    client: str
    options: tuple[str, ...]  # as written (including a line's ``-options`` defaults)
    effective_options: tuple[str, ...]
    world_via_space: bool = False  # "(opts)" separated from its host by a space
    no_client_given: bool = False  # path alone: exportfs exports it to "*"


@dataclass(frozen=True, slots=True)
class ExportsFile:
    path: str
    present: bool


@dataclass(frozen=True, slots=True)
class ExportsFacts:
    files: tuple[ExportsFile, ...]
    entries: tuple[ExportEntry, ...]
    malformed: tuple[MalformedLine, ...]


@functools.lru_cache(maxsize=1024)  # tables repeat a few option lists many times
def effective_options(given: tuple[str, ...]) -> tuple[str, ...]:
    """nfs-utils defaults with the given options applied in order (later ones win)."""
    slots: dict[str, str] = {}
    for opt in (*DEFAULT_OPTIONS, *given):
        key = opt.split("=", 1)[0] + "=" if "=" in opt else _GROUPS.get(opt, opt)
        slots[key] = opt  # keeps the default's position
    return tuple(slots.values())


# C isspace() in the C locale, as nfs-utils' xgettok uses it (not Python's wider str.isspace).
_C_SPACE = frozenset(" \t\n\v\f\r")
_WORD_RE = re.compile(r"[^ \t\n\v\f\r]+")


def _tokens(line: str) -> list[str] | None:
    """Whitespace-separated words; double quotes group; ``None`` on an open quote."""
    if '"' not in line:
        return _WORD_RE.findall(line)
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i] in _C_SPACE:
            i += 1
            continue
        word: list[str] = []
        quote = False
        while i < n and (quote or line[i] not in _C_SPACE):
            if line[i] == '"':
                quote = not quote
            else:
                word.append(line[i])
            i += 1
        if quote:
            return None
        out.append("".join(word))
    return out


def _unescape(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


@functools.lru_cache(maxsize=1024)
def _split_opts(text: str) -> tuple[str, ...]:
    return tuple(o.strip() for o in text.split(",") if o.strip())


def parse_exports(path: str, text: str) -> tuple[list[ExportEntry], list[MalformedLine]]:
    """Entries and malformed lines of one exports file."""
    entries: list[ExportEntry] = []
    malformed: list[MalformedLine] = []
    for lineno, raw in logical_lines(text):
        line = raw.split("#", 1)[0] if not raw.lstrip().startswith('"') else _strip_quoted(raw)
        src = Source(path, lineno)
        words = _tokens(line)
        if words is None:
            malformed.append(MalformedLine(src, "unterminated quote", raw))
            continue
        if not words:
            continue
        export = _unescape(words[0])
        if not export.startswith("/"):
            malformed.append(MalformedLine(src, "export path is not absolute", raw))
            continue
        found = _clients(src, export, words[1:], raw, malformed)
        entries.extend(found)
    return entries, malformed


def _strip_quoted(raw: str) -> str:
    end = raw.find('"', raw.find('"') + 1)
    if end < 0:
        return raw
    return raw[: end + 1] + raw[end + 1 :].split("#", 1)[0]


def _clients(
    src: Source, export: str, words: list[str], raw: str, malformed: list[MalformedLine]
) -> list[ExportEntry]:
    out: list[ExportEntry] = []
    line_defaults: tuple[str, ...] = ()
    clients = 0
    for word in words:
        if word.startswith("-"):
            line_defaults = _split_opts(word[1:])
            continue
        m = re.fullmatch(r"([^()]*)(?:\(([^()]*)\))?", word)
        clients += 1
        if m is None:
            malformed.append(MalformedLine(src, f"bad client specification {word!r}", raw))
            continue
        client = m.group(1)
        given = (*line_defaults, *_split_opts(m.group(2) or ""))
        out.append(
            ExportEntry(
                source=src,
                path=export,
                client=client or "*",
                options=given,
                effective_options=effective_options(given),
                world_via_space=not client,
            )
        )
    if not clients:
        out.append(
            ExportEntry(
                source=src,
                path=export,
                client="*",
                options=line_defaults,
                effective_options=effective_options(line_defaults),
                no_client_given=True,
            )
        )
    return out


def collect(ctx: CollectContext) -> ExportsFacts:
    """Read the NFS export tables of the image."""
    files: list[ExportsFile] = []
    entries: list[ExportEntry] = []
    malformed: list[MalformedLine] = []
    for path in [MAIN, *ctx.fs.glob(DROPIN_GLOB)]:
        # None when absent; a cut, dangling or unreadable table marks the facts incomplete.
        text = ctx.read_text(path)
        files.append(ExportsFile(path, text is not None))
        if text is None:
            continue
        found, bad = parse_exports(path, text)
        entries.extend(found)
        malformed.extend(bad)
    return ExportsFacts(files=tuple(files), entries=tuple(entries), malformed=tuple(malformed))


COLLECTOR = Collector(name="exports", patterns=(MAIN, DROPIN_GLOB), collect=collect)
