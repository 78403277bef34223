"""What the password and ssh checks ask of the accounts facts: effective passwords, logins.

Not a check module: helpers shared by :mod:`imageaudit.checks.passwords`,
:mod:`imageaudit.checks.passwords_weak`, :mod:`imageaudit.checks.passwords_sudo` and
:mod:`imageaudit.checks.ssh`.

The *effective* password of an account is the one pam_unix checks: the ``/etc/passwd`` field
unless it is ``x``, in which case the account's first ``/etc/shadow`` entry; an ``x`` without
a shadow entry can never match a password (the account is effectively locked).
Follows: passwd(5), shadow(5), pam_unix(8), crypt(5).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from imageaudit.checks import MissingFact
from imageaudit.facts.accounts import AccountsFacts, PasswdEntry, ShadowEntry
from imageaudit.facts.accounts.pam import PamUnixLine
from imageaudit.facts.accounts.password_field import PasswordHash, PasswordState
from imageaudit.findings import CheckResult, code
from imageaudit.model import Evidence, Severity, Source, Status


@dataclass(frozen=True, slots=True)
class AccountPassword:
    """One account (first passwd entry of its name) and the password pam_unix would check."""

    entry: PasswdEntry
    password: PasswordHash | None  # None: "x" in passwd and no shadow entry
    source: Source  # where the effective field was read

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def can_log_in(self) -> bool:
        """A shell that is not nologin/false (an empty shell means /bin/sh)."""
        return not self.entry.shell_nologin

    @property
    def empty(self) -> bool:
        return self.password is not None and self.password.state is PasswordState.EMPTY

    @property
    def usable(self) -> bool:
        """A hash that some password can match: not empty, not locked, a known format."""
        pw = self.password
        return pw is not None and pw.state is PasswordState.HASH and pw.algorithm != "unknown"

    @property
    def hashed(self) -> bool:
        """Not empty and not locked (any hash field, recognised or not)."""
        pw = self.password
        return pw is not None and pw.state is PasswordState.HASH


def accounts_of(facts: object) -> AccountsFacts:
    """``facts.accounts`` or :class:`MissingFact` (checks declare ``needs`` as well)."""
    accounts = getattr(facts, "accounts", None)
    if accounts is None:
        raise MissingFact("accounts")
    if not isinstance(accounts, AccountsFacts):
        raise MissingFact("accounts", "unexpected accounts record")
    return accounts


def account_passwords(accounts: AccountsFacts) -> Iterator[AccountPassword]:
    """Each account once (the first passwd entry of a name, as the C library uses)."""
    seen: set[str] = set()
    for entry in accounts.passwd:
        if entry.name in seen:
            continue
        seen.add(entry.name)
        if entry.password.state is not PasswordState.SHADOWED:
            yield AccountPassword(entry, entry.password, entry.source)
            continue
        shadow = accounts.shadow_entry(entry.name)
        if shadow is None:
            yield AccountPassword(entry, None, entry.source)
        else:
            yield AccountPassword(entry, shadow.password, shadow.source)


def shadow_only(accounts: AccountsFacts) -> Iterator[ShadowEntry]:
    """The first shadow entry of each name without a passwd entry glibc reads.

    No account to glibc, but a passwd line glibc skips may be one to another C library
    (musl reads an empty uid as 0): such a password is still worth a dictionary check.
    """
    names = {p.name for p in accounts.passwd}
    for entry in accounts.shadow:
        if entry.name not in names:
            names.add(entry.name)
            yield entry


class _Account(Protocol):
    """An account as a result names it: an :class:`AccountPassword` or a passwd entry."""

    @property
    def name(self) -> str: ...

    @property
    def source(self) -> Source: ...


def account_result(
    ap: _Account,
    message: str,
    observed: str | None,
    expected: str,
    *,
    status: Status = Status.FAIL,
    severity: Severity | None = None,
) -> CheckResult:
    """A result about ``ap``: resource the account, evidence where it (its password) was read."""
    return CheckResult(
        status,
        message,
        resource=ap.name,
        evidence=Evidence(
            path=ap.source.path, line=ap.source.line, observed=observed, expected=expected
        ),
        severity=severity,
    )


def nullok_auth_lines(accounts: AccountsFacts) -> tuple[PamUnixLine, ...]:
    """``pam_unix`` lines of the ``auth`` stack (any service) that accept empty passwords."""
    return tuple(
        line for line in accounts.pam_unix if line.nullok and line.type.lstrip("-") == "auth"
    )


def names_list(names: list[str], limit: int = 20) -> str:
    """Backticked names joined by commas, cut after ``limit`` with a count of the rest."""
    shown = ", ".join(code(n) for n in names[:limit])
    rest = len(names) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown
