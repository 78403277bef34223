"""Records of the sudoers facts (see :mod:`imageaudit.facts.accounts.sudoers`).

A rule keeps its lists as written and, beside them, the same lists with their aliases
substituted; an include keeps the files it brought in and what stopped it, if anything.

Follows: sudoers(5) ("SUDOERS FILE FORMAT", "Including other files from within sudoers").
"""

from __future__ import annotations

from dataclasses import dataclass

from imageaudit.facts.textlines import MalformedLine
from imageaudit.model import Source


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
