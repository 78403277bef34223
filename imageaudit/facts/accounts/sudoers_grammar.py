"""The line grammar of sudoers: one logical line into ``Defaults``, aliases or rule groups.

A user specification is cut into ``host_list = cmnd_spec_list`` groups at the ``:`` that end
neither a tag nor a digest, and each command carries the runas lists, tags and options in
force before it. Cutting at separators and comments is :mod:`.sudoers_lexer`'s; includes and
alias expansion are the reader's (:mod:`imageaudit.facts.accounts.sudoers`).

Follows: sudoers(5) ("SUDOERS FILE FORMAT", "Other special characters and reserved words").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from imageaudit.facts.accounts.sudoers_lexer import (
    split_at,
    split_list,
    split_top,
    strip_comment,
    top_positions,
    unquote,
)
from imageaudit.facts.accounts.sudoers_model import SudoAlias, SudoDefault
from imageaudit.facts.textlines import MalformedLine
from imageaudit.model import Source

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


@dataclass
class RawCommand:
    """A command of a rule as written, before its aliases are expanded."""

    command: str
    runas_users: tuple[str, ...]
    runas_groups: tuple[str, ...]
    tags: tuple[str, ...]
    options: tuple[str, ...]


@dataclass
class SudoersLines:
    """What the lines read so far said, in reading order.

    A rule is ``(source, users, hosts, commands)``, its user and host lists still as written.
    """

    rules: list[tuple[Source, str, str, list[RawCommand]]] = field(default_factory=list)
    aliases: list[SudoAlias] = field(default_factory=list)
    defaults: list[SudoDefault] = field(default_factory=list)
    malformed: list[MalformedLine] = field(default_factory=list)


def parse_line(out: SudoersLines, source: Source, raw: str) -> None:
    """Add what the logical line ``raw`` (not an include) says to ``out``."""
    line = strip_comment(raw).strip()
    if not line:
        return
    keyword = line.split(None, 1)[0]
    if re.match(r"Defaults(?:$|[\s@:!>])", line):
        _parse_defaults(out, source, line)
    elif keyword.lower() in ALIAS_KINDS:
        _parse_alias(out, source, ALIAS_KINDS[keyword.lower()], line[len(keyword) :])
    else:
        _parse_user_spec(out, source, line)


def _parse_defaults(out: SudoersLines, source: Source, line: str) -> None:
    rest = line[len("Defaults") :]
    binding_type = ""
    binding: tuple[str, ...] = ()
    if rest[:1] in ("@", ":", "!", ">"):
        binding_type = rest[0]
        m = re.match(r"((?:[^\s,\\]|\\.|\s*,\s*)+)", rest[1:])
        blist = m.group(1) if m else ""
        binding = split_list(blist)
        rest = rest[1 + len(blist) :]
    settings = split_list(rest)
    if not settings:
        out.malformed.append(MalformedLine(source, "Defaults without a setting", line))
    for item in settings:
        m = re.match(r"^(!*)\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:([+-]?=)\s*(.*))?$", item, re.S)
        if m is None:
            out.malformed.append(MalformedLine(source, f"bad Defaults setting {item!r}", line))
            continue
        value = m.group(4)
        if value is not None:
            value = unquote(value.strip())
        out.defaults.append(
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


def _parse_alias(out: SudoersLines, source: Source, kind: str, rest: str) -> None:
    for chunk in re.split(r"(?<!\\):(?=\s*[A-Z][A-Z0-9_]*\s*=)", rest):
        m = re.match(r"^\s*([A-Z][A-Z0-9_]*)\s*=(.*)$", chunk, re.S)
        if m is None:
            out.malformed.append(MalformedLine(source, f"bad {kind} definition", rest.strip()))
            continue
        out.aliases.append(SudoAlias(source, kind, m.group(1), split_list(m.group(2))))


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
    for pos in top_positions(text, ":"):
        name = _word_before(text, pos)
        if name in TAGS or re.fullmatch(r"sha(224|256|384|512)", name):
            continue
        keep.append(pos)
    return split_at(text, keep)


def _parse_user_spec(out: SudoersLines, source: Source, line: str) -> None:
    head_rest = split_top(line, "=")
    if len(head_rest) < 2:
        out.malformed.append(MalformedLine(source, "not a sudoers rule", line))
        return
    head = re.sub(r"\s*,\s*", ",", head_rest[0].strip())
    words = head.split()
    if len(words) != 2:
        out.malformed.append(MalformedLine(source, "expected 'users hosts = commands'", line))
        return
    users_text = words[0]
    body = line[len(head_rest[0]) + 1 :]
    groups = _split_host_groups(body)
    hosts_text = words[1]
    for index, group in enumerate(groups):
        if index > 0:
            hc = split_top(group, "=")
            if len(hc) < 2:
                out.malformed.append(MalformedLine(source, "host group without '='", line))
                return
            hosts_text = hc[0].strip()
            group = group[len(hc[0]) + 1 :]
        commands = _parse_cmnd_list(group)
        if not commands:
            out.malformed.append(MalformedLine(source, "rule without commands", line))
            continue
        out.rules.append((source, users_text, hosts_text, commands))


def _parse_cmnd_list(text: str) -> list[RawCommand]:
    out: list[RawCommand] = []
    runas_u: tuple[str, ...] = ()
    runas_g: tuple[str, ...] = ()
    tags: dict[str, str] = {}
    for spec in split_list(text):
        rest = spec
        if rest.startswith("("):
            close = rest.find(")")
            inner = rest[1:close] if close > 0 else rest[1:]
            rest = rest[close + 1 :].lstrip() if close > 0 else ""
            user_part, _, group_part = inner.partition(":")
            runas_u, runas_g = split_list(user_part), split_list(group_part)
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
            RawCommand(rest.strip(), runas_u, runas_g, tuple(tags.values()), tuple(options))
        )
    return out
