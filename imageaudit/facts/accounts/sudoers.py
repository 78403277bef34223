"""Parse ``/etc/sudoers`` and what it includes: rules, aliases, ``Defaults``, includes.

Includes are followed as sudo does: ``@include``/``#include`` files (relative paths against
the including file's directory), ``@includedir``/``#includedir`` directories whose entries
are read in sorted order, skipping names that contain ``.`` or end in ``~``. Depth is bounded
and cycles are stopped and recorded. Aliases are recorded and expanded (bounded) on each rule.

Follows: sudoers(5) ("SUDOERS FILE FORMAT", "Including other files from within sudoers",
"Other special characters and reserved words").
"""

from __future__ import annotations

import itertools
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from imageaudit.facts.textlines import IncludeBudget, MalformedLine, logical_lines
from imageaudit.model import Source

MAX_INCLUDE_DEPTH = 16
MAX_ALIAS_DEPTH = 16
MAX_INCLUDEDIR_FILES = 1000
# sudo parses an included file again wherever it is included: files that include a directory
# of files that include it again fan out exponentially. Past these totals we stop reading and
# say the sudoers facts are incomplete.
MAX_PARSES = 1024
MAX_LINES = 500_000

TAGS = frozenset(
    {
        "NOPASSWD", "PASSWD", "NOEXEC", "EXEC", "SETENV", "NOSETENV", "LOG_INPUT",
        "NOLOG_INPUT", "LOG_OUTPUT", "NOLOG_OUTPUT", "MAIL", "NOMAIL", "FOLLOW",
        "NOFOLLOW", "INTERCEPT", "NOINTERCEPT",
    }
)  # fmt: skip
ALIAS_KINDS = {
    "user_alias": "User_Alias",
    "runas_alias": "Runas_Alias",
    "host_alias": "Host_Alias",
    "cmnd_alias": "Cmnd_Alias",
    "cmd_alias": "Cmnd_Alias",
}
_OPTION_RE = re.compile(
    r"(ROLE|TYPE|CWD|CHROOT|TIMEOUT|NOTBEFORE|NOTAFTER|APPARMOR_PROFILE|PRIVS|LIMITPRIVS)"
    r"=(\S+)\s*"
)
_TAG_RE = re.compile(r"([A-Z_]+)\s*:\s*")
_ALIAS_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_INCLUDE_RE = re.compile(r"^\s*[@#](include|includedir)\s+(.+?)\s*$")


@dataclass(frozen=True, slots=True)
class SudoAlias:
    source: Source
    kind: str  # User_Alias, Runas_Alias, Host_Alias, Cmnd_Alias
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SudoDefault:
    """One setting of a ``Defaults`` line; ``binding_type`` is "", "@", ":", "!" or ">"."""

    source: Source
    binding_type: str
    binding: tuple[str, ...]
    name: str
    operator: str | None  # "=", "+=", "-=" or None for a flag
    value: str | None
    negated: bool


@dataclass(frozen=True, slots=True)
class SudoCommand:
    """One command of a rule with the runas, tags and options in force for it."""

    command: str
    runas_users: tuple[str, ...]  # empty: not given (sudo runs as runas_default, root)
    runas_groups: tuple[str, ...]
    tags: tuple[str, ...]
    options: tuple[str, ...]
    expanded: tuple[str, ...]  # Cmnd_Alias members substituted
    runas_users_expanded: tuple[str, ...]  # Runas_Alias members substituted


@dataclass(frozen=True, slots=True)
class SudoRule:
    """One ``user_list host_list = cmnd_spec_list`` group of a user specification line."""

    source: Source
    users: tuple[str, ...]
    hosts: tuple[str, ...]
    commands: tuple[SudoCommand, ...]
    users_expanded: tuple[str, ...]
    hosts_expanded: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SudoInclude:
    source: Source
    directive: str  # "include" or "includedir"
    target: str
    files: tuple[str, ...]  # in-image files it brought in
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class SudoersFacts:
    present: bool
    files: tuple[str, ...] = ()
    rules: tuple[SudoRule, ...] = ()
    aliases: tuple[SudoAlias, ...] = ()
    defaults: tuple[SudoDefault, ...] = ()
    includes: tuple[SudoInclude, ...] = ()
    malformed: tuple[MalformedLine, ...] = ()


@dataclass
class _State:
    # An include fan-out is bounded, and each file is read once.
    budget: IncludeBudget
    listdir: Callable[[str], list[str] | None]
    files: list[str] = field(default_factory=list)
    rules: list[tuple[Source, str, str, list[_RawCommand]]] = field(default_factory=list)
    aliases: list[SudoAlias] = field(default_factory=list)
    defaults: list[SudoDefault] = field(default_factory=list)
    includes: list[SudoInclude] = field(default_factory=list)
    malformed: list[MalformedLine] = field(default_factory=list)


@dataclass
class _RawCommand:
    command: str
    runas_users: tuple[str, ...]
    runas_groups: tuple[str, ...]
    tags: tuple[str, ...]
    options: tuple[str, ...]


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
    aliases = _alias_table(state.aliases)
    rules = tuple(_finish_rule(aliases, *raw) for raw in state.rules)
    return SudoersFacts(
        present=True,
        files=tuple(state.files),
        rules=rules,
        aliases=tuple(state.aliases),
        defaults=tuple(state.defaults),
        includes=tuple(state.includes),
        malformed=tuple(state.malformed),
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
            _include(state, source, inc.group(1), _unquote(inc.group(2)), stack)
            continue
        line = _strip_comment(raw).strip()
        if not line:
            continue
        keyword = line.split(None, 1)[0]
        if re.match(r"Defaults(?:$|[\s@:!>])", line):
            _parse_defaults(state, source, line)
        elif keyword.lower() in ALIAS_KINDS:
            _parse_alias(state, source, ALIAS_KINDS[keyword.lower()], line[len(keyword) :])
        else:
            _parse_user_spec(state, source, line)


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


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value.replace("\\ ", " ")


def _strip_comment(line: str) -> str:
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


def _top_positions(text: str, sep: str) -> list[int]:
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


def _split_at(text: str, positions: list[int]) -> list[str]:
    bounds = [-1, *positions, len(text)]
    return [text[a + 1 : b] for a, b in itertools.pairwise(bounds)]


def split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quotes and parentheses and not escaped by a backslash."""
    if not _nests(text):
        return text.split(sep)
    return _split_at(text, _top_positions(text, sep))


def _list(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in split_top(text, ",") if p.strip())


def _parse_defaults(state: _State, source: Source, line: str) -> None:
    rest = line[len("Defaults") :]
    binding_type = ""
    binding: tuple[str, ...] = ()
    if rest[:1] in ("@", ":", "!", ">"):
        binding_type = rest[0]
        m = re.match(r"((?:[^\s,\\]|\\.|\s*,\s*)+)", rest[1:])
        blist = m.group(1) if m else ""
        binding = _list(blist)
        rest = rest[1 + len(blist) :]
    settings = _list(rest)
    if not settings:
        state.malformed.append(MalformedLine(source, "Defaults without a setting", line))
    for item in settings:
        m = re.match(r"^(!*)\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:([+-]?=)\s*(.*))?$", item, re.S)
        if m is None:
            state.malformed.append(MalformedLine(source, f"bad Defaults setting {item!r}", line))
            continue
        value = m.group(4)
        if value is not None:
            value = _unquote(value.strip())
        state.defaults.append(
            SudoDefault(
                source=source,
                binding_type=binding_type,
                binding=binding,
                name=m.group(2),
                operator=m.group(3),
                value=value,
                negated=len(m.group(1)) % 2 == 1,
            )
        )


def _parse_alias(state: _State, source: Source, kind: str, rest: str) -> None:
    for chunk in re.split(r"(?<!\\):(?=\s*[A-Z][A-Z0-9_]*\s*=)", rest):
        m = re.match(r"^\s*([A-Z][A-Z0-9_]*)\s*=(.*)$", chunk, re.S)
        if m is None:
            state.malformed.append(MalformedLine(source, f"bad {kind} definition", rest.strip()))
            continue
        state.aliases.append(SudoAlias(source, kind, m.group(1), _list(m.group(2))))


_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_LONGEST_TAG = 16


def _word_before(text: str, pos: int) -> str:
    """The word (letters, digits, ``_``) that ends, spaces aside, right before ``pos``.

    Walks back from ``pos`` instead of searching the whole prefix (which was quadratic in a
    line of many ``:``); a word longer than any tag is cut, since it is no tag either way.
    """
    end = pos
    while end > 0 and text[end - 1].isspace():
        end -= 1
    start = end
    while start > 0 and end - start <= _LONGEST_TAG and text[start - 1] in _WORD_CHARS:
        start -= 1
    return text[start:end]


def _split_host_groups(text: str) -> list[str]:
    """Split a user spec after the user list at ``:`` that end neither a tag nor a digest."""
    keep: list[int] = []
    for pos in _top_positions(text, ":"):
        name = _word_before(text, pos)
        if name in TAGS or re.fullmatch(r"sha(224|256|384|512)", name):
            continue
        keep.append(pos)
    return _split_at(text, keep)


def _parse_user_spec(state: _State, source: Source, line: str) -> None:
    head_rest = split_top(line, "=")
    if len(head_rest) < 2:
        state.malformed.append(MalformedLine(source, "not a sudoers rule", line))
        return
    head = re.sub(r"\s*,\s*", ",", head_rest[0].strip())
    words = head.split()
    if len(words) != 2:
        state.malformed.append(MalformedLine(source, "expected 'users hosts = commands'", line))
        return
    users_text = words[0]
    body = line[len(head_rest[0]) + 1 :]
    groups = _split_host_groups(body)
    hosts_text = words[1]
    for index, group in enumerate(groups):
        if index > 0:
            hc = split_top(group, "=")
            if len(hc) < 2:
                state.malformed.append(MalformedLine(source, "host group without '='", line))
                return
            hosts_text = hc[0].strip()
            group = group[len(hc[0]) + 1 :]
        commands = _parse_cmnd_list(group)
        if not commands:
            state.malformed.append(MalformedLine(source, "rule without commands", line))
            continue
        state.rules.append((source, users_text, hosts_text, commands))


def _parse_cmnd_list(text: str) -> list[_RawCommand]:
    out: list[_RawCommand] = []
    runas_u: tuple[str, ...] = ()
    runas_g: tuple[str, ...] = ()
    tags: dict[str, str] = {}
    for spec in _list(text):
        rest = spec
        if rest.startswith("("):
            close = rest.find(")")
            inner = rest[1:close] if close > 0 else rest[1:]
            rest = rest[close + 1 :].lstrip() if close > 0 else ""
            user_part, _, group_part = inner.partition(":")
            runas_u, runas_g = _list(user_part), _list(group_part)
        options: list[str] = []
        while True:
            m = _OPTION_RE.match(rest)
            if m:
                options.append(f"{m.group(1)}={m.group(2)}")
                rest = rest[m.end() :]
                continue
            t = _TAG_RE.match(rest)
            if t and t.group(1) in TAGS:
                name = t.group(1)
                tags[name.removeprefix("NO")] = name
                rest = rest[t.end() :]
                continue
            break
        out.append(
            _RawCommand(rest.strip(), runas_u, runas_g, tuple(tags.values()), tuple(options))
        )
    return out


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
    table: AliasTable, source: Source, users_text: str, hosts_text: str, raw: list[_RawCommand]
) -> SudoRule:
    users = _list(users_text)
    hosts = _list(hosts_text)
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
