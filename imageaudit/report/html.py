"""One self-contained HTML page: level badge, levels, findings by severity, rules.

No scripts, no external resources (a Content-Security-Policy forbids loading any), every
string escaped with :func:`html.escape`, including rule text.
"""

from __future__ import annotations

from html import escape

from imageaudit.findings import Finding, Report
from imageaudit.report.common import by_severity, location, split_code, status_label

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}
.badge{display:inline-block;padding:.4em 1em;border-radius:1em;font-weight:bold;
 font-size:1.4em;color:#fff;background:#2e7d32}
.badge.level-none{background:#c62828}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
.finding{border-left:.4em solid #999;margin:.8em 0;padding:.3em .8em;background:#fafafa}
.status-FAIL{border-color:#c62828}.status-ERROR{border-color:#6a1b9a}
.status-WAIVED{border-color:#9e9e9e}
.sev-critical h2{color:#b71c1c}.sev-high h2{color:#c62828}.sev-moderate h2{color:#ef6c00}
code{background:#eee;padding:0 .2em}dl{margin:.3em 0}dt{font-weight:bold}dd{margin-left:1em}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _message(text: str) -> str:
    return "".join(
        f"<code>{_e(part)}</code>" if is_code else _e(part) for is_code, part in split_code(text)
    )


def _finding(f: Finding) -> str:
    rows = []
    where = location(f)
    if f.resource is not None:
        rows.append(("resource", f"<code>{_e(f.resource)}</code>"))
    if where:
        rows.append(("where", f"<code>{_e(where)}</code>"))
    if f.evidence.observed is not None:
        rows.append(("observed", f"<code>{_e(f.evidence.observed)}</code>"))
    if f.evidence.expected is not None:
        rows.append(("expected", _e(f.evidence.expected)))
    if f.waiver is not None:
        w = f.waiver
        rows.append(("waived", f"by {_e(w.who)} until {_e(w.expires)}: {_e(w.reason)}"))
    rows.append(("remediation", _message(f.remediation)))
    if f.references:
        rows.append(("references", "<br>".join(_e(r) for r in f.references)))
    details = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return (
        f'<article class="finding status-{_e(f.status.value)}" data-rule="{_e(f.rule_id)}">'
        f"<p><strong>{_e(status_label(f))}</strong> <code>{_e(f.rule_id)}</code> "
        f'{_e(f.title)}</p><p class="message">{_message(f.message)}</p>'
        f"<dl>{details}</dl></article>"
    )


def render(report: Report) -> str:
    """The report as one HTML document."""
    cert = report.certification
    counts = report.counts()
    levels = "".join(
        f"<tr><td>{_e(lv.name)}</td><td>{'granted' if lv.granted else 'not granted'}</td>"
        f"<td>{_e(', '.join(lv.blocking)) or '—'}</td></tr>"
        for lv in cert.levels
    )
    sections = "".join(
        f'<section class="sev-{sev.value}"><h2>{_e(sev.value.capitalize())} ({len(group)})</h2>'
        + "".join(_finding(f) for f in group)
        + "</section>"
        for sev, group in by_severity(report)
    )
    rules = "".join(
        f"<tr><td><code>{_e(r.id)}</code></td><td>{_e(r.status.value)}</td>"
        f"<td>{_e(r.severity.value)}</td><td>{_e(r.category.value)}</td><td>{_e(r.title)}</td></tr>"
        for r in report.rules
    )
    warnings = "".join(f"<li>{_message(w)}</li>" for w in report.warnings)
    errors = "".join(
        f"<li><code>{_e(e.collector)}</code> {_e(e.path or '')}: {_e(e.message)}</li>"
        for e in report.collector_errors
    )
    summary = ", ".join(f"{n} {_e(s)}" for s, n in counts.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="referrer" content="no-referrer">
<title>imageaudit: {_e(report.image.source)}</title><style>{CSS}</style></head>
<body>
<h1>imageaudit report</h1>
<p><span id="level-badge" class="badge level-{_e(cert.level)}">{_e(cert.level)}</span></p>
<table>
<tr><th>image</th><td><code>{_e(report.image.source)}</code> ({_e(report.image.kind)},
 {_e(report.image.format)})</td></tr>
<tr><th>SHA-512</th><td><code>{_e(cert.image_sha512 or "n/a")}</code></td></tr>
<tr><th>size</th><td>{_e(cert.image_size if cert.image_size is not None else "n/a")}</td></tr>
<tr><th>rule set</th><td><code>{_e(cert.ruleset_version)}</code></td></tr>
<tr><th>tool</th><td>imageaudit {_e(cert.tool_version)}</td></tr>
<tr><th>issued</th><td>{_e(cert.issued)}</td></tr>
<tr><th>expires</th><td>{_e(cert.expires)}</td></tr>
<tr><th>findings</th><td>{summary}</td></tr>
</table>
<h2>Levels</h2>
<table><tr><th>level</th><th>result</th><th>blocked by</th></tr>{levels}</table>
<div id="findings">{sections}</div>
{f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else ""}
{f"<h2>Collector errors</h2><ul>{errors}</ul>" if errors else ""}
<h2>Rules</h2>
<table><tr><th>rule</th><th>status</th><th>severity</th><th>category</th><th>title</th></tr>
{rules}</table>
</body></html>
"""
