"""The operators' web page: images with level badges, their state (never audited, could not be
audited, below the VO's minimum, listed...: ``listing.py``'s), the VO's minimum, the last scan
and why an image is not listed (the API's reason); filters by VO, level and state as query
parameters; findings; search; and the security team's campaign search (``/campaigns``).

Templates are Jinja2 with autoescape on for every template, so image strings (titles, paths,
finding messages: all attacker-controlled) are always escaped; so are the sites' containment
logs (object names, reasons, states: what a site's agent read from its cloud).

Campaigns name endorsers and the images that are vulnerable, so, as in the API, they need a
token of any role: the form posts it with the filters (never in a URL, where it would stay in
logs and history) and the page never shows it back. An image page's containment records and
the sites holding the image (which site runs it, what it did to which of its objects) need one
the same way: the page's form posts it to the image page, which answers with them.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from imageaudit.store import canonical_json
from integrations.appdb import containment, listing, overview, sites
from integrations.appdb.catalogue import Catalogue, CatalogueError
from integrations.appdb.db import utcnow
from integrations.appdb.principal import Principal
from integrations.appdb.schemas import error_sentence, format_time

TEMPLATES = Path(__file__).resolve().parent / "templates"
PAGE_SIZE = 500
CAMPAIGN_ROWS = 2000
CONTAINMENT_ROWS = 5000
MAX_FORM = 64 * 1024
CAMPAIGN_FIELDS = ("package", "affected", "cve", "osv_id", "endorser_dn")
SEVERITY_ORDER = {"critical": 0, "high": 1, "moderate": 2, "low": 3, "info": 4}
STATUS_ORDER = {"FAIL": 0, "ERROR": 1, "WAIVED": 2, "PASS": 3, "NOT_APPLICABLE": 4}
# The page's words for the listing states (listing.STATES), in the filter's order.
STATE_LABELS = {
    listing.LISTED: "listed",
    listing.SUSPENDED: "suspended",
    listing.BELOW_MINIMUM: "below the VO's minimum",
    listing.INCOMPLETE: "could not be audited",
    listing.NEVER_AUDITED_STATE: "never audited",
    listing.CERTIFICATION_EXPIRED: "certification expired",
    listing.UNLISTED: "not listed",
}


def environment() -> Environment:
    """The Jinja2 environment (autoescape forced on, whatever the file extension)."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["time"] = lambda t: format_time(t) if t is not None else "—"
    env.filters["state"] = lambda s: canonical_json(s) if s is not None else "—"
    env.filters["ago"] = overview.ago
    env.globals["state_labels"] = STATE_LABELS
    return env


def form_token(body: bytes) -> str | None:
    """The ``token`` field of a posted form (the first of at most 16 fields), or None."""
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=16)
    return (form.get("token") or [""])[0].strip() or None


def by_site_and_incident(entries: list[containment.ContainmentEntry],
                         ) -> list[tuple[str, str, list[containment.ContainmentEntry]]]:
    """Records grouped per site and incident (sorted by both), each group in time order."""
    groups: dict[tuple[str, str], list[containment.ContainmentEntry]] = {}
    for e in entries:
        groups.setdefault((e.cloud, e.incident), []).append(e)
    return [(site, incident, rows) for (site, incident), rows in sorted(groups.items())]


def add_web_routes(app: FastAPI, catalogue: Catalogue, *,
                   reader: Callable[[Request, str | None], Principal] | None = None,
                   feeds: Path | None = None, page_size: int = PAGE_SIZE) -> None:
    """Mount ``/`` (image table: ``?q=`` search, ``vo``, ``level``, ``state`` filters and an
    ``offset`` for the next page), ``/images/{id}`` (findings) and
    ``/campaigns`` (a form; results for a token ``reader`` accepts, or raises HTTPException
    about)."""
    env = environment()

    def campaign_page(fields: dict[str, str], status: int = 200, error: str | None = None,
                      result: Any = None) -> HTMLResponse:
        from integrations.appdb.campaign_output import describe_item

        env.globals["describe"] = describe_item
        html = env.get_template("campaigns.html").render(
            fields=fields, error=error, result=result, limit=CAMPAIGN_ROWS,
            hits=result.hits[:CAMPAIGN_ROWS] if result is not None else ())
        return HTMLResponse(html, status_code=status)

    @app.get("/campaigns", response_class=HTMLResponse, include_in_schema=False)
    def campaigns_form() -> HTMLResponse:
        return campaign_page(dict.fromkeys(CAMPAIGN_FIELDS, ""))

    @app.post("/campaigns", response_class=HTMLResponse, include_in_schema=False)
    async def campaigns_search(request: Request) -> HTMLResponse:
        from integrations.appdb.campaigns import run_query
        from integrations.appdb.schemas import CampaignQuery

        body = await request.body()
        fields = dict.fromkeys(CAMPAIGN_FIELDS, "")
        if len(body) > MAX_FORM:
            return campaign_page(fields, 413, f"the form is larger than {MAX_FORM} bytes")
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=16)
        fields.update({k: form[k][0].strip()[:1024] for k in CAMPAIGN_FIELDS if form.get(k)})
        token = form_token(body)
        if reader is None:
            return campaign_page(fields, 403, "campaigns are not served here")
        try:
            reader(request, token)
        except HTTPException as exc:
            return campaign_page(fields, exc.status_code, str(exc.detail))
        try:
            query = CampaignQuery.model_validate({k: v or None for k, v in fields.items()})
        except ValidationError as exc:
            return campaign_page(fields, 422, error_sentence(exc.errors()))
        try:
            result = await run_in_threadpool(run_query, catalogue, query, feeds=feeds)
        except CatalogueError as exc:
            return campaign_page(fields, exc.status, exc.message)
        return campaign_page(fields, result=result)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(q: Annotated[str, Query(max_length=200)] = "",
              vo: Annotated[str, Query(max_length=255)] = "",
              level: Annotated[str, Query(max_length=64)] = "",
              state: Annotated[str, Query(max_length=64)] = "",
              offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> HTMLResponse:
        f = overview.Filters(q=q.strip(), vo=vo.strip(), level=level.strip(),
                             state=state.strip(), offset=offset)
        vo_infos, levels = overview.vos(catalogue), overview.level_names(catalogue)
        page = {"f": f, "vos": vo_infos, "levels": levels, "states": STATE_LABELS,
                "now": utcnow(), "limit": page_size}
        error = (f"no level {f.level!r} (levels: {', '.join(levels)})"
                 if f.level and f.level not in levels else
                 f"no state {f.state!r} (states: {', '.join(STATE_LABELS)})"
                 if f.state and f.state not in STATE_LABELS else None)
        if error is not None:
            html = env.get_template("index.html").render(rows=[], more=False, error=error, **page)
            return HTMLResponse(html, status_code=400)
        found = catalogue.standings(vo=f.vo or None, search=f.q or None,
                                    limit=None if f.narrowing else page_size + 1,
                                    offset=0 if f.narrowing else f.offset)
        if f.narrowing:  # level and state come from each standing: filtered here, then paged
            rows = overview.select_rows(overview.page_rows(catalogue, found), f)
            total: int | None = len(rows)
            rows = rows[f.offset:f.offset + page_size + 1]
        else:
            rows, total = overview.page_rows(catalogue, found), None
        html = env.get_template("index.html").render(
            rows=rows[:page_size], more=len(rows) > page_size, total=total, **page)
        return HTMLResponse(html)

    def image_page(image_id: str, status: int = 200, **restricted: Any) -> HTMLResponse:
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
        row = overview.page_rows(catalogue, [st])[0]
        html = env.get_template("image.html").render(st=st, row=row, report=report,
                                                      findings=findings, now=utcnow(),
                                                      **restricted)
        return HTMLResponse(html, status_code=status)

    @app.get("/images/{image_id}", response_class=HTMLResponse, include_in_schema=False)
    def image_public(image_id: str) -> HTMLResponse:
        return image_page(image_id)

    @app.post("/images/{image_id}", response_class=HTMLResponse, include_in_schema=False)
    async def image_with_containment(image_id: str, request: Request) -> HTMLResponse:
        body = await request.body()

        def work() -> HTMLResponse:
            if len(body) > MAX_FORM:
                return image_page(image_id, 413,
                                  error=f"the form is larger than {MAX_FORM} bytes")
            if reader is None:
                return image_page(image_id, 403,
                                  error="containment records are not served here")
            try:
                reader(request, form_token(body))
            except HTTPException as exc:
                return image_page(image_id, exc.status_code, error=str(exc.detail))
            try:
                _, entries = containment.records(catalogue, image_id,
                                                 limit=CONTAINMENT_ROWS + 1)
                held = sites.image_holdings(catalogue, image_id)
            except CatalogueError:
                return image_page(image_id)  # not an image (a SHA-512): the page says so
            return image_page(image_id, shown=True, held=held,
                              groups=by_site_and_incident(entries[:CONTAINMENT_ROWS]),
                              more=len(entries) > CONTAINMENT_ROWS, limit=CONTAINMENT_ROWS)

        return await run_in_threadpool(work)
