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

# Formats that show the level the scan was asked to reach beside the level reached.
SHOWS_REQUIRED = frozenset({"html"})

# SBOM formats written by :mod:`imageaudit.report.sbom` (from the facts, not the report).
SBOM_FORMATS = ("cyclonedx-json",)


def render(report: Report, fmt: str, *, required: str | None = None) -> str:
    """The report in format ``fmt`` (one of :data:`FORMATS`); ``required``, the level asked for
    (``--require``), shown by the formats in :data:`SHOWS_REQUIRED`."""
    try:
        module = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown report format {fmt!r} (known: {', '.join(FORMATS)})") from None
    renderer = importlib.import_module(f"imageaudit.report.{module}")
    text: str = (
        renderer.render(report, required=required)
        if fmt in SHOWS_REQUIRED
        else renderer.render(report)
    )
    return text


__all__ = ["FORMATS", "SBOM_FORMATS", "SHOWS_REQUIRED", "render"]
