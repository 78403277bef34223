"""Output formats: each module turns a finished :class:`~imageaudit.findings.Report` into text.

Every string that came from the image was made printable by the engine; each format escapes
it again for its own syntax (HTML entities, XML, Markdown, terminal markup).
"""

from __future__ import annotations

import importlib

from imageaudit.findings import Report

# format name -> module under imageaudit.report defining ``render(report) -> str``
FORMATS: dict[str, str] = {
    "json": "json_report",
    "sarif": "sarif",
    "junit": "junit",
    "markdown": "markdown",
    "text": "text",
    "html": "html",
}

# SBOM formats written by :mod:`imageaudit.report.sbom` (from the facts, not the report).
SBOM_FORMATS = ("cyclonedx-json",)


def render(report: Report, fmt: str) -> str:
    """The report in format ``fmt`` (one of :data:`FORMATS`)."""
    try:
        module = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown report format {fmt!r} (known: {', '.join(FORMATS)})") from None
    renderer = importlib.import_module(f"imageaudit.report.{module}")
    text: str = renderer.render(report)
    return text


__all__ = ["FORMATS", "SBOM_FORMATS", "render"]
