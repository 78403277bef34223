"""Markdown for CI job summaries (GitHub ``$GITHUB_STEP_SUMMARY``, GitLab, Gitea).

Those renderers accept inline HTML, so text outside code spans is escaped for both
Markdown and HTML; code spans are rendered literally by every renderer.
"""

from __future__ import annotations

import re

from imageaudit.findings import Report, code
from imageaudit.report.common import by_severity, split_code, status_label

# Enough to stop emphasis, links, tables, strike-through and code spans inside a line.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def escape(text: str) -> str:
    """Plain text made inert in Markdown and HTML."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def message(text: str) -> str:
    """A finding message: its code spans kept (re-fenced), the rest escaped."""
    return "".join(code(part) if is_code else escape(part) for is_code, part in split_code(text))


def render(report: Report) -> str:
    """The report as a Markdown summary: level first, then the levels, then the findings."""
    cert = report.certification
    counts = report.counts()
    out = [
        f"## imageaudit: {code(report.image.source)} certified **{escape(cert.level)}**",
        "",
        f"{counts['FAIL']} failed, {counts['ERROR']} could not be evaluated, "
        f"{counts['WAIVED']} waived, {counts['PASS']} passed, "
        f"{counts['NOT_APPLICABLE']} not applicable.",
        "",
        "| level | granted | blocked by |",
        "|---|---|---|",
    ]
    for level in cert.levels:
        blockers = ", ".join(code(r) for r in level.blocking) or "—"
        out.append(f"| {escape(level.name)} | {'yes' if level.granted else 'no'} | {blockers} |")
    out.append("")
    for severity, findings in by_severity(report):
        out += [f"### {severity.value.capitalize()} ({len(findings)})", ""]
        for f in findings:
            # the message names the object and where it was found
            out.append(f"- **{status_label(f)}** {code(f.rule_id)}: {message(f.message)}")
            if f.waiver is not None:
                out.append(f"  - waived by {escape(f.waiver.who)}: {escape(f.waiver.reason)}")
            else:
                out.append(f"  - fix: {message(f.remediation)}")
        out.append("")
    if report.warnings:
        out += ["### Warnings", ""] + [f"- {message(w)}" for w in report.warnings] + [""]
    out.append(
        f"<sub>rule set {code(cert.ruleset_version)}, imageaudit {escape(cert.tool_version)}, "
        f"issued {cert.issued}, expires {cert.expires}</sub>"
    )
    return "\n".join(out) + "\n"
