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
from imageaudit.facts.sudoers import SudoCommand, SudoersFacts, SudoRule
from imageaudit.findings import CheckResult, code
from imageaudit.model import Evidence, Source, Status
from imageaudit.rules import Rule

_ROOT_RUNAS = frozenset({"ALL", "root", "#0"})


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


def _members(accounts: AccountsFacts) -> dict[str, set[str]]:
    """Group name -> user names (listed members and primary group)."""
    out: dict[str, set[str]] = {}
    by_gid: dict[int, str] = {}
    for group in accounts.groups:
        out.setdefault(group.name, set()).update(group.members)
        by_gid.setdefault(group.gid, group.name)
    for entry in accounts.passwd:
        name = by_gid.get(entry.gid)
        if name is not None:
            out.setdefault(name, set()).add(entry.name)
    return out


def _users_of(rule: SudoRule, accounts: AccountsFacts, groups: dict[str, set[str]]) -> set[str]:
    every = {e.name for e in accounts.passwd}
    by_uid: dict[int, set[str]] = {}
    for e in accounts.passwd:
        by_uid.setdefault(e.uid, set()).add(e.name)
    chosen: set[str] = set()
    for item in rule.users_expanded:
        item = item.strip()
        negate = item.startswith("!")
        name = item.lstrip("!").strip().strip('"')
        if name == "ALL":
            found = set(every)
        elif name.startswith("%#") and name[2:].isdigit():
            gid = int(name[2:])
            found = {e.name for e in accounts.passwd if e.gid == gid}
            found |= {m for g in accounts.groups if g.gid == gid for m in g.members}
        elif name.startswith("%"):
            found = set(groups.get(name[1:].lstrip(":"), set()))
        elif name.startswith("#") and name[1:].isdigit():
            found = by_uid.get(int(name[1:]), set())
        else:
            found = {name} & every
        chosen = chosen - found if negate else chosen | found
    return chosen


def _grants(accounts: AccountsFacts) -> dict[str, _Grant]:
    """User name -> the first rule letting it run anything as root without a password."""
    sudoers = accounts.sudoers
    no_auth_all, no_auth_users = _no_auth_users(sudoers)
    groups = _members(accounts)
    found: dict[str, _Grant] = {}
    for rule in sudoers.rules:
        users = _users_of(rule, accounts, groups)
        for cmd in rule.commands:
            if "ALL" not in (c.strip() for c in cmd.expanded) or not _runs_as_root(cmd):
                continue
            tagged = "NOPASSWD" in cmd.tags
            for user in sorted(users):
                if user in found:
                    continue
                if tagged:
                    found[user] = _Grant(rule.source, "NOPASSWD: ALL")
                elif no_auth_all or user in no_auth_users:
                    found[user] = _Grant(rule.source, "ALL with Defaults !authenticate")
    return found


def _why_unguarded(ap: AccountPassword, accounts: AccountsFacts, locked: bool) -> str | None:
    """Why this account's sudo grant guards nothing; ``None`` if something guards it."""
    if ap.empty:
        return "has an empty password"
    keys = [f for f in accounts.authorized_key_files if ap.name in f.accounts and f.keys > 0]
    if keys:
        return f"can log in with an ssh key ({keys[0].path}) without knowing its password"
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
    grants = _grants(accounts)
    results: list[CheckResult] = []
    for ap in account_passwords(accounts):
        grant = grants.get(ap.name)
        if grant is None:
            continue
        why = _why_unguarded(ap, accounts, params.locked_without_keys == "fail")
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
