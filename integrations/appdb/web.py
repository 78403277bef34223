"""The operators' web page: images with level badges, expiry, suspension, findings; search.

Templates are Jinja2 with autoescape on for every template, so image strings (titles, paths,
finding messages: all attacker-controlled) are always escaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from integrations.appdb.catalogue import Catalogue, CatalogueError
from integrations.appdb.schemas import format_time

TEMPLATES = Path(__file__).resolve().parent / "templates"
PAGE_SIZE = 500
SEVERITY_ORDER = {"critical": 0, "high": 1, "moderate": 2, "low": 3, "info": 4}
STATUS_ORDER = {"FAIL": 0, "ERROR": 1, "WAIVED": 2, "PASS": 3, "NOT_APPLICABLE": 4}


def environment() -> Environment:
    """The Jinja2 environment (autoescape forced on, whatever the file extension)."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["time"] = lambda t: format_time(t) if t is not None else "—"
    return env


def add_web_routes(app: FastAPI, catalogue: Catalogue) -> None:
    """Mount ``/`` (image table, ``?q=`` search) and ``/images/{id}`` (findings)."""
    env = environment()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(q: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
        rows = catalogue.standings(search=q or None, limit=PAGE_SIZE)
        html = env.get_template("index.html").render(rows=rows, q=q or "", limit=PAGE_SIZE)
        return HTMLResponse(html)

    @app.get("/images/{image_id}", response_class=HTMLResponse, include_in_schema=False)
    def image_page(image_id: str) -> HTMLResponse:
        try:
            st = catalogue.standing(image_id)
        except CatalogueError:
            return HTMLResponse(env.get_template("missing.html").render(image_id=image_id),
                                status_code=404)
        report = catalogue.report_body(image_id)
        findings = sorted(report.get("findings", []) if report else [],
                          key=lambda f: (STATUS_ORDER.get(f.get("status"), 9),
                                         SEVERITY_ORDER.get(f.get("severity"), 9),
                                         str(f.get("rule_id"))))
        html = env.get_template("image.html").render(st=st, report=report, findings=findings)
        return HTMLResponse(html)
