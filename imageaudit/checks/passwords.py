"""Check types over account passwords: empty, weak algorithms, uid 0, root, passwd/shadow.

Default and weak passwords (dictionary verification) are in
:mod:`imageaudit.checks.passwords_weak`, sudo grants in :mod:`imageaudit.checks.passwords_sudo`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.checks.passwords_common import (
    account_passwords,
    account_result,
    accounts_of,
    nullok_auth_lines,
)
from imageaudit.checks.ssh_config import settings
from imageaudit.facts.accounts import AccountsFacts, PasswdEntry, ShadowEntry
from imageaudit.facts.accounts.password_field import PasswordState
from imageaudit.facts.sshd import SshdFacts
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Severity, Status


class EmptyPasswordParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reachable_severity: Severity = Field(
        default=Severity.CRITICAL,
        description="severity when something accepts the empty password today",
    )
    unreachable_severity: Severity = Field(
        default=Severity.HIGH,
        description="severity when nothing found accepts it (one setting change away)",
    )


def _empty_reachable(facts: Any) -> list[str]:
    """Why an empty password is accepted today; empty when nothing found accepts it."""
    accounts = accounts_of(facts)
    reasons: list[str] = []
    nullok = nullok_auth_lines(accounts)
    if nullok:
        line = nullok[0]
        more = f" and {len(nullok) - 1} more" if len(nullok) > 1 else ""
        reasons.append(f"PAM {code('nullok')} on the auth stack ({line.source}{more})")
    elif not accounts.pam_unix:
        # busybox login/su and shadow's login built without PAM accept an empty field
        # without asking (CVE-2019-5021 was an empty root password in Alpine images).
        reasons.append(
            "no pam_unix configuration, and login programs without PAM accept an empty password"
        )
    sshd = getattr(facts, "sshd", None)
    if isinstance(sshd, SshdFacts) and sshd.installed:
        permit = [s for s in settings(sshd, "PermitEmptyPasswords") if s.is_("yes")]
        if permit:
            reasons.append(f"sshd {permit[0].where()[1:-1]}")
    return reasons


@check_type(
    "account_empty_password",
    params_model=EmptyPasswordParams,
    missing=MissingPolicy.ERROR,
    needs=("accounts",),
)
def account_empty_password(
    facts: Any, params: EmptyPasswordParams, rule: Rule
) -> list[CheckResult]:
    """Fails once per account with an empty password and a login shell.

    The effective password is the ``/etc/passwd`` field, or the shadow entry when that field
    is ``x``. Accounts with ``nologin``/``false`` shells are not reported. The finding gets
    ``reachable_severity`` when something accepts the empty password today: a ``pam_unix``
    line with ``nullok`` on an ``auth`` stack, no ``pam_unix`` configuration at all (busybox
    and non-PAM ``login`` accept empty fields), or sshd ``PermitEmptyPasswords yes``
    (globally or in a ``Match`` block); otherwise ``unreachable_severity``. The message says
    which. Set the rule's severity to the lower one: levels count the escalated one.

    Missing fact: without ``accounts`` nothing can be said (default ``error``); without
    ``sshd`` only PAM is considered.
    """
    empty = [ap for ap in account_passwords(accounts_of(facts)) if ap.empty and ap.can_log_in]
    reasons = _empty_reachable(facts) if empty else []
    results: list[CheckResult] = []
    for ap in empty:
        head = f"User {code(ap.name)} has an empty password ({ap.source})"
        if reasons:
            message = f"{head} and can log in with it: {'; '.join(reasons)}"
            severity = params.reachable_severity
        else:
            message = (
                f"{head}; nothing found accepts it today (no PAM {code('nullok')}, sshd does "
                "not permit empty passwords), but one configuration change would"
            )
            severity = params.unreachable_severity
        results.append(
            account_result(
                ap,
                message,
                observed="empty password field",
                expected="a locked account or a strong password",
                severity=severity,
            )
        )
    return results


WEAK_ALGORITHMS = {
    "descrypt": "traditional DES crypt uses only the first 8 characters and a 12-bit salt",
    "bsdicrypt": "BSDi extended DES crypt is DES with a 24-bit salt and a 64-bit result",
    "md5crypt": "md5crypt is 1000 MD5 iterations, billions of guesses per second on a GPU",
    "nthash": "the NT hash is a single unsalted MD4",
    "sha1crypt": "sha1crypt is HMAC-SHA1 with a small default iteration count",
    "sunmd5": "SunMD5 is MD5-based and cheap to brute-force",
}


class HashAlgorithmParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithms: list[str] = Field(
        default_factory=lambda: ["descrypt", "bsdicrypt", "md5crypt", "nthash"],
        description="weak algorithms as the accounts facts name them "
        f"({', '.join(sorted(WEAK_ALGORITHMS))})",
    )
    high: list[str] = Field(
        default_factory=lambda: ["descrypt", "nthash"],
        description="among `algorithms`, those whose findings are raised to high",
    )


@check_type(
    "password_hash_algorithm",
    params_model=HashAlgorithmParams,
    missing=MissingPolicy.ERROR,
    needs=("accounts",),
)
def password_hash_algorithm(
    facts: Any, params: HashAlgorithmParams, rule: Rule
) -> list[CheckResult]:
    """Fails once per account whose usable password is hashed with a weak algorithm.

    Looks at the effective password of each account (passwd field, or shadow when ``x``);
    locked and empty fields are skipped (empty ones are another rule's business). Findings
    for an algorithm listed in ``high`` are raised to high; the message says why the
    algorithm is weak.

    Missing fact: without ``accounts`` nothing can be said (default ``error``).
    """
    results: list[CheckResult] = []
    for ap in account_passwords(accounts_of(facts)):
        pw = ap.password
        if pw is None or pw.state is not PasswordState.HASH:
            continue
        if pw.algorithm not in params.algorithms:
            continue
        algorithm = pw.algorithm
        why = WEAK_ALGORITHMS.get(algorithm, "a weak algorithm")
        results.append(
            account_result(
                ap,
                f"User {code(ap.name)} has a password hashed with {code(algorithm)} "
                f"({ap.source}): {why}",
                observed=pw.description or algorithm,
                expected="yescrypt, sha512crypt or bcrypt",
                severity=Severity.HIGH if algorithm in params.high else None,
            )
        )
    return results


class UidZeroParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: list[str] = Field(
        default_factory=lambda: ["root"], description="account names allowed to have uid 0"
    )


@check_type(
    "uid_zero_accounts", params_model=UidZeroParams, missing=MissingPolicy.ERROR,
    needs=("accounts",),
)  # fmt: skip
def uid_zero_accounts(facts: Any, params: UidZeroParams, rule: Rule) -> list[CheckResult]:
    """Fails once per ``/etc/passwd`` entry with uid 0 whose name is not in ``allowed``.

    Every entry counts, duplicates of a name included: each is another way in as root.

    Missing fact: without ``accounts`` nothing can be said (default ``error``).
    """
    results: list[CheckResult] = []
    for entry in accounts_of(facts).passwd:
        if entry.uid != 0 or entry.name in params.allowed:
            continue
        results.append(
            account_result(
                entry,
                f"Account {code(entry.name)} has uid 0, the privileges of root ({entry.source})",
                observed="uid 0",
                expected=f"uid 0 only for {', '.join(params.allowed)}",
            )
        )
    return results


class LockedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: list[str] = Field(
        default_factory=lambda: ["root"], description="accounts whose password must be locked"
    )


@check_type(
    "account_password_locked", params_model=LockedParams, missing=MissingPolicy.ERROR,
    needs=("accounts",),
)  # fmt: skip
def account_password_locked(facts: Any, params: LockedParams, rule: Rule) -> list[CheckResult]:
    """Fails for each listed account whose password field holds a hash (not locked, not empty).

    Accounts that do not exist pass; an empty password is left to the empty-password check.
    Whether the hash is strong does not matter: the policy is that these accounts are
    reached through sudo or keys, never with a password.

    Missing fact: without ``accounts`` nothing can be said (default ``error``).
    """
    wanted = set(params.accounts)
    results: list[CheckResult] = []
    for ap in account_passwords(accounts_of(facts)):
        if ap.name not in wanted or not ap.hashed or ap.password is None:
            continue
        results.append(
            account_result(
                ap,
                f"User {code(ap.name)} has a usable password ({ap.password.description}, "
                f"{ap.source}); it should be locked",
                observed=ap.password.description,
                expected="locked (! or *)",
            )
        )
    return results


class ConsistencyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@check_type(
    "passwd_shadow_consistency", params_model=ConsistencyParams, missing=MissingPolicy.ERROR,
    needs=("accounts",),
)  # fmt: skip
def passwd_shadow_consistency(
    facts: Any, params: ConsistencyParams, rule: Rule
) -> list[CheckResult]:
    """Fails once per account with a password in ``/etc/passwd`` or without a shadow entry.

    A hash or an empty field in ``/etc/passwd`` (instead of ``x``) is readable by every user
    and bypasses shadow's ageing; an account without a shadow entry while ``/etc/shadow``
    exists is a half-made account (tools disagree on it). Locked fields (``*``, ``!``) in
    passwd are fine. When ``/etc/shadow`` is absent only the first condition applies.

    A name with more than one entry in ``/etc/passwd`` or ``/etc/shadow`` fails too: the
    C library (``getpwnam``, ``getspnam``) uses the first and the other rules judge that one,
    but tools disagree on the rest, and removing the first line brings the next to life.
    So does a line of either file that the C library skips (a malformed number, a missing
    field): no account to glibc, but other parsers (musl, busybox, shadow's tools) may read
    it. ``+``/``-`` NIS compat lines are not reported.

    Missing fact: without ``accounts`` nothing can be said (default ``error``).
    """
    accounts = accounts_of(facts)
    results = _entries_against_shadow(accounts)
    results.extend(_duplicates(accounts.passwd, "/etc/passwd"))
    results.extend(_duplicates(accounts.shadow, "/etc/shadow"))
    for line in accounts.malformed:
        path = line.source.path
        if path in ("/etc/passwd", "/etc/shadow") and line.reason != "NIS compat entry":
            results.append(
                CheckResult(
                    Status.FAIL,
                    f"{line.source} is skipped by the C library ({line.reason}); "
                    "other parsers may read it as an account",
                    resource=f"{path}:{line.source.line}",
                    evidence=Evidence(
                        path=path,
                        line=line.source.line,
                        observed=line.reason,
                        expected="every line a valid entry",
                    ),
                )
            )
    return results


def _duplicates(entries: Iterable[PasswdEntry | ShadowEntry], path: str) -> list[CheckResult]:
    lines: dict[str, list[PasswdEntry | ShadowEntry]] = {}
    for entry in entries:
        lines.setdefault(entry.name, []).append(entry)
    results: list[CheckResult] = []
    for name, same in lines.items():
        if len(same) < 2:
            continue
        numbers = [str(e.source.line) for e in same]
        head = numbers[:-1] if len(numbers) <= 10 else [*numbers[:8], "..."]
        results.append(
            account_result(
                same[0],
                f"User {code(name)} has {len(same)} entries in {path} (lines {', '.join(head)} and "
                f"{numbers[-1]}); the C library uses the first, line {numbers[0]}",
                f"{len(same)} entries named {name}",
                "one entry per name",
            )
        )
    return results


def _entries_against_shadow(accounts: AccountsFacts) -> list[CheckResult]:
    no_shadow = set(accounts.missing_shadow)
    results: list[CheckResult] = []
    seen: set[str] = set()
    for entry in accounts.passwd:
        if entry.name in seen:
            continue
        seen.add(entry.name)
        state = entry.password.state
        missing = entry.name in no_shadow
        if state is PasswordState.HASH:
            message = (
                f"User {code(entry.name)} has its password hash in /etc/passwd, readable by "
                f"everyone ({entry.source})"
            )
            observed = f"password hash in /etc/passwd ({entry.password.description})"
        elif state is PasswordState.EMPTY:
            message = (
                f"User {code(entry.name)} has an empty password field in /etc/passwd instead "
                f"of {code('x')} ({entry.source})"
            )
            observed = "empty password field in /etc/passwd"
        elif missing:
            message = f"User {code(entry.name)} has no entry in /etc/shadow ({entry.source})"
            observed = "no /etc/shadow entry"
        else:
            continue
        if missing and state in (PasswordState.HASH, PasswordState.EMPTY):
            message += ", and no entry in /etc/shadow"
        results.append(
            account_result(entry, message, observed, "x in /etc/passwd and an entry in /etc/shadow")
        )
    return results
