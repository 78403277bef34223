"""The default-or-weak password check: dictionary candidates verified through libxcrypt.

Verification is the costly part of a scan, so its results are kept in a small cache keyed by
what determines them: the (account, hash) pairs, the dictionary files (path, size, mtime)
and the limits. Evaluating the rule twice over the same image (several output formats, a
re-run in one process) verifies once; a different image, dictionary or limit verifies again.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.checks.passwords_common import (
    AccountPassword,
    account_passwords,
    account_result,
    accounts_of,
    shadow_only,
)
from imageaudit.facts.accounts.password_field import PasswordHash, PasswordState
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Source, Status
from imageaudit.passwords.cost import CostCaps
from imageaudit.passwords.dictionary import DEFAULTS_FILE, WEAK_FILE
from imageaudit.passwords.verify import (
    Limits,
    PasswordDictionary,
    PasswordDictionaryError,
    PasswordJob,
    PasswordResult,
    check_passwords,
    load_dictionary,
)

CACHE_SIZE = 8
_FileKey = tuple[str, int, int]


class WeakPasswordParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: str = Field(
        default="data",
        description=f"directory holding `{DEFAULTS_FILE}` and `{WEAK_FILE}`, relative to the "
        "rules tree (an operator's rules directory carries its own)",
    )
    account_timeout_s: float = Field(default=5.0, gt=0, description="wall clock per account")
    total_budget_s: float = Field(
        default=20.0, gt=0, description="wall clock for all accounts of one image"
    )
    max_guess_seconds: float = Field(
        default=0.5, gt=0, description="hashes whose one guess costs more are not verified"
    )


def _file_key(path: Path) -> _FileKey:
    try:
        st = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _load(data_dir: Path, files: tuple[_FileKey, ...]) -> PasswordDictionary:
    # ``files`` only keys the cache: a dictionary file changed in place loads again.
    return load_dictionary(data_dir)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _verify(
    jobs: tuple[PasswordJob, ...], data_dir: Path, files: tuple[_FileKey, ...], limits: Limits
) -> tuple[PasswordResult, ...]:
    return tuple(check_passwords(jobs, _load(data_dir, files), limits))


def verify_cached(
    jobs: Sequence[PasswordJob], data_dir: Path, limits: Limits
) -> tuple[PasswordResult, ...]:
    """``check_passwords`` once per (jobs, dictionary files, limits); later calls reuse it."""
    files = (_file_key(data_dir / DEFAULTS_FILE), _file_key(data_dir / WEAK_FILE))
    return _verify(tuple(jobs), data_dir, files, limits)


def clear_cache() -> None:
    """Forget cached dictionaries and results (tests that change files in place)."""
    _verify.cache_clear()
    _load.cache_clear()


def _source_of_default(origin: str) -> str:
    # Origins read "default password of user pi in <product>" or "... of every account in ...".
    return origin.split(" in ", 1)[1] if " in " in origin else origin


@dataclass(frozen=True, slots=True)
class _ShadowOnly:
    """A shadow entry whose name has no passwd entry glibc reads (see ``shadow_only``)."""

    name: str
    password: PasswordHash
    source: Source

    @property
    def usable(self) -> bool:
        pw = self.password
        return pw.state is PasswordState.HASH and pw.algorithm != "unknown"


def _match_message(ap: AccountPassword | _ShadowOnly, result: PasswordResult) -> tuple[str, str]:
    name, pw, origin = code(ap.name), code(result.password or ""), result.origin or ""
    if origin.startswith("default password"):
        ref = f", {result.reference}" if result.reference else ""
        if result.password == ap.name:
            # root/root is guessed as the user name first, whatever product documents it.
            text = (
                f"User {name} has its user name {pw} as password, also the documented default "
                f"of {_source_of_default(origin)} ({ap.source}{ref})"
            )
            return text, f"username-as-password; {origin}"
        text = (
            f"User {name} has the default password {pw} of {_source_of_default(origin)} "
            f"({ap.source}{ref})"
        )
        return text, f"default password ({origin})"
    if origin == "username-as-password":
        return f"User {name} has its user name {pw} as password ({ap.source})", origin
    if origin == "username-as-password variant":
        text = f"User {name} has the weak password {pw}, its user name and 123 ({ap.source})"
        return text, origin
    ref = f" in {result.reference}" if result.reference else ""
    return f"User {name} has the weak password {pw}, a common password{ref} ({ap.source})", origin


def _result_for(ap: AccountPassword | _ShadowOnly, result: PasswordResult) -> CheckResult | None:
    cost = f"{result.algorithm}, {result.cost}" if result.cost else result.algorithm
    if result.status == "match":
        message, observed = _match_message(ap, result)
        return account_result(ap, message, observed, "a password in no dictionary")
    if result.status == "no_match" and not result.reason:
        return None
    # Skipped (cost over a cap, budget spent), refused, or only partly tried: never a PASS.
    what = "only partly verified" if result.status == "no_match" else "not verified"
    return account_result(
        ap,
        f"Password of user {code(ap.name)} {what}: {result.reason} ({ap.source})",
        f"{cost}; {result.status}",
        "verified against the dictionary",
        status=Status.ERROR,
    )


@check_type(
    "account_weak_password",
    params_model=WeakPasswordParams,
    missing=MissingPolicy.ERROR,
    needs=("accounts",),
)
def account_weak_password(facts: Any, params: WeakPasswordParams, rule: Rule) -> list[CheckResult]:
    """Fails once per account whose password is a documented default or a weak password.

    Candidates per account: its documented defaults (``default-passwords.yaml``, the message
    names the product and the reference), the user name and ``name123``, the common weak
    list (``weak-passwords.txt``) and product-wide defaults. Every account whose effective
    password is a hash with a known prefix (or DES shape) is tried, login shell or not; empty
    and locked fields are other rules' business, and a field of no known format cannot match
    any password (libxcrypt refuses it, and so does the system's login). A known prefix with
    malformed parameters is tried and reported as not verified. So is the first shadow entry
    of a name without a passwd entry glibc reads: a passwd line glibc skips may still be an
    account to another C library (musl reads an empty uid as 0).

    Verification runs in a child with memory and CPU limits (:mod:`imageaudit.passwords.verify`).
    A hash that was **not verified** (its cost is over a cap, the time budget ran out,
    libxcrypt refused it) or only partly verified gives an ``ERROR`` finding for that
    account with the reason: we do not certify what we could not check; waive it with the
    reason if the hash is trusted.

    Missing fact: without ``accounts`` nothing can be said (default ``error``). A missing or
    invalid dictionary is an ``ERROR`` naming the file.
    """
    caps = CostCaps(max_guess_seconds=params.max_guess_seconds)
    limits = Limits(
        caps=caps,
        account_timeout_s=params.account_timeout_s,
        total_budget_s=params.total_budget_s,
    )
    accounts = accounts_of(facts)
    candidates: list[AccountPassword | _ShadowOnly] = []
    for ap in account_passwords(accounts):
        if ap.usable:
            candidates.append(ap)
    for entry in shadow_only(accounts):
        only = _ShadowOnly(entry.name, entry.password, entry.source)
        if only.usable:
            candidates.append(only)
    if not candidates:
        return []
    data_dir = rule.rules_dir / params.data_dir
    try:
        jobs = [PasswordJob(c.name, c.password.raw if c.password else "") for c in candidates]
        results = verify_cached(jobs, data_dir, limits)
    except PasswordDictionaryError as exc:
        return [
            CheckResult(
                Status.ERROR,
                f"Could not evaluate: the password dictionary could not be loaded: {exc}",
                evidence=Evidence(path=str(data_dir), observed=str(exc)),
            )
        ]
    out: list[CheckResult] = []
    for candidate, result in zip(candidates, results, strict=True):
        found = _result_for(candidate, result)
        if found is not None:
            out.append(found)
    return out
