"""Check type over secrets found by their shape: tokens of known issuers and values assigned
to secret-named keys in configuration and text files.

It reads :class:`imageaudit.facts.secretscan.SecretScanFacts`, which never holds a value:
messages show at most the fixed public prefix of a token's format (``ghp_…``) and its length.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.facts.secretscan import SecretMatch, SecretScanFacts
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Severity, Status

NO_SECRET = "no secret in the image"


class SecretPatternParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["token", "assignment"] = Field(
        description="`token`: values whose shape names their issuer (GitHub, AWS, Slack...); "
        "`assignment`: values assigned to a secret-named key"
    )
    families: list[str] = Field(
        default_factory=list,
        description="token families to judge (`github`, `aws`, `private-key`, ...); all when "
        "empty",
    )
    exclude: list[str] = Field(
        default_factory=list, description="path globs (fnmatch) of files that are accepted"
    )
    skip_known_credentials: bool = Field(
        default=True,
        description="leave files the private key and credential file rules report to them",
    )


def masked(match: SecretMatch) -> str:
    """How a value is shown: its format's public prefix at most, and its length."""
    if match.kind == "token" and match.length and match.shown:
        return f"{code(match.shown + '…')}, {match.length} characters"
    return f"{match.length} characters, not shown"


def _known_credential_files(facts: Any) -> set[str]:
    creds = getattr(facts, "credentials", None)
    if creds is None:
        return set()
    paths = {k.path for k in creds.private_keys}
    paths.update(f.path for f in creds.files if f.has_secret)
    return paths


def _message(match: SecretMatch) -> str:
    where = f"{code(match.path)} line {match.source.line}"
    if match.kind == "assignment":
        return f"File {where} assigns a secret to {code(match.key or '?')} ({masked(match)})"
    if match.marker:
        return f"File {where} holds a secret: {match.title}"
    return f"File {where} holds a secret: {match.title} ({masked(match)})"


@check_type(
    "secret_patterns",
    params_model=SecretPatternParams,
    missing=MissingPolicy.ERROR,
    needs=("secretscan",),
)
def secret_patterns(facts: Any, params: SecretPatternParams, rule: Rule) -> list[CheckResult]:
    """Fails once per value of the chosen ``kind`` found in the text files of the image.

    The ``secretscan`` facts record every match with the reason it is not a secret when it is
    not (a placeholder or template value, a documentation value, entropy or length below the
    pattern's bar); only the others fail. A token's severity is its family's (critical for a
    token that opens an account, high for a webhook, a JSON web token, a key identifier),
    never above the rule's. Files the ``private_keys`` and ``credential_files`` checks
    already report (``credentials`` facts) are left to them. The message names the file, the
    line, what was found and, for an assignment, the key; a value is never shown beyond the
    fixed public prefix of its format and its length.

    Missing fact: the ``secretscan`` facts could not be collected, or the scan stopped at one
    of its budgets (ERROR: what was found still fails). Absent ``credentials`` facts only
    stop the de-duplication.
    """
    scan: SecretScanFacts = facts.secretscan
    known = _known_credential_files(facts) if params.skip_known_credentials else set()
    results = []
    for match in scan.matches:
        if match.ignored is not None or match.kind != params.kind:
            continue
        if params.families and match.family not in params.families:
            continue
        if match.path in known or any(fnmatch.fnmatchcase(match.path, g) for g in params.exclude):
            continue
        severity = Severity(match.severity)
        lowered = severity if severity.rank < rule.severity.rank else None
        shown = f"{match.shown}…, " if match.shown else ""
        what = match.key if match.kind == "assignment" else match.pattern
        observed = f"{what}: {shown}{match.length} characters"
        results.append(
            CheckResult(
                Status.FAIL,
                _message(match),
                resource=match.path,
                evidence=Evidence(
                    path=match.path,
                    line=match.source.line,
                    observed=observed,
                    expected=NO_SECRET,
                ),
                severity=lowered,
            )
        )
    return results
