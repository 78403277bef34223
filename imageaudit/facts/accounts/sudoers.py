"""Parse ``/etc/sudoers`` and what it includes: rules, aliases, ``Defaults``, includes.

Includes are followed as sudo does: ``@include``/``#include`` files (relative paths against
the including file's directory), ``@includedir``/``#includedir`` directories whose entries
are read in sorted order, skipping names that contain ``.`` or end in ``~``. Depth is bounded
and cycles are stopped and recorded. Aliases are recorded and expanded (bounded) on each rule.
The records are in :mod:`.sudoers_model`, the grammar of one line in :mod:`.sudoers_grammar`.

Follows: sudoers(5) ("SUDOERS FILE FORMAT", "Including other files from within sudoers",
"Other special characters and reserved words").
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from imageaudit.facts.accounts.sudoers_grammar import (
    RawCommand,
    SudoersLines,
    parse_line,
)
from imageaudit.facts.accounts.sudoers_lexer import split_list, unquote
from imageaudit.facts.accounts.sudoers_model import (
    SudoAlias,
    SudoCommand,
    SudoDefault,
    SudoersFacts,
    SudoInclude,
    SudoRule,
)
from imageaudit.facts.textlines import IncludeBudget, logical_lines
from imageaudit.model import Source

__all__ = [
    "MAX_PARSES",
    "SudoAlias",
    "SudoCommand",
    "SudoDefault",
    "SudoInclude",
    "SudoRule",
    "SudoersFacts",
    "expand",
    "parse_sudoers",
]

MAX_INCLUDE_DEPTH = 16
MAX_ALIAS_DEPTH = 16
MAX_INCLUDEDIR_FILES = 1000
# sudo parses an included file again wherever it is included: files that include a directory
# of files that include it again fan out exponentially. Past these totals we stop reading and
# say the sudoers facts are incomplete.
MAX_PARSES = 1024
MAX_LINES = 500_000

_ALIAS_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_INCLUDE_RE = re.compile(r"^\s*[@#](include|includedir)\s+(.+?)\s*$")


@dataclass
class _State:
    # An include fan-out is bounded, and each file is read once.
    budget: IncludeBudget
    listdir: Callable[[str], list[str] | None]
    files: list[str] = field(default_factory=list)
    lines: SudoersLines = field(default_factory=SudoersLines)
    includes: list[SudoInclude] = field(default_factory=list)


def parse_sudoers(
    read: Callable[[str], str | None],
    listdir: Callable[[str], list[str] | None],
    path: str = "/etc/sudoers",
    incomplete: Callable[[str, str | None], None] | None = None,
) -> SudoersFacts:
    """Parse ``path`` and its includes. ``read``/``listdir`` return ``None`` when absent.

    ``incomplete(message, path)`` is told when the includes fan out past :data:`MAX_PARSES`
    inclusions or :data:`MAX_LINES` lines, where reading stops.
    """

    def stopped(why: str, path: str) -> None:
        if incomplete is not None:
            incomplete(f"sudoers was not read whole: {why}", path)

    state = _State(IncludeBudget(read, MAX_PARSES, MAX_LINES, stopped), listdir)
    text = read(path)
    if text is None:
        return SudoersFacts(present=False)
    _parse_file(state, path, text, [path])
    lines = state.lines
    aliases = _alias_table(lines.aliases)
    rules = tuple(_finish_rule(aliases, *raw) for raw in lines.rules)
    return SudoersFacts(
        present=True,
        files=tuple(state.files),
        rules=rules,
        aliases=tuple(lines.aliases),
        defaults=tuple(lines.defaults),
        includes=tuple(state.includes),
        malformed=tuple(lines.malformed),
    )


def _parse_file(state: _State, path: str, text: str, stack: list[str]) -> None:
    state.files.append(path)
    lines = list(logical_lines(text))
    if not state.budget.parse(len(lines)):
        state.budget.stop(f"over {MAX_LINES} lines in all, counting each inclusion", path)
        return
    for lineno, raw in lines:
        if state.budget.stopped:
            return
        source = Source(path, lineno)
        inc = _INCLUDE_RE.match(raw)
        if inc:
            _include(state, source, inc.group(1), unquote(inc.group(2)), stack)
            continue
        parse_line(state.lines, source, raw)


def _include(state: _State, source: Source, directive: str, target: str, stack: list[str]) -> None:
    if "%h" in target:
        state.includes.append(
            SudoInclude(source, directive, target, (), "depends on the host name (%h)")
        )
        return
    if not target.startswith("/"):
        target = posixpath.join(posixpath.dirname(source.path), target)
    target = posixpath.normpath(target)
    if directive == "include":
        candidates = [target]
    else:
        names = state.listdir(target)
        if names is None:
            state.includes.append(SudoInclude(source, directive, target, (), "directory absent"))
            return
        candidates = [
            posixpath.join(target, n) for n in sorted(names) if "." not in n and not n.endswith("~")
        ][:MAX_INCLUDEDIR_FILES]
    files: list[str] = []
    problems: list[str] = []
    for cand in candidates:
        if cand in stack:
            problems.append(f"include loop at {cand}")
            continue
        if len(stack) >= MAX_INCLUDE_DEPTH:
            problems.append(f"include depth over {MAX_INCLUDE_DEPTH} at {cand}")
            continue
        if state.budget.stopped:
            break
        if state.budget.full():
            problems.append(f"over {MAX_PARSES} inclusions")
            state.budget.stop(f"over {MAX_PARSES} file inclusions in all ({source})", cand)
            break
        text = state.budget.text(cand)
        if text is None:
            problems.append(f"{cand} absent")
            continue
        files.append(cand)
        _parse_file(state, cand, text, [*stack, cand])
    state.includes.append(
        SudoInclude(source, directive, target, tuple(files), "; ".join(problems) or None)
    )


AliasTable = Mapping[tuple[str, str], tuple[str, ...]]


def _alias_table(aliases: list[SudoAlias]) -> dict[tuple[str, str], tuple[str, ...]]:
    table: dict[tuple[str, str], tuple[str, ...]] = {}
    for alias in aliases:
        table.setdefault((alias.kind, alias.name), alias.members)  # sudo warns on redefinition
    return table


def expand(table: AliasTable, kind: str, items: tuple[str, ...], depth: int = 0) -> tuple[str, ...]:
    """Substitute aliases of ``kind`` (bounded depth); a negated alias negates its members."""
    out: list[str] = []
    for item in items:
        neg = item.startswith("!")
        name = item.lstrip("!").strip()
        members = table.get((kind, name)) if _ALIAS_NAME.fullmatch(name) else None
        if members is None or depth >= MAX_ALIAS_DEPTH:
            out.append(item)
            continue
        for member in expand(table, kind, members, depth + 1):
            if neg:
                out.append(member[1:] if member.startswith("!") else "!" + member)
            else:
                out.append(member)
    return tuple(out)


def _finish_rule(
    table: AliasTable, source: Source, users_text: str, hosts_text: str, raw: list[RawCommand]
) -> SudoRule:
    users = split_list(users_text)
    hosts = split_list(hosts_text)
    commands = tuple(
        SudoCommand(
            command=c.command,
            runas_users=c.runas_users,
            runas_groups=c.runas_groups,
            tags=c.tags,
            options=c.options,
            expanded=expand(table, "Cmnd_Alias", (c.command,)),
            runas_users_expanded=expand(table, "Runas_Alias", c.runas_users),
        )
        for c in raw
    )
    return SudoRule(
        source=source,
        users=users,
        hosts=hosts,
        commands=commands,
        users_expanded=expand(table, "User_Alias", users),
        hosts_expanded=expand(table, "Host_Alias", hosts),
    )
