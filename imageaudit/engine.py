"""The rules engine: every rule over ``Facts``, one finding per judged object, never a crash.

Order per rule: applicability (``applies_to``) gives NOT_APPLICABLE; a missing fact the check
needs gives the rule's ``missing`` result; a check raising ``NotApplicable`` gives
NOT_APPLICABLE with its message, any other exception inside a check ERROR with the reason;
otherwise the check's results, or one PASS when it reported nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from imageaudit.certify import Levels, certify, level_warnings
from imageaudit.checks import (
    CheckType,
    MissingFact,
    MissingPolicy,
    NotApplicable,
    Registry,
    default_registry,
)
from imageaudit.findings import (
    CheckResult,
    Finding,
    ImageRef,
    Inventory,
    InventoryFile,
    InventoryPackage,
    NotHashedFiles,
    Report,
    Rule,
    RuleOutcome,
    Scope,
    code,
    printable,
)
from imageaudit.identity import ImageIdentity
from imageaudit.model import CollectorError, Evidence, Severity, Status
from imageaudit.rules import RuleSet, finding_severities
from imageaudit.tailoring import PathSkips
from imageaudit.waivers import Waiver, apply_waivers

# The findings whose severity a rule's own severity reflects: those every output lists.
_SEVERE = frozenset({Status.FAIL, Status.ERROR, Status.WAIVED})
_CHECK_STATUSES = frozenset({Status.PASS, Status.FAIL, Status.ERROR, Status.NOT_APPLICABLE})
_MISSING_STATUS = {
    MissingPolicy.PASS: Status.PASS,
    MissingPolicy.FAIL: Status.FAIL,
    MissingPolicy.NOT_APPLICABLE: Status.NOT_APPLICABLE,
    MissingPolicy.ERROR: Status.ERROR,
}


class FactsLike(Protocol):
    """What the engine needs of ``imageaudit.facts.Facts``; families are read by name."""

    @property
    def image(self) -> Any: ...

    @property
    def errors(self) -> tuple[CollectorError, ...]: ...


def _clean(text: str | None) -> str | None:
    return None if text is None else printable(text)


def make_finding(rule: Rule, result: CheckResult) -> Finding:
    """A finding for ``rule`` from one check result; image strings made printable here."""
    ev = result.evidence
    return Finding(
        rule_id=rule.id,
        title=rule.title,
        category=rule.category,
        severity=result.severity or rule.severity,
        status=result.status,
        message=printable(result.message),
        resource=_clean(result.resource),
        evidence=Evidence(
            path=_clean(ev.path),
            line=ev.line,
            observed=_clean(ev.observed),
            expected=_clean(ev.expected),
        ),
        remediation=rule.remediation,
        references=rule.references,
    )


def _missing(
    rule: Rule, ctype: CheckType | None, facts: FactsLike, fact: str, why: str
) -> CheckResult:
    policy = rule.missing or (ctype.missing if ctype is not None else MissingPolicy.ERROR)
    recorded = [e.message for e in facts.errors if e.collector == fact]
    reason = "; ".join(r for r in (why, *recorded) if r) or "its collector returned nothing"
    what = f"the {code(fact)} facts are missing ({reason})"
    message = {
        MissingPolicy.PASS: f"Passes without evidence: {what}",
        MissingPolicy.FAIL: f"Fails without evidence: {what}",
        MissingPolicy.NOT_APPLICABLE: f"Not applicable: {what}",
        MissingPolicy.ERROR: f"Could not evaluate: {what}",
    }[policy]
    return CheckResult(
        _MISSING_STATUS[policy],
        message,
        evidence=Evidence(observed=reason, expected=f"{fact} facts"),
    )


def _applicability(rule: Rule, facts: FactsLike) -> CheckResult | None:
    kinds = rule.applies_to.image_kinds
    if kinds is not None and facts.image.kind not in kinds:
        return CheckResult(
            Status.NOT_APPLICABLE,
            f"Not applicable: the rule is for {', '.join(kinds)} images, "
            f"this is a {code(facts.image.kind)} image",
        )
    families = rule.applies_to.os_families
    if families is None:
        return None
    os_facts = getattr(facts, "os", None)
    if os_facts is None:
        return _missing(rule, None, facts, "os", "the rule depends on the OS family")
    os_id = os_facts.id.value if os_facts.id is not None else None
    names = {os_id, *os_facts.id_like_list}
    if names.isdisjoint(families):
        seen = os_id or "unknown"
        return CheckResult(
            Status.NOT_APPLICABLE,
            f"Not applicable: the rule is for {', '.join(families)} systems, "
            f"this image runs {code(seen)}",
        )
    return None


# Findings one rule may report before the rest are counted in one aggregate finding, so that
# the work of judging and reporting is bounded by the input, not by what a hostile image plants.
MAX_RESULTS_PER_RULE = 200


def _incomplete(ctype: CheckType, facts: FactsLike) -> CheckResult | None:
    """One ERROR naming what the check's facts lack, when a collector could not read it all."""
    lacking = [e for e in facts.errors if e.incomplete and e.collector in ctype.needs]
    if not lacking:
        return None
    reasons = "; ".join(f"{e.path}: {e.message}" if e.path else e.message for e in lacking[:5])
    if len(lacking) > 5:
        reasons += f"; and {len(lacking) - 5} more"
    families = ", ".join(code(f) for f in dict.fromkeys(e.collector for e in lacking))
    return CheckResult(
        Status.ERROR,
        f"Could not evaluate: the {families} facts are incomplete ({reasons})",
        evidence=Evidence(
            path=lacking[0].path, observed=reasons, expected="every file read whole"
        ),
    )


def _capped(results: list[CheckResult]) -> list[CheckResult]:
    """At most :data:`MAX_RESULTS_PER_RULE` results; the FAILs beyond it in one more result."""
    if len(results) <= MAX_RESULTS_PER_RULE:
        return results
    kept, rest = results[:MAX_RESULTS_PER_RULE], results[MAX_RESULTS_PER_RULE:]
    fails = [r for r in rest if r.status is Status.FAIL]
    errors = [r for r in rest if r.status is Status.ERROR]
    if fails:
        worst = max((r.severity for r in fails if r.severity), key=lambda s: s.rank, default=None)
        kept.append(
            CheckResult(
                Status.FAIL,
                f"{len(fails)} more objects fail this rule (not listed one by one)",
                severity=worst,
                evidence=Evidence(observed=f"{len(fails)} more failing objects"),
            )
        )
    if errors:
        kept.append(
            CheckResult(
                Status.ERROR,
                f"Could not evaluate {len(errors)} more objects (not listed one by one)",
            )
        )
    return kept


def _run_check(rule: Rule, ctype: CheckType, facts: FactsLike) -> list[CheckResult]:
    results = _judge(rule, ctype, facts)
    lacking = _incomplete(ctype, facts)
    if lacking is not None:
        # What failed on the part that was read still fails; nothing passes on a partial read.
        results = [r for r in results if r.status is Status.FAIL] + [lacking]
    return _capped(results)


def _judge(rule: Rule, ctype: CheckType, facts: FactsLike) -> list[CheckResult]:
    for fact in ctype.needs:
        if getattr(facts, fact, None) is None:
            return [_missing(rule, ctype, facts, fact, "")]
    try:
        results = ctype.func(facts, rule.params, rule)
    except MissingFact as exc:
        return [_missing(rule, ctype, facts, exc.fact, exc.reason)]
    except NotApplicable as exc:
        return [CheckResult(Status.NOT_APPLICABLE, str(exc))]
    except Exception as exc:  # a check tripping over a hostile image is an ERROR, not a crash
        return [
            CheckResult(
                Status.ERROR,
                f"Could not evaluate: check {code(ctype.name)} failed: {type(exc).__name__}: {exc}",
            )
        ]
    if not isinstance(results, (list, tuple)) or not all(
        isinstance(r, CheckResult) and r.status in _CHECK_STATUSES for r in results
    ):
        return [
            CheckResult(
                Status.ERROR,
                f"Could not evaluate: check {code(ctype.name)} returned something "
                "other than a list of PASS/FAIL/ERROR/NOT_APPLICABLE results",
            )
        ]
    if not results:
        return [CheckResult(Status.PASS, f"Passed: {rule.title}")]
    return list(results)


def evaluate_rule(rule: Rule, facts: FactsLike, registry: Registry) -> list[Finding]:
    """The findings of one rule over ``facts`` (at least one)."""
    na = _applicability(rule, facts)
    if na is not None:
        return [make_finding(rule, na)]
    ctype = registry.get(rule.check_type)
    if ctype is None:
        result = CheckResult(
            Status.ERROR, f"Could not evaluate: unknown check type {code(rule.check_type)}"
        )
        return [make_finding(rule, result)]
    return [make_finding(rule, r) for r in _run_check(rule, ctype, facts)]


def evaluate(
    facts: FactsLike, rules: Iterable[Rule], registry: Registry | None = None
) -> list[Finding]:
    """Every rule over ``facts``, in rule order; waivers are applied afterwards."""
    reg = registry if registry is not None else default_registry()
    findings: list[Finding] = []
    for rule in rules:
        findings.extend(evaluate_rule(rule, facts, reg))
    return findings


def worst_status(statuses: Collection[Status]) -> Status:
    """FAIL over ERROR over WAIVED over PASS over NOT_APPLICABLE (also for none at all)."""
    for status in (Status.FAIL, Status.ERROR, Status.WAIVED, Status.PASS):
        if status in statuses:
            return status
    return Status.NOT_APPLICABLE


def rule_status(findings: Sequence[Finding]) -> Status:
    """A rule's overall status: the worst of its findings' (:func:`worst_status`)."""
    return worst_status({f.status for f in findings})


def effective_severity(rule: Rule, findings: Sequence[Finding]) -> Severity:
    """The rule's severity, or the worst severity a check gave one of its failing objects.

    Levels block by this, so a finding that a check escalated (an empty password reachable
    over ssh) blocks the level its own severity belongs to. Waived findings count too: they
    stay in every output under their own severity, and the rule's severity (SARIF's
    ``security-severity``, the JSON report's ``rules``) must not read lower than theirs.
    """
    worst = rule.severity
    for finding in findings:
        if finding.status in _SEVERE and finding.severity.rank > worst.rank:
            worst = finding.severity
    return worst


def outcomes(rules: Iterable[Rule], findings: Sequence[Finding]) -> tuple[RuleOutcome, ...]:
    """Each rule's metadata with its overall status."""
    by_rule: dict[str, list[Finding]] = {}
    for finding in findings:
        by_rule.setdefault(finding.rule_id, []).append(finding)
    return tuple(
        RuleOutcome(
            id=r.id,
            title=r.title,
            description=r.description,
            rationale=r.rationale,
            category=r.category,
            severity=effective_severity(r, by_rule.get(r.id, [])),
            remediation=r.remediation,
            references=r.references,
            levels=r.levels,
            version=r.version,
            status=rule_status(by_rule.get(r.id, [])),
            check_type=r.check_type,
        )
        for r in rules
    )


def _opt(text: str | None) -> str | None:
    return None if text is None else printable(text)


def inventory_of(facts: FactsLike) -> Inventory | None:
    """The packages and file hashes a report carries for the catalogue's campaigns; None when
    neither family was collected."""
    from imageaudit.report.purl import purl_for
    from imageaudit.vulns.osv_ecosystems import image_ecosystem, osv_name

    packages = getattr(facts, "packages", None)
    hashes = getattr(facts, "filehashes", None)
    if packages is None and hashes is None:
        return None
    os_facts = getattr(facts, "os", None)
    key = image_ecosystem(os_facts)
    ecosystem = osv_name(key) if key else None
    listed = tuple(
        InventoryPackage(name=printable(p.name), version=printable(p.full_version),
                         arch=_opt(p.arch), source_name=_opt(p.source_name),
                         source_version=_opt(p.source_version), manager=p.manager,
                         ecosystem=ecosystem, purl=purl_for(p, os_facts).to_string())
        for p in (packages.packages if packages is not None else ()) if p.present
    )
    files = tuple(
        InventoryFile(path=printable(f.path), sha256=f.sha256, sha1=f.sha1, md5=f.md5,
                      size=f.size, kinds=f.kinds)
        for f in (hashes.files if hashes is not None else ())
    )
    if hashes is None:
        not_hashed = NotHashedFiles(count=1,
                                    examples=(("/", "the file hashes were not collected"),))
        limits: tuple[tuple[str, int], ...] = ()
    else:
        not_hashed = NotHashedFiles(
            count=hashes.not_hashed_count,
            examples=tuple((printable(n.path), n.reason) for n in hashes.not_hashed))
        limits = (("max_file_bytes", hashes.max_file_bytes),
                  ("max_total_bytes", hashes.max_total_bytes), ("max_files", hashes.max_files))
    complete = hashes is not None and hashes.complete and packages is not None
    return Inventory(packages=listed, files=files, complete=complete, not_hashed=not_hashed,
                     limits=limits)


def left_out(rule: Rule) -> Finding:
    """The finding of a rule the scan's rule selection left out: not evaluated, so ERROR, at
    the highest severity a finding of the rule can have (the level its findings could have
    blocked is not granted either)."""
    return make_finding(rule, CheckResult(
        Status.ERROR,
        "Not evaluated: the rule was left out of this scan by its rule selection; no level "
        "the rule guards is granted without it",
        severity=max(finding_severities(rule), key=lambda s: s.rank),
        evidence=Evidence(observed="rule left out", expected="rule evaluated"),
    ))


def drop_skipped_paths(rules: Sequence[Rule], findings: Sequence[Finding],
                       skips: PathSkips) -> tuple[list[Finding], int]:
    """The findings not under a skipped path, and how many were dropped. A rule all of whose
    findings were dropped keeps one NOT_APPLICABLE finding saying so."""
    kept: list[Finding] = []
    dropped: dict[str, int] = {}
    for finding in findings:
        path = finding.evidence.path or finding.resource
        if skips.covers(path):
            dropped[finding.rule_id] = dropped.get(finding.rule_id, 0) + 1
        else:
            kept.append(finding)
    left = {f.rule_id for f in kept}
    for rule in rules:
        count = dropped.get(rule.id, 0)
        if count and rule.id not in left:
            kept.append(make_finding(rule, CheckResult(
                Status.NOT_APPLICABLE,
                f"Not applicable: all {count} of its findings were under skipped paths",
                evidence=Evidence(observed=f"{count} findings under skipped paths"),
            )))
    order = {r.id: i for i, r in enumerate(rules)}
    kept.sort(key=lambda f: order.get(f.rule_id, len(order)))
    return kept, sum(dropped.values())


def scan_facts(
    facts: FactsLike,
    rules: RuleSet,
    levels: Levels,
    waivers: Sequence[Waiver] = (),
    image_identity: ImageIdentity | None = None,
    *,
    registry: Registry | None = None,
    now: datetime | None = None,
    validity_days: int | None = None,
    tool_version: str | None = None,
    skipped: Sequence[Rule] = (),
    path_skips: PathSkips | None = None,
    tailoring: str | None = None,
) -> Report:
    """Judge ``facts`` with ``rules``, apply ``waivers``, certify against ``levels``.

    ``now`` (default: the current UTC time) fixes the waiver expiry date and the issued time;
    ``validity_days`` overrides the levels file's certification lifetime. ``skipped`` are the
    rules a selection left out: each gets an ERROR finding that no waiver covers, so the levels
    they guard are not granted. Findings under ``path_skips`` are dropped; both, and the
    ``tailoring`` file's digest, are recorded in the certification's ``scope``.
    """
    now = now or datetime.now(UTC)
    findings = evaluate(facts, rules, registry)
    dropped = 0
    if path_skips:
        findings, dropped = drop_skipped_paths(list(rules), findings, path_skips)
    every = sorted((*rules, *skipped), key=lambda r: r.id)
    findings, warnings = apply_waivers(findings, waivers, now, {r.id for r in every})
    if skipped:
        # Added after the waivers: a rule that was not run has nothing a waiver could accept.
        by_rule: dict[str, list[Finding]] = {}
        for finding in [*findings, *(left_out(r) for r in skipped)]:
            by_rule.setdefault(finding.rule_id, []).append(finding)
        findings = [f for r in every for f in by_rule.get(r.id, ())]
    judged = outcomes(every, findings)
    identity = image_identity or ImageIdentity(source=str(facts.image.source))
    certification = certify(
        judged,
        levels,
        ruleset_version=rules.version,
        identity=identity,
        now=now,
        validity_days=validity_days,
        tool_version=tool_version,
    )
    if skipped or path_skips or tailoring:
        certification = replace(certification, scope=Scope(
            skipped_rules=tuple(r.id for r in skipped),
            skipped_dirs=path_skips.dirs if path_skips else (),
            skipped_files=path_skips.files if path_skips else (),
            dropped_findings=dropped,
            tailoring=tailoring,
        ))
    image = ImageRef(
        source=printable(identity.source),
        kind=facts.image.kind,
        format=facts.image.format,
        sha512=identity.sha512,
        size=identity.size,
    )
    errors = tuple(
        CollectorError(e.collector, printable(e.message), _clean(e.path)) for e in facts.errors
    )
    return Report(
        image=image,
        certification=certification,
        rules=judged,
        findings=tuple(findings),
        collector_errors=errors,
        warnings=(*level_warnings(every, levels), *warnings),
        inventory=inventory_of(facts),
    )


__all__ = ["FactsLike", "drop_skipped_paths", "evaluate", "evaluate_rule", "inventory_of",
           "left_out", "outcomes", "rule_status", "scan_facts", "worst_status"]
