"""SARIF 2.1.0: what code-scanning dashboards read (GitHub, GitLab, DefectDojo...).

FAIL findings are ``kind: fail`` results; ERROR findings are ``kind: open`` (the tool could
not decide); waived findings keep their result with an accepted external suppression.
PASS and NOT_APPLICABLE are left out, as dashboards expect.

Every result has a physical location, since GitHub refuses a whole log for one result without
it: a finding about a file of the image points at that path, relative to the ``IMAGEROOT``
base (the audited root directory, or the root file system inside the image file); a finding
with no file of its own (a rule that could not be evaluated, an account, a service) points at
the image file itself, relative to ``%SRCROOT%`` (where the scan ran, the checkout in CI) when
the user named it by a relative path. A location without a line is the whole artefact, shown
at its first line. ``partialFingerprints`` is built from the rule, the object and the path
inside the image, never from the image's name or hash, so that an alert follows its object
across rebuilds of the image.

Severity is the one every other output shows: a result's ``level`` and its
``properties.severity``/``security-severity`` are its finding's; a rule's are the rule's
effective severity in this scan (its own, or the worst a check gave one of its listed
findings), since GitHub ranks every alert of a rule by the rule's ``security-severity``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from imageaudit.findings import Finding, ImageRef, Report, RuleOutcome
from imageaudit.model import Severity, Status, to_jsonable

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/imageaudit/imageaudit"
ROOT = "IMAGEROOT"
# The base GitHub code scanning and CodeQL use for paths relative to the repository checkout.
SRCROOT = "%SRCROOT%"
FINGERPRINT = "imageaudit/v1"
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
_URL = re.compile(r"https?://[^\s<>()]+[^\s<>().,;:]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def _name(rule_id: str) -> str:
    # SARIF wants ``name`` to differ from the opaque ``id``: the same words, in Pascal case.
    return "".join(part[:1].upper() + part[1:] for part in rule_id.split("_") if part)


def _urls(references: tuple[str, ...]) -> list[str]:
    return [m.group(0) for ref in references for m in _URL.finditer(ref)]


def _help_markdown(rule: RuleOutcome) -> str:
    parts = [rule.description.strip(), "", "**Why it matters.** " + rule.rationale.strip(), "",
             "**How to fix it.** " + rule.remediation.strip()]
    if rule.references:
        parts += ["", "**References**", ""]
        parts += ["- " + _URL.sub(lambda m: f"<{m.group(0)}>", ref) for ref in rule.references]
    return "\n".join(parts) + "\n"


def _help_text(rule: RuleOutcome) -> str:
    parts = [rule.description.strip(), "", "Why it matters: " + rule.rationale.strip(), "",
             "How to fix it: " + rule.remediation.strip()]
    if rule.references:
        parts += ["", "References:", *("- " + ref for ref in rule.references)]
    return "\n".join(parts) + "\n"


def _rule(rule: RuleOutcome) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": rule.id,
        "name": _name(rule.id),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": f"{rule.description}\n\n{rule.rationale}"},
        "help": {"text": _help_text(rule), "markdown": _help_markdown(rule)},
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
    urls = _urls(rule.references)
    if urls:
        entry["helpUri"] = urls[0]
    return entry


def _image_artifact(image: ImageRef) -> dict[str, Any]:
    """Where the image itself is: relative to the checkout when the user gave a relative path."""
    source = image.source
    if _SCHEME.match(source):  # docker://, oci://...: a reference, not a file
        return {"uri": source}
    path = PurePosixPath(source)
    if path.is_absolute():
        return {"uri": path.as_uri()}
    return {"uri": quote(path.as_posix()), "uriBaseId": SRCROOT}


def _base_ids(image: ImageRef) -> dict[str, Any]:
    bases: dict[str, Any] = {
        SRCROOT: {"description": {"text": "the directory the scan ran in (in CI, the checkout)"}}
    }
    if image.kind == "directory" and not _SCHEME.match(image.source):
        root = _image_artifact(image)
        root["uri"] = root["uri"].rstrip("/") + "/"
        root["description"] = {"text": "the audited root directory"}
        bases[ROOT] = root
    else:
        bases[ROOT] = {"description": {"text": f"the root file system inside {image.source}"}}
    return bases


def _location(finding: Finding, image: ImageRef) -> dict[str, Any]:
    ev = finding.evidence
    if ev.path:
        artifact = {"uri": quote(ev.path.lstrip("/")), "uriBaseId": ROOT}
    else:
        artifact = _image_artifact(image)
    physical = {"artifactLocation": artifact, "region": {"startLine": ev.line or 1}}
    return {"physicalLocation": physical}


def _fingerprint(finding: Finding) -> str:
    # The rule, the object and the path inside the image: nothing that names the image file
    # or its hash, and no line number (lines move when a file is edited).
    key = "\0".join((finding.rule_id, finding.resource or "", finding.evidence.path or ""))
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def _result(finding: Finding, index: int, image: ImageRef, fingerprint: str) -> dict[str, Any]:
    original = finding.waiver.original_status if finding.waiver else finding.status
    result: dict[str, Any] = {"ruleId": finding.rule_id, "ruleIndex": index}
    if original is Status.FAIL:
        result["kind"] = "fail"
        result["level"] = LEVEL[finding.severity]
    else:
        result["kind"] = "open"
        result["level"] = "none"
    result["message"] = {"text": finding.message}
    result["locations"] = [_location(finding, image)]
    result["partialFingerprints"] = {FINGERPRINT: fingerprint}
    if finding.waiver is not None:
        w = finding.waiver
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"{w.reason} (waived by {w.who} until {w.expires})",
            }
        ]
    ev = finding.evidence
    result["properties"] = {
        "status": finding.status.value,
        "severity": finding.severity.value,
        "security-severity": SECURITY_SEVERITY[finding.severity],
        "resource": finding.resource,
        "observed": ev.observed,
        "expected": ev.expected,
    }
    return result


def _results(report: Report) -> list[dict[str, Any]]:
    index = {rule.id: i for i, rule in enumerate(report.rules)}
    shown = [f for f in report.findings
             if f.status in (Status.FAIL, Status.ERROR, Status.WAIVED) and f.rule_id in index]
    # Two findings of one rule on one object (two lines of a file) get the same key; the
    # second and later are told apart by their rank, as stable as the findings' order.
    seen: Counter[str] = Counter()
    results = []
    for finding in shown:
        base = _fingerprint(finding)
        seen[base] += 1
        fingerprint = base if seen[base] == 1 else f"{base}:{seen[base]}"
        results.append(_result(finding, index[finding.rule_id], report.image, fingerprint))
    return results


def _driver(report: Report) -> dict[str, Any]:
    version = report.certification.tool_version
    driver: dict[str, Any] = {
        "name": "imageaudit",
        "version": version,
        "informationUri": INFORMATION_URI,
        "rules": [_rule(r) for r in report.rules],
    }
    if _SEMVER.match(version):
        driver["semanticVersion"] = version
    return driver


def to_sarif(report: Report) -> dict[str, Any]:
    """The SARIF log as a dict."""
    notifications = [
        {
            "level": "warning",
            "message": {"text": f"{e.collector}: {e.message}" + (f" ({e.path})" if e.path else "")},
        }
        for e in report.collector_errors
    ] + [{"level": "note", "message": {"text": w}} for w in report.warnings]
    run: dict[str, Any] = {
        "tool": {"driver": _driver(report)},
        "originalUriBaseIds": _base_ids(report.image),
        "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
        "results": _results(report),
        "properties": {
            "image": to_jsonable(report.image),
            "certification": to_jsonable(report.certification),
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def render(report: Report) -> str:
    """The report as SARIF 2.1.0 JSON."""
    return json.dumps(to_sarif(report), indent=2, ensure_ascii=False) + "\n"
