"""The human summary (rich): the level first, then findings grouped by severity.

The CLI prints it to stderr with :func:`print_report`; :func:`render` gives the same text
without colours. Image strings are ``rich.text.Text`` content, never markup.
"""

from __future__ import annotations

import io

from rich.console import Console, Group, RenderableType
from rich.text import Text

from imageaudit.findings import Report
from imageaudit.model import Severity
from imageaudit.report.common import by_severity, split_code, status_label

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MODERATE: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def _message(text: str) -> Text:
    out = Text()
    for is_code, part in split_code(text):
        out.append(part, style="bold" if is_code else "")
    return out


def scope_lines(report: Report) -> list[str]:
    """What the audit left out or changed, one line each (none for a full audit)."""
    scope = report.certification.scope
    if scope is None:
        return []
    lines = []
    if scope.skipped_rules:
        lines.append(f"not evaluated (left out): {', '.join(scope.skipped_rules)}")
    globs = [*scope.skipped_dirs, *scope.skipped_files]
    if globs:
        lines.append(f"skipped paths: {', '.join(globs)} ({scope.dropped_findings} findings "
                     "dropped)")
    if scope.tailoring:
        lines.append(f"rules tailored: {scope.tailoring}")
    return lines


def summary(report: Report) -> RenderableType:
    """The summary as a rich renderable."""
    cert = report.certification
    parts: list[RenderableType] = []
    head = Text("Level: ", style="bold")
    head.append(cert.level.upper(), style="bold green" if cert.level != "none" else "bold red")
    head.append(f"   {report.image.source}")
    parts.append(head)
    for level in cert.levels:
        line = Text(f"  {'✔' if level.granted else '✘'} {level.name}")
        if level.blocking:
            line.append(f"  blocked by: {', '.join(level.blocking)}", style="dim")
        parts.append(line)
    parts.extend(Text(f"  {line}", style="yellow") for line in scope_lines(report))
    for severity, findings in by_severity(report):
        parts.append(Text(""))
        parts.append(
            Text(f" {severity.value.upper()} ({len(findings)}) ", SEVERITY_STYLE[severity])
        )
        for f in findings:
            line = Text(f"  {status_label(f):<14} {f.rule_id}  ")
            line.append_text(_message(f.message))
            parts.append(line)
            if f.waiver is not None:
                parts.append(Text(f"      waived by {f.waiver.who}: {f.waiver.reason}", "dim"))
            else:
                parts.append(Text(f"      fix: {f.remediation}", style="dim"))
    counts = report.counts()
    parts.append(Text(""))
    parts.append(
        Text(
            f"{counts['FAIL']} failed, {counts['ERROR']} could not be evaluated, "
            f"{counts['WAIVED']} waived, {counts['PASS']} passed, "
            f"{counts['NOT_APPLICABLE']} not applicable; certificate expires {cert.expires}"
        )
    )
    for warning in report.warnings:
        parts.append(Text("warning: ", style="yellow").append_text(_message(warning)))
    for err in report.collector_errors:
        where = f" ({err.path})" if err.path else ""
        parts.append(Text(f"collector {err.collector}{where}: {err.message}", style="yellow"))
    return Group(*parts)


def print_report(report: Report, console: Console) -> None:
    """Print the summary on ``console`` (the CLI's stderr console)."""
    console.print(summary(report), soft_wrap=True)


def render(report: Report) -> str:
    """The summary as plain text, without colours."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, color_system=None, force_terminal=False)
    print_report(report, console)
    return buffer.getvalue()
