"""Check types over advisories (OSV, trivy) and the end of life of the image's release."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingFact, MissingPolicy, check_type
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Severity, Status
from imageaudit.vulns.eol import (
    EOLTableError,
    eol_status,
    find_distribution,
    load_eol_table,
    release_eol,
)
from imageaudit.vulns.match import release_keys
from imageaudit.vulns.model import AdvisoryMatch, FeedProblem
from imageaudit.vulns.security_suite import SOURCE as SECURITY
from imageaudit.vulns.security_suite import security_channels, sync_hint

NO_FEED = "no advisory feed given"


class VulnerableParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: list[str] = Field(
        default_factory=lambda: ["osv", "trivy", SECURITY],
        description="advisory sources whose findings count: `osv` (OSV records), `trivy`, "
        "`security` (a newer build in the security channel of the image's release, e.g. "
        "Debian's `<release>-security`, is a published security fix)",
    )
    max_ids: int = Field(default=6, ge=1, description="advisory ids named in one message")


def _sources(match: AdvisoryMatch) -> set[str]:
    return set(match.source.split("+"))


def _highest(versions: set[str], manager: str | None) -> str:
    from imageaudit.vulns.versions import sort_key

    if manager:
        try:
            return sorted(versions, key=sort_key(manager))[-1]  # type: ignore[arg-type]
        except ValueError:
            pass
    return sorted(versions)[-1]


def _worst(matches: Sequence[AdvisoryMatch]) -> AdvisoryMatch | None:
    rated = [m for m in matches if m.severity is not None]
    if not rated:
        return None
    return max(rated, key=lambda m: (m.severity.rank if m.severity else -1, m.cvss_score or 0.0))


def _package_result(
    package: str, installed: str, matches: list[AdvisoryMatch], manager: str | None, limit: int
) -> CheckResult:
    # A security-channel match restates a newer build, it is no advisory of its own: name the
    # channel and its version, and the advisory ids only when an advisory feed gave some.
    channel = sorted({m.summary for m in matches if m.source == SECURITY})
    ids = sorted({m.id for m in matches if m.source != SECURITY})
    fixed = _highest({m.fixed_version for m in matches if m.fixed_version}, manager)
    found_by = ", ".join(sorted(set().union(*(_sources(m) for m in matches))))
    worst = _worst(matches)
    if worst is not None and worst.severity is not None:
        score = f", CVSS {worst.cvss_score:g}" if worst.cvss_score is not None else ""
        why = f"severity {worst.severity.value} from {worst.id}{score}"
    elif ids:
        why = "no advisory gives a severity"
    else:
        why = "no advisory id known: the snapshot has no advisory record of it"
    where = f"; {', '.join(channel)}" if channel else ""
    if ids:
        shown = ", ".join(ids[:limit]) + (
            f" and {len(ids) - limit} more" if len(ids) > limit else "")
        noun = "vulnerability" if len(ids) == 1 else "vulnerabilities"
        what = f"has {len(ids)} known {noun} with a fix: {shown}; fixed in {code(fixed)}{where}"
    else:
        what = f"has a security fix available: fixed in {code(fixed)}{where}"
    return CheckResult(
        Status.FAIL,
        f"Package {code(package)} {code(installed)} {what} ({why}; found by {found_by})",
        resource=package,
        evidence=Evidence(observed=installed, expected=f">= {fixed}"),
        severity=worst.severity if worst is not None else None,
    )


def _no_feed(facts: Any, reasons: str = NO_FEED) -> str:
    keys = release_keys(getattr(facts, "os", None))
    return f"{reasons}; {sync_hint(keys[-1] if keys else None)}"


def _evaluated(facts: Any, vulns: Any, wanted: set[str]) -> list[FeedProblem]:
    """The problems of the wanted sources, after MissingFact when no wanted source judged.

    The security channel is implied by the update feeds, not asked for: its absence is a
    problem only when no other wanted source (OSV, trivy) judged the image."""
    problems = [p for p in vulns.problems if p.feed.split(":")[0] in wanted]
    used = wanted & (set(vulns.sources) | {f.kind for f in vulns.feeds})
    if not used and not problems:
        reasons = "; ".join(p.message for p in vulns.problems) or NO_FEED
        raise MissingFact("vulnerabilities", _no_feed(facts, reasons))
    if used - {SECURITY}:
        problems = [p for p in problems if p.feed != SECURITY]
    return problems


def _problem_result(problem: FeedProblem) -> CheckResult:
    if problem.feed == SECURITY:
        return CheckResult(
            Status.ERROR,
            f"Could not evaluate: {problem.message}",
            resource=SECURITY,
            evidence=Evidence(observed=problem.message,
                              expected="the security channel of the image's release"),
        )
    return CheckResult(
        Status.ERROR,
        f"Advisory feed {code(problem.feed)} could not be used: {problem.message}",
        resource=problem.feed,
        evidence=Evidence(observed=problem.message, expected="a usable advisory feed"),
    )


# needs packages: a package list cut short (or unparseable) must not pass as fully patched.
@check_type(
    "vulnerable_package_fixed", params_model=VulnerableParams, missing=MissingPolicy.ERROR,
    needs=("packages",),
)
def vulnerable_package_fixed(
    facts: Any, params: VulnerableParams, rule: Rule
) -> list[CheckResult]:
    """Fails once per installed package that an advisory says is vulnerable and fixed upstream.

    The advisories are the OSV records and trivy results matched to the image, and the
    security channel of the image's release in the feed snapshot (``security``: a newer build
    in Debian's ``<release>-security`` is a published fix, named with the channel and its
    version even when no advisory id is known) -- ``facts.vulnerabilities``, attached when
    the user gives feeds. The finding's severity is the worst severity among the package's
    advisories (CVSS score or the distribution's rating), the rule's own when none has one.
    An advisory feed that could not be used (trivy without a database, an OSV feed without
    the image's release) is an ERROR naming the reason; so is a snapshot without the security
    channel of the image's release, unless another advisory source judged the image.

    Missing fact: without advisory data (no ``--feeds``, or feeds without any advisory
    source) the result is ERROR "no advisory feed given" naming the ``feeds sync`` to run,
    never a PASS.
    """
    vulns = facts.vulnerabilities
    wanted = set(params.sources)
    if vulns is None:
        raise MissingFact("vulnerabilities", _no_feed(facts))
    results = [_problem_result(p) for p in _evaluated(facts, vulns, wanted)]
    groups: dict[tuple[str, str], list[AdvisoryMatch]] = {}
    for match in vulns.advisories:
        if match.fixed_version and _sources(match) & wanted:
            groups.setdefault((match.package, match.installed_version), []).append(match)
    packages = facts.packages
    for (package, installed), matches in sorted(groups.items()):
        owners = packages.named(package) if packages is not None else ()
        manager = owners[0].manager if owners else None
        results.append(_package_result(package, installed, matches, manager, params.max_ids))
    if not results:
        results.append(_pass_result(facts, vulns, wanted))
    return results


def _pass_result(facts: Any, vulns: Any, wanted: set[str]) -> CheckResult:
    judged = []
    if SECURITY in wanted:
        channels = security_channels(vulns)
        judged += [f"{f.suite} of {f.fetched_at[:10]}" for f in vulns.feeds
                   if f.suite in channels]
    judged += [f"{f.kind} {f.suite} of {f.fetched_at[:10]}" for f in vulns.feeds
               if f.kind in wanted]
    if "trivy" in wanted and "trivy" in vulns.sources:
        judged.append("trivy")
    count = len(getattr(facts.packages, "packages", ()) or ()) if facts.packages else 0
    return CheckResult(
        Status.PASS,
        f"No known fix is missing among the {count} installed packages, judged by "
        f"{', '.join(judged) or 'the advisory feeds'}",
    )


class EndOfLifeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    warn_days: int = Field(default=90, ge=0, description="also fail this many days before the end")
    near_severity: Severity = Field(
        default=Severity.MODERATE, description="severity while the release is still supported"
    )
    table: str | None = Field(
        default=None,
        description="end-of-life data file, relative to the rules directory; "
        "the built-in `imageaudit/data/eol.yaml` when absent",
    )


@check_type(
    "release_end_of_life", params_model=EndOfLifeParams, missing=MissingPolicy.ERROR,
    needs=("os",),
)  # fmt: skip
def release_end_of_life(facts: Any, params: EndOfLifeParams, rule: Rule) -> list[CheckResult]:
    """Fails when the image's release is past the end of its security support, or near it.

    The dates come from a data file citing each distribution's own life-cycle page. Past the
    date the finding has the rule's severity; within ``warn_days`` before it, ``near_severity``
    (the release still gets fixes). A distribution the table does not know (a rolling
    release, say) is NOT_APPLICABLE; a known distribution whose release is missing from the
    table is ERROR (the table needs an update).

    Missing fact: without the ``os`` facts, or without an os-release ``ID``, the rule's
    ``missing`` result (ERROR by default).
    """
    path = Path(rule.rules_dir, params.table) if params.table else None
    try:
        table = load_eol_table(path)
    except (OSError, EOLTableError) as exc:
        return [CheckResult(Status.ERROR, f"The end-of-life table could not be read: {exc}")]
    os_facts = facts.os
    ident = getattr(getattr(os_facts, "id", None), "value", None)
    if not ident:
        raise MissingFact("os", "the image names no distribution (no os-release ID)")
    version = getattr(getattr(os_facts, "version_id", None), "value", None) or "unknown"
    dist = find_distribution(os_facts, table)
    if dist is None:
        message = f"No end-of-life data for {code(ident)} (not in {table.path})"
        return [CheckResult(Status.NOT_APPLICABLE, message)]
    resource = f"{ident} {version}"
    release = release_eol(os_facts, dist)
    if release is None:
        return [CheckResult(
            Status.ERROR,
            f"Release {code(resource)} of {dist.name} is not in the end-of-life table "
            f"({table.path}, as of {table.as_of})",
            resource=resource,
            evidence=Evidence(observed=version,
                              expected=", ".join(r.version for r in dist.releases)),
        )]  # fmt: skip
    status = eol_status(release, dt.datetime.now(dt.UTC).date(), params.warn_days)
    cite = f"{release.meaning}; {release.source}"
    evidence = Evidence(
        path=getattr(os_facts, "os_release_path", None),
        observed=resource,
        expected=f"supported after {release.eol.isoformat()}",
    )
    if status.state == "past":
        return [CheckResult(
            Status.FAIL,
            f"{release.label} reached its end of life on {release.eol.isoformat()} ({cite}): "
            "it gets no security updates",
            resource=resource, evidence=evidence,
        )]  # fmt: skip
    if status.state == "near":
        return [CheckResult(
            Status.FAIL,
            f"{release.label} reaches its end of life on {release.eol.isoformat()}, in "
            f"{status.days_left} days ({cite}); severity {params.near_severity.value} "
            "while it is still supported",
            resource=resource, evidence=evidence, severity=params.near_severity,
        )]  # fmt: skip
    return [CheckResult(
        Status.PASS,
        f"{release.label} is supported until {release.eol.isoformat()} ({cite})",
        resource=resource, evidence=evidence,
    )]  # fmt: skip
