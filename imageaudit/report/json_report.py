"""JSON: the report as data, in the shape of the shipped schema ``schemas/report-1.json``."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from imageaudit.findings import Report

SCHEMA_RESOURCE = "report-1.json"


def report_schema() -> dict[str, Any]:
    """The JSON Schema of the report (versioned with ``Report.schema``)."""
    text = resources.files("imageaudit.schemas").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def render(report: Report) -> str:
    """The report as indented JSON (UTF-8 text, keys in a stable order)."""
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
