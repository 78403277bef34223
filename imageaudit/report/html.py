"""One self-contained HTML page: the level against the required one, one line per finding,
then each rule's findings in detail.

The page loads nothing and runs nothing (a Content-Security-Policy forbids both). Every string
in it may come from a hostile image, so the template is rendered with autoescaping on; the only
markup built here is the ``<code>`` of a message's code spans, around escaped text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from markupsafe import Markup, escape

from imageaudit.findings import Finding, Report, RuleOutcome
from imageaudit.model import Status
from imageaudit.report.common import SEVERITY_ORDER, by_severity, location, split_code
from imageaudit.report.templating import environment

SHA_SHOWN = 16  # hex digits of the SHA-512 shown; the page holds (and copies) all 128
_UNEVALUATED = "Could not evaluate: "  # how the engine begins an ERROR finding's message
_LINKABLE = ("https://", "http://")
_STATUS_WORDS = {
    Status.FAIL: "failed",
    Status.ERROR: "could not evaluate",
    Status.WAIVED: "waived",
    Status.PASS: "passed",
    Status.NOT_APPLICABLE: "not applicable",
}


@dataclass(frozen=True, slots=True)
class _Row:
    """One finding as the summary table and the details show it."""

    anchor: str
    finding: Finding
    status: str
    status_css: str
    obj: str
    message: Markup
    message_text: str
    where: str

    @property
    def reason(self) -> Markup:
        """Why the finding could not be evaluated: its message without the opening words."""
        message = self.finding.message
        return _code_spans(message.removeprefix(_UNEVALUATED))


@dataclass(frozen=True, slots=True)
class _Reference:
    text: str
    href: str | None


@dataclass(frozen=True, slots=True)
class _RuleBlock:
    """A rule's text once, then each of its findings."""

    anchor: str
    rule_id: str
    title: str
    severity: str
    rationale: Markup
    remediation: Markup
    references: tuple[_Reference, ...]
    rows: tuple[_Row, ...]


@dataclass(frozen=True, slots=True)
class _Blocker:
    rule_id: str
    href: str | None
    unevaluated: bool


@dataclass(frozen=True, slots=True)
class _Level:
    name: str
    anchor: str
    description: str
    granted: bool
    required: bool
    blockers: tuple[_Blocker, ...]


def _code_spans(text: str) -> Markup:
    """A message with its Markdown code spans as ``<code>``, every part escaped."""
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if is_code else escape(part)
        for is_code, part in split_code(text)
    )


def _plain(text: str) -> str:
    return "".join(part for _, part in split_code(text))


def _status(f: Finding) -> tuple[str, str]:
    """The status words and the CSS class of a finding's status."""
    if f.waiver is not None:
        return f"waived ({_STATUS_WORDS[f.waiver.original_status]})", "st-waived"
    return _STATUS_WORDS[f.status], f"st-{f.status.value.lower()}"


def _rows(report: Report) -> list[_Row]:
    rows: list[_Row] = []
    for _, group in by_severity(report):
        for f in group:
            status, css = _status(f)
            where = location(f)
            rows.append(_Row(
                anchor=f"finding-{len(rows) + 1}",
                finding=f,
                status=status,
                status_css=css,
                obj=f.resource or where or "—",
                message=_code_spans(f.message),
                message_text=_plain(f.message),
                where=where,
            ))
    return rows


def _reference(text: str) -> _Reference:
    href = text if text.startswith(_LINKABLE) and not any(c.isspace() for c in text) else None
    return _Reference(text, href)


def _blocks(rows: list[_Row], rules: dict[str, RuleOutcome]) -> list[_RuleBlock]:
    """The rows grouped by rule, in the order the summary table first shows each rule."""
    grouped: dict[str, list[_Row]] = {}
    for row in rows:
        grouped.setdefault(row.finding.rule_id, []).append(row)
    blocks: list[_RuleBlock] = []
    for rule_id, group in grouped.items():
        first = group[0].finding
        rule = rules.get(rule_id)
        blocks.append(_RuleBlock(
            anchor=f"rule-{rule_id}",
            rule_id=rule_id,
            title=first.title,
            severity=first.severity.value,
            rationale=_code_spans(rule.rationale if rule is not None else ""),
            remediation=_code_spans(first.remediation),
            references=tuple(_reference(r) for r in first.references),
            rows=tuple(group),
        ))
    return blocks


def _levels(report: Report, required: str | None, shown: set[str]) -> list[_Level]:
    return [
        _Level(
            name=lv.name,
            anchor=f"level-{lv.name}",
            description=lv.description,
            granted=lv.granted,
            required=lv.name == required,
            blockers=tuple(
                _Blocker(r, f"#rule-{r}" if r in shown else None, r in lv.unevaluated)
                for r in lv.blocking
            ),
        )
        for lv in report.certification.levels
    ]


def render(report: Report, *, required: str | None = None) -> str:
    """The report as one HTML document; ``required``, the level the scan was asked to reach."""
    cert = report.certification
    rows = _rows(report)
    rules = {r.id: r for r in report.rules}
    shown = {row.finding.rule_id for row in rows}
    levels = _levels(report, required, shown)
    reached = None
    if required is not None:
        reached = any(lv.granted for lv in levels if lv.name == required)
    per_severity = Counter(row.finding.severity for row in rows)
    sha = cert.image_sha512 or report.image.sha512
    template = environment("imageaudit.report").get_template("report.html")
    return template.render(
        report=report,
        cert=cert,
        sha=sha,
        sha_short=sha[:SHA_SHOWN] if sha else None,
        required=required,
        reached=reached,
        levels=levels,
        rows=rows,
        blocks=_blocks(rows, rules),
        unevaluated=[row for row in rows if row.finding.status is Status.ERROR],
        severities=[(s.value, per_severity.get(s, 0)) for s in SEVERITY_ORDER],
        counts=[(_STATUS_WORDS[Status(s)], s.lower(), n) for s, n in report.counts().items()],
        warnings=[_code_spans(w) for w in report.warnings],
        rules=sorted(report.rules, key=lambda r: r.id),
        rule_anchors={r: f"rule-{r}" for r in shown},
    )
