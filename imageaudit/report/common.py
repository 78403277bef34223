"""What several output formats share: ordering, grouping, and splitting out code spans."""

from __future__ import annotations

import re
from collections.abc import Iterator

from imageaudit.findings import Finding, Report
from imageaudit.model import Severity, Status

SEVERITY_ORDER: tuple[Severity, ...] = (
    Severity.CRITICAL,
    Severity.HIGH,
    Severity.MODERATE,
    Severity.LOW,
    Severity.INFO,
)
# What a human summary lists one by one; PASS and NOT_APPLICABLE are only counted.
SHOWN = (Status.FAIL, Status.ERROR, Status.WAIVED)
STATUS_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.WAIVED: 2, Status.PASS: 3}

_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.DOTALL)


def by_severity(report: Report) -> Iterator[tuple[Severity, list[Finding]]]:
    """FAIL, ERROR and WAIVED findings per severity (most severe first), empty groups left out."""
    for severity in SEVERITY_ORDER:
        group = [f for f in report.findings if f.severity is severity and f.status in SHOWN]
        if group:
            group.sort(key=lambda f: (STATUS_ORDER.get(f.status, 9), f.rule_id, f.resource or ""))
            yield severity, group


def split_code(text: str) -> list[tuple[bool, str]]:
    """Split a message into ``(is_code, text)`` parts at its Markdown code spans."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    for match in _CODE_SPAN.finditer(text):
        if match.start() > pos:
            parts.append((False, text[pos : match.start()]))
        inner = match.group(2)
        if inner.startswith(" ") and inner.endswith(" ") and inner.strip():
            inner = inner[1:-1]
        parts.append((True, inner))
        pos = match.end()
    if pos < len(text):
        parts.append((False, text[pos:]))
    return parts


def location(finding: Finding) -> str:
    """``/etc/shadow line 23``, ``/etc/shadow`` or an empty string."""
    path = finding.evidence.path
    if path is None:
        return ""
    return f"{path} line {finding.evidence.line}" if finding.evidence.line else path


def status_label(finding: Finding) -> str:
    if finding.waiver is not None:
        return f"WAIVED ({finding.waiver.original_status.value})"
    return finding.status.value
