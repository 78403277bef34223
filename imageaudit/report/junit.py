"""JUnit XML: one test case per rule, so CI systems list every rule with its outcome.

FAIL is a ``failure``, ERROR an ``error`` (could not evaluate), NOT_APPLICABLE and WAIVED are
``skipped`` with the reason; the finding messages of a rule go into the element's text.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from imageaudit.findings import Finding, Report
from imageaudit.model import Status


def _lines(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"- [{f.status.value}] {f.message}")
        if f.evidence.observed is not None or f.evidence.expected is not None:
            lines.append(f"  observed: {f.evidence.observed}; expected: {f.evidence.expected}")
        if f.waiver is not None:
            lines.append(f"  waived by {f.waiver.who} until {f.waiver.expires}: {f.waiver.reason}")
    return "\n".join(lines)


def to_xml(report: Report) -> ET.Element:
    """The ``<testsuites>`` element."""
    by_rule: dict[str, list[Finding]] = defaultdict(list)
    for finding in report.findings:
        by_rule[finding.rule_id].append(finding)
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    suite = ET.Element("testsuite", name=f"imageaudit {report.image.source}")
    props = ET.SubElement(suite, "properties")
    cert = report.certification
    for name, value in (
        ("level", cert.level),
        ("ruleset_version", cert.ruleset_version),
        ("tool_version", cert.tool_version),
        ("image_sha512", cert.image_sha512 or ""),
        ("issued", cert.issued),
        ("expires", cert.expires),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    for rule in report.rules:
        case = ET.SubElement(
            suite, "testcase", classname=f"imageaudit.{rule.category.value}", name=rule.id
        )
        findings = by_rule.get(rule.id, [])
        shown = [f for f in findings if f.status is rule.status]
        summary = shown[0].message if shown else rule.title
        if len(shown) > 1:
            summary = f"{len(shown)} findings; first: {summary}"
        if rule.status is Status.FAIL:
            counts["failures"] += 1
            element = ET.SubElement(case, "failure", message=summary, type=rule.severity.value)
            element.text = _lines(shown) + f"\nRemediation: {rule.remediation}"
        elif rule.status is Status.ERROR:
            counts["errors"] += 1
            element = ET.SubElement(case, "error", message=summary, type="could-not-evaluate")
            element.text = _lines(shown)
        elif rule.status in (Status.NOT_APPLICABLE, Status.WAIVED):
            counts["skipped"] += 1
            prefix = "waived: " if rule.status is Status.WAIVED else ""
            element = ET.SubElement(case, "skipped", message=prefix + summary)
            element.text = _lines(shown)
    attrs = {"tests": str(len(report.rules)), **{k: str(v) for k, v in counts.items()}}
    suite.attrib.update(attrs)
    root = ET.Element("testsuites", {"name": "imageaudit", **attrs})
    root.append(suite)
    return root


def render(report: Report) -> str:
    """The report as JUnit XML text."""
    root = to_xml(report)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
