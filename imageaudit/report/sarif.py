"""SARIF 2.1.0: what code-scanning dashboards read (GitHub, GitLab, DefectDojo...).

FAIL findings are ``kind: fail`` results; ERROR findings are ``kind: open`` (the tool could
not decide); waived findings keep their result with an accepted external suppression.
PASS and NOT_APPLICABLE are left out, as dashboards expect. Paths inside the image are
relative to the ``IMAGEROOT`` base.

Severity is the one every other output shows: a result's ``level`` and its
``properties.severity``/``security-severity`` are its finding's; a rule's are the rule's
effective severity in this scan (its own, or the worst a check gave one of its listed
findings), since GitHub ranks every alert of a rule by the rule's ``security-severity``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from imageaudit.findings import Finding, Report, RuleOutcome
from imageaudit.model import Severity, Status, to_jsonable

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
ROOT = "IMAGEROOT"
LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MODERATE: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub code scanning ranks security results by this CVSS-like score, in its bands:
# critical >= 9.0, high 7.0-8.9, medium 4.0-6.9, low 0.1-3.9 (info: none of them).
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MODERATE: "5.5",
    Severity.LOW: "2.0",
    Severity.INFO: "0.0",
}


def _rule(rule: RuleOutcome) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": rule.id,
        "name": rule.id,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": f"{rule.description}\n\n{rule.rationale}"},
        "help": {"text": rule.remediation},
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {
            "category": rule.category.value,
            "severity": rule.severity.value,
            "security-severity": SECURITY_SEVERITY[rule.severity],
            "tags": ["security", rule.category.value],
            "levels": list(rule.levels),
            "references": list(rule.references),
            "version": rule.version,
        },
    }
    urls = [r for r in rule.references if r.startswith(("https://", "http://"))]
    if urls:
        entry["helpUri"] = urls[0]
    return entry


def _result(finding: Finding, index: int) -> dict[str, Any]:
    original = finding.waiver.original_status if finding.waiver else finding.status
    result: dict[str, Any] = {"ruleId": finding.rule_id, "ruleIndex": index}
    if original is Status.FAIL:
        result["kind"] = "fail"
        result["level"] = LEVEL[finding.severity]
    else:
        result["kind"] = "open"
        result["level"] = "none"
    result["message"] = {"text": finding.message}
    ev = finding.evidence
    if ev.path:
        physical: dict[str, Any] = {
            "artifactLocation": {"uri": quote(ev.path.lstrip("/")), "uriBaseId": ROOT}
        }
        if ev.line:
            physical["region"] = {"startLine": ev.line}
        result["locations"] = [{"physicalLocation": physical}]
    if finding.waiver is not None:
        w = finding.waiver
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"{w.reason} (waived by {w.who} until {w.expires})",
            }
        ]
    result["properties"] = {
        "status": finding.status.value,
        "severity": finding.severity.value,
        "security-severity": SECURITY_SEVERITY[finding.severity],
        "resource": finding.resource,
        "observed": ev.observed,
        "expected": ev.expected,
    }
    return result


def to_sarif(report: Report) -> dict[str, Any]:
    """The SARIF log as a dict."""
    index = {rule.id: i for i, rule in enumerate(report.rules)}
    results = [
        _result(f, index[f.rule_id])
        for f in report.findings
        if f.status in (Status.FAIL, Status.ERROR, Status.WAIVED) and f.rule_id in index
    ]
    notifications = [
        {
            "level": "warning",
            "message": {"text": f"{e.collector}: {e.message}" + (f" ({e.path})" if e.path else "")},
        }
        for e in report.collector_errors
    ] + [{"level": "note", "message": {"text": w}} for w in report.warnings]
    cert = report.certification
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "imageaudit",
                "version": cert.tool_version,
                "rules": [_rule(r) for r in report.rules],
            }
        },
        "originalUriBaseIds": {
            ROOT: {"uri": "file:///", "description": {"text": "root of the audited image"}}
        },
        "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
        "results": results,
        "properties": {
            "image": to_jsonable(report.image),
            "certification": to_jsonable(cert),
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def render(report: Report) -> str:
    """The report as SARIF 2.1.0 JSON."""
    return json.dumps(to_sarif(report), indent=2, ensure_ascii=False) + "\n"
