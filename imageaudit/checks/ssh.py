"""Check types over the sshd configuration: options, password logins and what they expose.

Every check here is ``NOT_APPLICABLE`` when the image has no sshd (no sshd binary and no
``/etc/ssh/sshd_config``). ``Match`` blocks count (see :mod:`imageaudit.checks.ssh_config`
for how they apply): a block that matches everyone (``Match all``, ``Match Address *``)
sets the value for every connection, and a *conditional* block (specific users, groups,
addresses, ports) that sets a failing value fails too, with its own finding naming the
block. An address or user condition in an image says nothing about the networks it will
run on, and the door is open for whoever matches; waive such a finding by its resource
(``PermitRootLogin (Match Address 10.0.0.0/8)``) when that is the intent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.checks.passwords_common import account_passwords, names_list
from imageaudit.checks.ssh_config import Setting, global_setting, installed_sshd, settings
from imageaudit.facts.accounts import AccountsFacts
from imageaudit.facts.sshd import SshdFacts
from imageaudit.findings import CheckResult, Rule
from imageaudit.model import Severity, Status


def _failing(sshd: SshdFacts, keyword: str, values: list[str]) -> list[Setting]:
    return [s for s in settings(sshd, keyword) if s.is_(*values)]


class SshdOptionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    option: str = Field(description="the sshd keyword (`PermitRootLogin`)")
    fail_values: list[str] = Field(
        min_length=1, description="values (first word, any case) that fail (`yes`)"
    )
    message: str = Field(
        min_length=1,
        description="what a failing value means, the start of the finding's sentence "
        "(`sshd lets root log in with a password`); the setting and its place follow",
    )
    expected: str = Field(default="", description="the expected value, for the evidence")
    escalate_if_empty_passwords: Severity | None = Field(
        default=None,
        description="raise findings to this severity when an account with a login shell "
        "has an empty password (for `PermitEmptyPasswords`)",
    )


def _empty_login_accounts(facts: Any) -> list[str]:
    accounts = getattr(facts, "accounts", None)
    if not isinstance(accounts, AccountsFacts):
        return []
    return [ap.name for ap in account_passwords(accounts) if ap.empty and ap.can_log_in]


@check_type(
    "sshd_option", params_model=SshdOptionParams, missing=MissingPolicy.ERROR, needs=("sshd",)
)
def sshd_option(facts: Any, params: SshdOptionParams, rule: Rule) -> list[CheckResult]:
    """Fails when an sshd option takes one of ``fail_values`` for some connection.

    The global value (or the built-in default of the OpenSSH version found, named in the
    message) and each ``Match`` block that sets the option are looked at; one finding per
    failing place, resource the keyword (with the ``Match`` condition for a block).
    With ``escalate_if_empty_passwords``, findings are raised when accounts with a login
    shell have empty passwords, and the message names them.

    Missing fact: without ``sshd`` facts nothing can be said (default ``error``).
    Not applicable when the image has no sshd.
    """
    sshd = installed_sshd(facts)
    extra, severity = "", None
    if params.escalate_if_empty_passwords is not None:
        empty = _empty_login_accounts(facts)
        if empty:
            extra = f"; accounts with empty passwords and login shells: {names_list(empty)}"
            severity = params.escalate_if_empty_passwords
    return [
        CheckResult(
            Status.FAIL,
            f"{params.message} {s.where()}{extra}",
            resource=s.resource,
            evidence=s.evidence(params.expected or f"not {', '.join(params.fail_values)}"),
            severity=severity,
        )
        for s in _failing(sshd, params.option, params.fail_values)
    ]


class PasswordLoginParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["password", "kbd-interactive"] = Field(
        description="`password` (PasswordAuthentication) or `kbd-interactive` "
        "(KbdInteractiveAuthentication with UsePAM, which asks PAM for the password)"
    )
    exposed_severity: Severity | None = Field(
        default=Severity.HIGH,
        description="severity when accounts with usable passwords and login shells exist",
    )
    without_accounts: Literal["fail", "pass"] = Field(
        default="fail",
        description="result when no account has a usable password yet",
    )


def _exposed(facts: Any, root_allowed: bool) -> list[str]:
    accounts = getattr(facts, "accounts", None)
    if not isinstance(accounts, AccountsFacts):
        return []
    return [
        ap.name
        for ap in account_passwords(accounts)
        if ap.usable and ap.can_log_in and (ap.name != "root" or root_allowed)
    ]


@check_type(
    "sshd_password_login",
    params_model=PasswordLoginParams,
    missing=MissingPolicy.ERROR,
    needs=("sshd",),
)
def sshd_password_login(facts: Any, params: PasswordLoginParams, rule: Rule) -> list[CheckResult]:
    """Fails when sshd accepts passwords, naming the accounts it exposes.

    ``password``: ``PasswordAuthentication yes`` (globally, by default, or in a ``Match``
    block). ``kbd-interactive``: ``KbdInteractiveAuthentication yes`` (old spelling
    ``ChallengeResponseAuthentication``) while ``UsePAM yes``; without PAM it asks no password.
    Exposed accounts have a usable password hash and a login shell; root only when some
    ``PermitRootLogin`` value is ``yes``. With exposed accounts the finding is raised to
    ``exposed_severity``; without any, ``without_accounts`` decides (a password set later,
    by a user or a provisioning tool, would be exposed).

    Missing fact: without ``sshd`` facts nothing can be said (default ``error``); without
    ``accounts`` no account is named. Not applicable when the image has no sshd.
    """
    sshd = installed_sshd(facts)
    keyword = "PasswordAuthentication"
    via = "sshd accepts password logins"
    pam_where = ""
    if params.method == "kbd-interactive":
        keyword = "KbdInteractiveAuthentication"
        use_pam = global_setting(sshd, "UsePAM")
        if use_pam is None or not use_pam.is_("yes"):
            return []
        via = "sshd accepts passwords through keyboard-interactive PAM"
        pam_where = f"; {use_pam.where()[1:-1]}"
    failing = _failing(sshd, keyword, ["yes"])
    if not failing:
        return []
    root_allowed = bool(_failing(sshd, "PermitRootLogin", ["yes"]))
    exposed = _exposed(facts, root_allowed)
    if not exposed and params.without_accounts == "pass":
        return []
    results = []
    for s in failing:
        if exposed:
            count = f"{len(exposed)} account{'s' if len(exposed) != 1 else ''}"
            tail = f" for {count} with usable passwords and login shells: {names_list(exposed)}"
            severity = params.exposed_severity
        else:
            tail = "; no account has a usable password today, but any password set later is exposed"
            severity = None
        results.append(
            CheckResult(
                Status.FAIL,
                f"{via} {s.where()[:-1]}{pam_where}){tail}",
                resource=s.resource,
                evidence=s.evidence(f"{keyword} no"),
                severity=severity,
            )
        )
    return results


__all__ = ["sshd_option", "sshd_password_login"]
