"""Check types over trivy's results (``scan --trivy``), deduplicated against our own rules.

They read ``facts.trivy`` (:class:`~imageaudit.vulns.trivy_scan.TrivyFacts`), attached by the
pipeline after collection. A secret in a file our secret rules already report (a private
key, a credential file, a token pattern at the same line) and a vulnerability our advisory
matching already reports (same package and CVE in ``facts.vulnerabilities``) are dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import NotApplicable, check_type
from imageaudit.findings import CheckResult, MissingPolicy, Rule, code
from imageaudit.imagefs import FileType
from imageaudit.model import Evidence, Severity, Status
from imageaudit.vulns.model import AdvisoryMatch
from imageaudit.vulns.trivy_scan import TrivyFacts, TrivySecret

NOT_ASKED = "trivy was not run (scan --trivy)"
NO_SECRET = "no secret in the image"
_SEVERITY = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MEDIUM": Severity.MODERATE,
    "LOW": Severity.LOW,
}
# Facts fields other secret rules fill with (path, line) records (``secretscan``: the token
# pattern and assignment rules); read defensively, a record with an ``ignored`` reason is none.
_SECRET_FACTS = ("secretscan", "secrets", "secret_patterns", "tokens")
_MAX_RECORDS = 100_000


def _trivy(facts: Any) -> TrivyFacts:
    result = getattr(facts, "trivy", None)
    if not isinstance(result, TrivyFacts):
        raise NotApplicable(NOT_ASKED)
    return result


def _records(value: Any, depth: int = 0) -> Iterator[Any]:
    """Records held in ``value`` (a dataclass's sequence fields, a sequence), a bounded walk."""
    if depth > 2 or value is None or isinstance(value, (str, bytes)):
        return
    if isinstance(value, (list, tuple)):
        for item in value[:_MAX_RECORDS]:
            yield item
            if not hasattr(item, "path"):
                yield from _records(item, depth + 1)
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _records(getattr(value, f.name, None), depth + 1)


def _line_of(record: Any) -> int | None:
    line = getattr(record, "line", None)
    if line is None:
        line = getattr(getattr(record, "source", None), "line", None)
    return line if isinstance(line, int) else None


def reported_secrets(facts: Any) -> tuple[set[str], set[tuple[str, int | None]]]:
    """What our secret rules report: whole files, and (file, line) places."""
    files: set[str] = set()
    places: set[tuple[str, int | None]] = set()
    creds = getattr(facts, "credentials", None)
    if creds is not None:
        files.update(k.path for k in creds.private_keys)
        for cred in creds.files:
            holds = cred.has_secret if cred.has_secret is not None else (
                cred.type in (FileType.REGULAR, FileType.SYMLINK) and cred.size > 0
            )
            if holds:
                files.add(cred.path)
    for name in _SECRET_FACTS:
        for record in _records(getattr(facts, name, None)):
            path = getattr(record, "path", None)
            if isinstance(path, str) and not getattr(record, "ignored", None):
                places.add((path, _line_of(record)))
    return files, places


def _secret_result(secret: TrivySecret) -> CheckResult:
    severity = _SEVERITY.get(secret.severity)
    where = f"{secret.path} line {secret.line}" if secret.line else secret.path
    title = f"{secret.title}, " if secret.title else ""
    category = f"category {secret.category}, " if secret.category else ""
    return CheckResult(
        Status.FAIL,
        f"trivy finds a secret in {code(where)}: {title}{category}trivy rule "
        f"{code(secret.rule_id)}, rated {secret.severity} by trivy (the value is not shown)",
        resource=f"{secret.path}:{secret.line or 0} {secret.rule_id}",
        evidence=Evidence(path=secret.path, line=secret.line,
                          observed=f"{secret.title or secret.rule_id} (trivy {secret.rule_id})",
                          expected=NO_SECRET),
        severity=severity,
    )  # fmt: skip


class TrivySecretParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dedupe: bool = Field(
        default=True,
        description="drop secrets in files (or at lines) our own secret rules already report",
    )


@check_type("trivy_secrets", params_model=TrivySecretParams, missing=MissingPolicy.ERROR)
def trivy_secrets(facts: Any, params: TrivySecretParams, rule: Rule) -> list[CheckResult]:
    """Fails once per secret trivy's secret scanner finds (its rule id, file and line).

    The value is never shown (trivy's ``Match`` is not kept). The finding's severity is
    trivy's rating (CRITICAL, HIGH, MEDIUM as moderate, LOW) when it is above the rule's.
    With ``dedupe``, a secret in a file the private-key or credential-file facts name, or at
    a file and line another secret fact names, is dropped: our own rule reports it.

    Missing fact: NOT_APPLICABLE without ``scan --trivy``. No trivy binary, a trivy failure
    or timeout is ERROR with the reason; a copy of the image that left text files out is an
    ERROR beside the secrets found.
    """
    found = _trivy(facts)
    if found.secret_problem:
        return [CheckResult(
            Status.ERROR, f"trivy's secret scan could not run: {found.secret_problem}",
            resource="trivy",
            evidence=Evidence(observed=found.secret_problem, expected="a trivy secret scan"),
        )]  # fmt: skip
    files, places = reported_secrets(facts) if params.dedupe else (set(), set())
    results = [
        _secret_result(s)
        for s in found.secrets
        if s.path not in files and (s.path, s.line) not in places
    ]
    if found.incomplete:
        results.append(CheckResult(
            Status.ERROR, f"trivy's secret scan did not see the whole image: {found.incomplete}",
            resource="trivy",
            evidence=Evidence(observed=found.incomplete, expected="every text file scanned"),
        ))  # fmt: skip
    return results


def _ours(match: AdvisoryMatch, advisories: tuple[AdvisoryMatch, ...]) -> bool:
    return any(m.package == match.package and match.id in (m.id, *m.aliases)
               for m in advisories)  # fmt: skip


class TrivyVulnParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fixed_only: bool = Field(
        default=True, description="report only vulnerabilities with a fixed version"
    )
    dedupe: bool = Field(
        default=True,
        description="drop a package and CVE our advisory matching (`--feeds`) already reports",
    )


@check_type("trivy_vulnerabilities", params_model=TrivyVulnParams, missing=MissingPolicy.ERROR)
def trivy_vulnerabilities(facts: Any, params: TrivyVulnParams, rule: Rule) -> list[CheckResult]:
    """Fails once per installed package and vulnerability trivy's database reports.

    With ``fixed_only``, only vulnerabilities with a fixed version count. The finding's
    severity is trivy's rating when it is above the rule's. With ``dedupe``, a package and
    CVE that ``facts.vulnerabilities`` (``--feeds``) already holds, as id or alias, is
    dropped: the advisory rule reports it.

    Missing fact: NOT_APPLICABLE without ``scan --trivy``. No trivy binary, no trivy
    vulnerability database, a trivy failure or timeout is ERROR with the reason.
    """
    found = _trivy(facts)
    if found.vuln_problem:
        return [CheckResult(
            Status.ERROR, f"trivy's vulnerability scan could not run: {found.vuln_problem}",
            resource="trivy",
            evidence=Evidence(observed=found.vuln_problem, expected="a trivy database"),
        )]  # fmt: skip
    ours = getattr(getattr(facts, "vulnerabilities", None), "advisories", ()) or ()
    results = []
    for match in found.vulnerabilities:
        if params.fixed_only and not match.fixed_version:
            continue
        if params.dedupe and _ours(match, ours):
            continue
        rating = f"rated {match.severity.value}" if match.severity else "not rated"
        fixed = f", fixed in {code(match.fixed_version)}" if match.fixed_version else ""
        title = f" ({match.summary})" if match.summary else ""
        results.append(CheckResult(
            Status.FAIL,
            f"trivy: package {code(match.package)} {code(match.installed_version)} has "
            f"{match.id}{title}{fixed}; {rating} by trivy",
            resource=f"{match.package} {match.id}",
            evidence=Evidence(observed=f"{match.package} {match.installed_version}",
                              expected=f">= {match.fixed_version}" if match.fixed_version
                              else "no vulnerable version"),
            severity=match.severity,
        ))  # fmt: skip
    return results
