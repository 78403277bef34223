"""The ``NOPASSWD: ALL`` check: password-less root through sudo for accounts without a password.

Follows: sudoers(5) (user lists with ``%group``, ``#uid``, ``!`` negation and ``ALL``; runas
defaults to root; tags carry over to the following commands; ``Defaults !authenticate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.checks.passwords_common import AccountPassword, account_passwords, accounts_of
from imageaudit.facts.accounts import AccountsFacts
from imageaudit.facts.accounts.sudoers import SudoCommand, SudoersFacts, SudoRule
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Source, Status

_ROOT_RUNAS = frozenset({"ALL", "root", "#0"})
# Set-element operations the grant evaluation may spend before the rule is an ERROR: linear
# in the rules and accounts for any real sudoers, bounded for a hostile one.
MAX_SUDO_WORK = 5_000_000


@dataclass(frozen=True, slots=True)
class _Grant:
    source: Source
    text: str  # e.g. "NOPASSWD: ALL" or "ALL with Defaults !authenticate"


def _no_auth_users(sudoers: SudoersFacts) -> tuple[bool, set[str]]:
    """Whether ``Defaults !authenticate`` is global, and the users it is bound to."""
    everyone = False
    users: set[str] = set()
    for d in sudoers.defaults:
        if d.name != "authenticate" or not d.negated:
            continue
        if d.binding_type == "":
            everyone = True
        elif d.binding_type == ":":
            users.update(d.binding)
    return everyone, users


def _runs_as_root(cmd: SudoCommand) -> bool:
    if not cmd.runas_users_expanded:
        return not cmd.runas_groups  # "(:group)" alone runs as the invoking user
    return any(u.strip() in _ROOT_RUNAS for u in cmd.runas_users_expanded)


@dataclass
class _Index:
    """Who is who, built once per evaluation: per-rule scans of passwd are quadratic."""

    every: set[str]
    by_uid: dict[int, set[str]]
    by_gid: dict[int, set[str]]  # primary group and listed members, by gid
    by_group: dict[str, set[str]]  # primary group and listed members, by group name

    @classmethod
    def of(cls, accounts: AccountsFacts) -> _Index:
        by_uid: dict[int, set[str]] = {}
        by_gid: dict[int, set[str]] = {}
        by_group: dict[str, set[str]] = {}
        name_of_gid: dict[int, str] = {}
        for group in accounts.groups:
            by_group.setdefault(group.name, set()).update(group.members)
            by_gid.setdefault(group.gid, set()).update(group.members)
            name_of_gid.setdefault(group.gid, group.name)
        for entry in accounts.passwd:
            by_uid.setdefault(entry.uid, set()).add(entry.name)
            by_gid.setdefault(entry.gid, set()).add(entry.name)
            name = name_of_gid.get(entry.gid)
            if name is not None:
                by_group.setdefault(name, set()).add(entry.name)
        return cls({e.name for e in accounts.passwd}, by_uid, by_gid, by_group)


class SudoersTooComplex(Exception):
    """Evaluating the user lists would cost more than :data:`MAX_SUDO_WORK`."""


@dataclass
class _Work:
    spent: int = 0

    def charge(self, n: int) -> None:
        self.spent += n
        if self.spent > MAX_SUDO_WORK:
            raise SudoersTooComplex(
                f"the sudoers user lists take over {MAX_SUDO_WORK} set operations to evaluate"
            )


def _users_of(rule: SudoRule, index: _Index, remaining: set[str], work: _Work) -> set[str]:
    """The users of ``rule`` that have no grant yet: every set is cut to ``remaining`` first,
    so that a rule costs what is still undecided, not the size of ``ALL`` or a group."""
    chosen: set[str] = set()
    for item in rule.users_expanded:
        item = item.strip()
        negate = item.startswith("!")
        name = item.lstrip("!").strip().strip('"')
        if name == "ALL":
            found = remaining
        elif name.startswith("%#") and name[2:].isdigit():
            found = index.by_gid.get(int(name[2:]), set()) & remaining
        elif name.startswith("%"):
            found = index.by_group.get(name[1:].lstrip(":"), set()) & remaining
        elif name.startswith("#") and name[1:].isdigit():
            found = index.by_uid.get(int(name[1:]), set()) & remaining
        else:
            found = {name} & remaining
        work.charge(len(found) + len(chosen) + 1)
        chosen = chosen - found if negate else chosen | found
    return chosen


def _grants(accounts: AccountsFacts) -> dict[str, _Grant]:
    """User name -> the first rule letting it run anything as root without a password.

    Raises :class:`SudoersTooComplex` when the user lists cost over :data:`MAX_SUDO_WORK`.
    """
    sudoers = accounts.sudoers
    no_auth_all, no_auth_users = _no_auth_users(sudoers)
    index = _Index.of(accounts)
    remaining = set(index.every)  # accounts without a grant yet
    work = _Work()
    found: dict[str, _Grant] = {}
    for rule in sudoers.rules:
        if not remaining:
            break
        commands = [
            cmd
            for cmd in rule.commands
            if "ALL" in (c.strip() for c in cmd.expanded) and _runs_as_root(cmd)
        ]
        if not commands:
            continue
        users = _users_of(rule, index, remaining, work)
        for cmd in commands:
            if "NOPASSWD" in cmd.tags:
                granted, grant = users, _Grant(rule.source, "NOPASSWD: ALL")
            else:
                granted = users if no_auth_all else users & no_auth_users
                grant = _Grant(rule.source, "ALL with Defaults !authenticate")
            granted = granted & remaining
            work.charge(len(granted) + 1)
            for user in granted:
                found[user] = grant
            remaining -= granted
    return found


def _key_files(accounts: AccountsFacts) -> dict[str, str]:
    """Account name -> its first authorized_keys file holding keys."""
    out: dict[str, str] = {}
    for kfile in accounts.authorized_key_files:
        if kfile.keys > 0:
            for name in kfile.accounts:
                out.setdefault(name, kfile.path)
    return out


def _why_unguarded(ap: AccountPassword, key_files: dict[str, str], locked: bool) -> str | None:
    """Why this account's sudo grant guards nothing; ``None`` if something guards it."""
    if ap.empty:
        return "has an empty password"
    key_file = key_files.get(ap.name)
    if key_file is not None:
        return f"can log in with an ssh key ({key_file}) without knowing its password"
    if not ap.usable and locked:
        return "has no usable password, so nothing is asked of whoever acts as it"
    return None


class SudoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    locked_without_keys: Literal["fail", "pass"] = Field(
        default="fail",
        description="result for a locked account without baked keys (`pass` accepts the "
        "cloud-init pattern: a locked default user that receives its key at boot)",
    )


@check_type(
    "sudo_nopasswd_all", params_model=SudoParams, missing=MissingPolicy.ERROR,
    needs=("accounts",),
)  # fmt: skip
def sudo_nopasswd_all(facts: Any, params: SudoParams, rule: Rule) -> list[CheckResult]:
    """Fails once per account that may run any command as root without a password and has
    no password guarding it: an empty password, no usable password (locked, ``x`` without
    shadow), or baked ``authorized_keys``.

    A grant is a sudoers rule (aliases, ``%group``, ``#uid``, ``ALL`` and ``!`` expanded)
    whose command list holds ``ALL`` with the ``NOPASSWD`` tag, running as root (no runas
    list, or one with ``ALL``, ``root`` or ``#0``), or the same without the tag under
    ``Defaults !authenticate`` (global or bound to the user). Host lists are ignored: the
    image will run under host names we cannot know. Accounts named in sudoers but absent
    from ``/etc/passwd`` are not reported.

    ``locked_without_keys: pass`` leaves out locked accounts without baked keys (the
    cloud-init default user, whose key arrives at boot); the default fails them, since
    anything that runs as such an account is root without a question.

    Missing fact: without ``accounts`` nothing can be said (default ``error``). No sudoers
    file passes.
    """
    accounts = accounts_of(facts)
    if not accounts.sudoers.present:
        return []
    try:
        grants = _grants(accounts)
    except SudoersTooComplex as exc:
        return [CheckResult(Status.ERROR, f"Could not evaluate: {exc}")]
    key_files = _key_files(accounts) if grants else {}
    results: list[CheckResult] = []
    for ap in account_passwords(accounts):
        grant = grants.get(ap.name)
        if grant is None:
            continue
        why = _why_unguarded(ap, key_files, params.locked_without_keys == "fail")
        if why is None:
            continue
        results.append(
            CheckResult(
                Status.FAIL,
                f"User {code(ap.name)} may run any command as root without a password "
                f"({code(grant.text)}, {grant.source}) and {why}",
                resource=ap.name,
                evidence=Evidence(
                    path=grant.source.path,
                    line=grant.source.line,
                    observed=f"{grant.text}; {why}",
                    expected="sudo asks for a password, or the account has one",
                ),
            )
        )
    return results
