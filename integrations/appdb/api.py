"""The catalogue's HTTP service: JSON API under ``/api/v1`` and the operators' web page at ``/``.

Reads are public (sites sync image lists without credentials), except campaigns (which images
hold a vulnerable package or a known-bad file, and who endorsed them), the sites' holdings
(which site runs which image) and containment records (what a site did to which of its
objects, in which incident), which need a token of any role (reader and above); every write
needs a bearer token of the right role: auditor publishes reports, operator suspends, manages
VOs and image lists, saves and runs campaigns and stores a site's report of what it holds and
its containment logs, admin may do everything and create tokens. A client address that
presents wrong tokens ``auth_failures`` times within ``auth_window`` seconds gets 429 (with
Retry-After) for every authenticated call until the window has passed.

Absolute URLs in what the catalogue serves come from ``Settings.base_url`` or, without one, from
the address the server is bound to, never from the request's ``Host`` header (which anyone
may set). Every response carries ``X-Content-Type-Options``, ``X-Frame-Options`` and a
``Content-Security-Policy``.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from integrations.appdb import API_PREFIX, AUTH_FAILURES, AUTH_WINDOW, sites
from integrations.appdb.catalogue import Catalogue, CatalogueError, Principal
from integrations.appdb.containment_api import CONTAINMENT_PATTERN, add_containment_routes
from integrations.appdb.db import utcnow
from integrations.appdb.export import Signer, appdb_xml, build_imagelist, secant_xml
from integrations.appdb.imagelist import ImageListError, parse_imagelist
from integrations.appdb.ratelimit import AuthThrottle
from integrations.appdb.schemas import (
    IMAGE_ID_PATTERN,
    NAME_PATTERN,
    CampaignHit,
    CampaignInfo,
    CampaignQuery,
    CampaignRunResult,
    CampaignSaveRequest,
    Health,
    HoldingsReport,
    ImageSummary,
    ImportResult,
    PublishRequest,
    PublishResult,
    SiteInfo,
    SuspendRequest,
    TokenCreated,
    TokenRequest,
    VersionSummary,
    VoRequest,
    format_time,
    json_detail,
)

MAX_BODY = 16 * 1024 * 1024
# A site's report of 100,000 holdings is some 17 MB of JSON: its own route takes more.
MAX_HOLDINGS_BODY = 32 * 1024 * 1024
# A post of containment records (at most containment.MAX_RECORDS) takes less: a site's log is
# sent in parts (the client's batches stay well under it).
MAX_CONTAINMENT_BODY = 8 * 1024 * 1024
# The web page needs only its own inline style and same-origin links and forms.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
# The interactive API docs load Swagger UI from its CDN; the rest of the catalogue loads nothing.
DOCS_CSP = ("default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
            "style-src https://cdn.jsdelivr.net 'unsafe-inline'; img-src 'self' data: "
            "https://fastapi.tiangolo.com; connect-src 'self'; frame-ancestors 'none'")
LIST_CACHE_S = 10
MAX_IOC_BODY = 8 * 1024 * 1024
READERS = ("reader", "auditor", "operator")
ImageId = Annotated[str, PathParam(pattern=IMAGE_ID_PATTERN)]
VoName = Annotated[str, PathParam(pattern=NAME_PATTERN)]
CampaignRef = Annotated[str, PathParam(pattern=NAME_PATTERN)]
SiteName = Annotated[str, PathParam(pattern=NAME_PATTERN)]
CampaignFilter = Annotated[str | None, Query(max_length=1024)]


@dataclass(frozen=True, slots=True)
class Settings:
    """Service configuration."""

    base_url: str | None = None
    signer: Signer | None = None
    ca_dir: Path | None = None
    max_body: int = MAX_BODY
    name: str = "imageaudit catalogue"
    auth_failures: int = AUTH_FAILURES
    auth_window: float = AUTH_WINDOW
    feeds: Path | None = None  # the feed snapshot resolving campaigns' CVEs and OSV ids
    max_holdings_body: int = MAX_HOLDINGS_BODY  # PUT /sites/{site}/holdings
    max_containment_body: int = MAX_CONTAINMENT_BODY  # POST /images/{image_id}/containment
    page_size: int = 500  # images per page of the web page


class BodyLimit:
    """Refuse request bodies above ``limit`` bytes (413) whether or not Content-Length is sent;
    a path matching (from its start) a pattern of ``paths`` has that pattern's limit instead,
    the first that matches."""

    def __init__(self, app: ASGIApp, limit: int,
                 paths: tuple[tuple[str, int], ...] = ()) -> None:
        self.app, self.limit = app, limit
        self.paths = tuple((re.compile(pattern), n) for pattern, n in paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = next((n for pattern, n in self.paths if pattern.match(path)), self.limit)
        for key, value in scope.get("headers", ()):
            if key == b"content-length" and (not value.isdigit() or int(value) > limit):
                await _too_large(send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise _TooLarge()
            return msg

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _too_large(send)


class _TooLarge(HTTPException):
    """A body past the limit, found while it streams in. An HTTPException because FastAPI turns
    any other exception met while reading a JSON body into a 400 (it raises this one again);
    the handler of HTTPExceptions answers it as :func:`_too_large` does."""

    def __init__(self) -> None:
        super().__init__(413, "request body too large")


class SecurityHeaders:
    """``nosniff``, ``DENY`` framing and a Content-Security-Policy on every HTTP response."""

    def __init__(self, app: ASGIApp, docs_path: str) -> None:
        self.app, self.docs_path = app, docs_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope.get("path") == self.docs_path else CSP

        async def with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                headers = [(k, v) for k, v in msg.get("headers", ()) if k.lower() not in (
                    b"x-content-type-options", b"x-frame-options", b"content-security-policy")]
                headers += [(b"x-content-type-options", b"nosniff"),
                            (b"x-frame-options", b"DENY"),
                            (b"content-security-policy", csp.encode("ascii")),
                            (b"referrer-policy", b"no-referrer")]
                msg = {**msg, "headers": headers}
            await send(msg)

        await self.app(scope, receive, with_headers)


def bound_url(scope: Scope) -> str:
    """``http://HOST:PORT`` of the socket the request came in on (not its Host header)."""
    server = scope.get("server") or ("127.0.0.1", 80)
    host, port = server[0], server[1]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}" if port in (80, None) else f"http://{host}:{port}"


async def _too_large(send: Send) -> None:
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"detail":"request body too large"}'})


def create_app(catalogue: Catalogue, settings: Settings | None = None) -> FastAPI:
    """The ASGI application over ``catalogue``."""
    cfg = settings or Settings()
    app = FastAPI(title="imageaudit catalogue", version="1",
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=f"{API_PREFIX}/docs",
                  redoc_url=None)
    # Dependencies are bound as defaults, not in Annotated[], because the annotations here are
    # strings (PEP 563) that FastAPI resolves in module globals, where closures are not.
    bearer = HTTPBearer(auto_error=False)
    throttle = AuthThrottle(cfg.auth_failures, cfg.auth_window)

    def authorize(request: Request, token: str | None, roles: tuple[str, ...]) -> Principal:
        allowed = set(roles) | {"admin"}
        client = request.client.host if request.client else "unknown"
        wait = throttle.blocked(client)
        if wait:
            raise HTTPException(429, "too many failed authentications from this address; "
                                     f"try again in {wait} s",
                                headers={"Retry-After": str(wait)})
        who = catalogue.authenticate(token) if token is not None else None
        if who is None:
            if token is not None:
                throttle.failed(client)
            raise HTTPException(401, "a valid bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})
        if who.role not in allowed:
            raise HTTPException(403, f"role {who.role} may not do this; needs "
                                     f"{' or '.join(sorted(allowed))}")
        return who

    def require(*roles: str) -> Callable[..., Principal]:
        def dep(request: Request,
                cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:  # noqa: B008
            return authorize(request, cred.credentials if cred is not None else None, roles)

        return dep

    list_cache: dict[tuple[str, str, int, int], bytes] = {}
    as_auditor, as_operator, as_admin = require("auditor"), require("operator"), require("admin")
    as_reader = require(*READERS)

    @app.exception_handler(CatalogueError)
    async def _refused(_: Request, exc: CatalogueError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": json_detail(list(exc.errors()))}, status_code=422)

    def base(request: Request) -> str:
        return (cfg.base_url or bound_url(request.scope)).rstrip("/")

    def summary(st: Any) -> ImageSummary:
        return ImageSummary(
            image_id=st.image.identifier, title=st.version.title, vo=st.image.vo.name,
            version=st.version.version, sha512=st.version.sha512, level=st.level,
            report_expires=format_time(st.report_expires) if st.report_expires else None,
            listed=st.listed, suspended=st.suspension is not None,
            suspension_reason=st.suspension.reason if st.suspension else None,
            report_id=st.report_id, signer=st.signer, unlisted_reason=st.unlisted_reason)

    @app.get(f"{API_PREFIX}/health", response_model=Health)
    def health() -> Health:
        return Health(status="ok")

    async def publish(request: Request, req: PublishRequest, who: Principal,
                      image_id: str | None) -> JSONResponse:
        # The report exactly as sent (FastAPI has parsed and cached it): its canonical form is
        # what the id and the signature cover.
        raw = await request.json()
        report = raw.get("report") if isinstance(raw, dict) else None
        if not isinstance(report, dict):
            raise CatalogueError(422, "report is not a JSON object")
        result, created = await run_in_threadpool(catalogue.add_report, req, who, image_id,
                                                  report)
        return JSONResponse(result.model_dump(), status_code=201 if created else 200)

    @app.post(f"{API_PREFIX}/reports", response_model=PublishResult, status_code=201,
              responses={200: {"model": PublishResult}, 404: {}, 401: {}, 403: {}, 422: {},
                         429: {}})
    async def post_report(request: Request, req: PublishRequest,
                          who: Principal = Depends(as_auditor)) -> JSONResponse:  # noqa: B008
        return await publish(request, req, who, None)

    @app.post(f"{API_PREFIX}/images/{{image_id}}/reports", response_model=PublishResult,
              status_code=201, responses={200: {"model": PublishResult}, 404: {}, 409: {},
                                          422: {}, 429: {}})
    async def post_image_report(request: Request, image_id: ImageId, req: PublishRequest,
                                who: Principal = Depends(as_auditor)) -> JSONResponse:  # noqa: B008
        return await publish(request, req, who, image_id)

    @app.get(f"{API_PREFIX}/images", response_model=list[ImageSummary])
    def list_images(vo: Annotated[str | None, Query(max_length=63)] = None,
                    q: Annotated[str | None, Query(max_length=200)] = None,
                    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
                    offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> list[ImageSummary]:
        # By image identifier, paged with an offset like the version listing.
        return [summary(st) for st in catalogue.standings(vo=vo, search=q, limit=limit,
                                                          offset=offset)]

    @app.get(f"{API_PREFIX}/versions", response_model=list[VersionSummary])
    def list_versions(vo: Annotated[str | None, Query(max_length=63)] = None,
                      limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
                      offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> list[VersionSummary]:
        # Every registered image file, current or not: what a batch audit of the catalogue
        # fetches. Paged like the image listing, with an offset for the next page.
        return catalogue.versions(vo=vo, limit=limit, offset=offset)

    @app.get(f"{API_PREFIX}/images/{{image_id}}", response_model=ImageSummary,
             responses={404: {}})
    def get_image(image_id: ImageId) -> ImageSummary:
        return summary(catalogue.standing(image_id))

    @app.get(f"{API_PREFIX}/images/{{image_id}}/report", responses={404: {}})
    def get_report(image_id: ImageId) -> dict[str, Any]:
        body = catalogue.report_body(image_id)
        if body is None:
            raise CatalogueError(404, f"image {image_id} has no unexpired report")
        return body

    def legacy(image_id: str, render: Callable[..., bytes]) -> Response:
        st = catalogue.standing(image_id)
        body = catalogue.report_body(image_id)
        if body is None:
            raise CatalogueError(404, f"image {image_id} has no unexpired report")
        return Response(render(st, body, catalogue.default_min_level),
                        media_type="application/xml")

    @app.get(f"{API_PREFIX}/images/{{image_id}}/security.xml", responses={404: {}},
             response_class=Response)
    def appdb_report(image_id: ImageId) -> Response:
        return legacy(image_id, appdb_xml)

    @app.get(f"{API_PREFIX}/images/{{image_id}}/secant.xml", responses={404: {}},
             response_class=Response)
    def secant_report(image_id: ImageId) -> Response:
        return legacy(image_id, secant_xml)

    @app.post(f"{API_PREFIX}/images/{{image_id}}/suspension", responses={404: {}})
    def suspend(image_id: ImageId, req: SuspendRequest,
                who: Principal = Depends(as_operator)) -> ImageSummary:  # noqa: B008
        catalogue.suspend(image_id, req.reason, who)
        return summary(catalogue.standing(image_id))

    @app.delete(f"{API_PREFIX}/images/{{image_id}}/suspension", responses={404: {}})
    def unsuspend(image_id: ImageId,
                  who: Principal = Depends(as_operator)) -> ImageSummary:  # noqa: B008
        catalogue.unsuspend(image_id, who)
        return summary(catalogue.standing(image_id))

    @app.put(f"{API_PREFIX}/vos/{{vo}}")
    def put_vo(vo: VoName, req: VoRequest,
               who: Principal = Depends(as_operator)) -> dict[str, Any]:  # noqa: B008
        row = catalogue.set_vo(vo, req.min_level, who)
        return {"vo": row.name, "min_level": row.min_level or catalogue.default_min_level}

    @app.get(f"{API_PREFIX}/vos/{{vo}}/image.list", response_class=Response, responses={404: {}})
    def image_list(vo: VoName, request: Request) -> Response:
        # Sites poll lists far more often than anything changes: reuse a rendering while no
        # change was made (every change adds an audit-log row) and for at most LIST_CACHE_S,
        # which bounds how late a certification expiry shows.
        now = utcnow()
        key = (vo, base(request), catalogue.change_mark(), int(now.timestamp()) // LIST_CACHE_S)
        cached = list_cache.get(key)
        if cached is None:
            vo_list = catalogue.vo_list(vo)
            if vo_list is None:
                raise CatalogueError(404, f"no VO {vo}")
            listed = [st for st in catalogue.standings(vo=vo) if st.listed]
            ident = cfg.signer.identity if cfg.signer else None
            cached = build_imagelist(vo_list, listed, base_url=base(request), now=now,
                                     signer=ident, catalogue_name=cfg.name)
            if cfg.signer is not None:
                cached = cfg.signer.sign(cached)
            if len(list_cache) > 256:
                list_cache.clear()
            list_cache[key] = cached
        if cfg.signer is None:
            return Response(cached, media_type="application/json")
        return Response(cached, media_type="text/plain; charset=utf-8")

    @app.post(f"{API_PREFIX}/tokens", response_model=TokenCreated, status_code=201)
    def create_token(req: TokenRequest,
                     who: Principal = Depends(as_admin)) -> TokenCreated:  # noqa: B008
        return TokenCreated(name=req.name, role=req.role,
                            token=catalogue.create_token(req.name, req.role, who))

    @app.post(f"{API_PREFIX}/imagelists", response_model=ImportResult, status_code=201,
              responses={422: {}}, openapi_extra={"requestBody": {"required": True, "content": {
                  "text/plain": {"schema": {"type": "string"}}}}})
    async def import_list(request: Request,
                          who: Principal = Depends(as_operator)) -> ImportResult:  # noqa: B008
        data = await request.body()

        def work() -> ImportResult:
            try:
                il = parse_imagelist(data, ca_dir=cfg.ca_dir, now=utcnow())
            except ImageListError as exc:
                raise CatalogueError(422, f"image list refused: {exc}") from exc
            return catalogue.import_imagelist(il, who)

        return await run_in_threadpool(work)

    # --- campaigns ----------------------------------------------------------------------

    def campaign_query(**filters: Any) -> CampaignQuery:
        try:
            return CampaignQuery(**filters)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from exc

    def hits(result: Any) -> JSONResponse:
        return JSONResponse([h.to_json() for h in result.hits])

    def run_result(outcome: Any, status: int) -> JSONResponse:
        return JSONResponse({"campaign": outcome.campaign.model_dump(),
                             "affected": [h.to_json() for h in outcome.result.hits],
                             "newly_affected": [h.to_json() for h in outcome.new]},
                            status_code=status)

    campaign_errors: dict[int | str, dict[str, Any]] = {
        401: {}, 403: {}, 404: {}, 409: {}, 422: {}, 429: {}}

    @app.get(f"{API_PREFIX}/campaigns", response_model=list[CampaignHit],
             responses=campaign_errors)
    def query_campaign(package: CampaignFilter = None, affected: CampaignFilter = None,
                       cve: CampaignFilter = None, osv_id: CampaignFilter = None,
                       endorser_dn: CampaignFilter = None,
                       who: Principal = Depends(as_reader)) -> JSONResponse:  # noqa: B008
        from integrations.appdb.campaigns import run_query

        query = campaign_query(package=package, affected=affected, cve=cve, osv_id=osv_id,
                               endorser_dn=endorser_dn)
        return hits(run_query(catalogue, query, feeds=cfg.feeds))

    @app.post(f"{API_PREFIX}/campaigns/ioc", response_model=list[CampaignHit],
              responses={**campaign_errors, 413: {}}, openapi_extra={"requestBody": {
                  "required": True, "content": {"application/octet-stream": {
                      "schema": {"type": "string", "format": "binary"}}}}})
    async def ioc_campaign(request: Request, package: CampaignFilter = None,
                           affected: CampaignFilter = None, cve: CampaignFilter = None,
                           osv_id: CampaignFilter = None, endorser_dn: CampaignFilter = None,
                           only_to_ids: bool = False,
                           who: Principal = Depends(as_reader)) -> JSONResponse:  # noqa: B008
        from integrations.appdb.campaigns import read_indicator_file, run_query

        data = await request.body()
        if len(data) > MAX_IOC_BODY:
            raise CatalogueError(413, f"an indicator file is at most {MAX_IOC_BODY} bytes")

        def work() -> JSONResponse:
            with tempfile.TemporaryDirectory(prefix="imageaudit-ioc-") as tmp:
                path = Path(tmp) / "indicators"
                path.write_bytes(data)
                ioc, _ = read_indicator_file(path, only_to_ids=only_to_ids,
                                             shown_as="the indicator file")
            query = campaign_query(package=package, affected=affected, cve=cve, osv_id=osv_id,
                                   endorser_dn=endorser_dn, ioc=ioc)
            return hits(run_query(catalogue, query, feeds=cfg.feeds))

        return await run_in_threadpool(work)

    @app.post(f"{API_PREFIX}/campaigns", response_model=CampaignRunResult, status_code=201,
              responses=campaign_errors)
    def save_campaign(req: CampaignSaveRequest,
                      who: Principal = Depends(as_operator)) -> JSONResponse:  # noqa: B008
        from integrations.appdb import campaigns

        outcome = campaigns.save_campaign(catalogue, req.name, req.query, who, feeds=cfg.feeds)
        return run_result(outcome, 201)

    @app.get(f"{API_PREFIX}/campaigns/saved", response_model=list[CampaignInfo],
             responses=campaign_errors)
    def saved_campaigns(who: Principal = Depends(as_reader)) -> list[CampaignInfo]:  # noqa: B008
        from integrations.appdb.campaigns import campaigns

        return campaigns(catalogue)

    @app.get(f"{API_PREFIX}/campaigns/saved/{{campaign}}", response_model=CampaignInfo,
             responses=campaign_errors)
    def saved_campaign(campaign: CampaignRef,
                       who: Principal = Depends(as_reader)) -> CampaignInfo:  # noqa: B008
        from integrations.appdb import campaigns

        return campaigns.campaign(catalogue, campaign)

    @app.post(f"{API_PREFIX}/campaigns/saved/{{campaign}}/runs", response_model=CampaignRunResult,
              responses=campaign_errors)
    def run_campaign(campaign: CampaignRef,
                     who: Principal = Depends(as_operator)) -> JSONResponse:  # noqa: B008
        from integrations.appdb import campaigns

        return run_result(campaigns.run_campaign(catalogue, campaign, who, feeds=cfg.feeds), 200)

    # --- sites --------------------------------------------------------------------------

    @app.put(f"{API_PREFIX}/sites/{{site}}/holdings", response_model=SiteInfo,
             responses={401: {}, 403: {}, 409: {}, 413: {}, 422: {}, 429: {}})
    def put_holdings(site: SiteName, req: HoldingsReport,
                     who: Principal = Depends(as_operator)) -> SiteInfo:  # noqa: B008
        # The site's whole report: what it held before and leaves out is no longer held.
        return sites.report_holdings(catalogue, site, req.holdings, who)

    @app.get(f"{API_PREFIX}/sites", response_model=list[SiteInfo],
             responses={401: {}, 403: {}, 429: {}})
    def list_sites(who: Principal = Depends(as_reader)) -> list[SiteInfo]:  # noqa: B008
        return sites.sites(catalogue)

    add_containment_routes(app, catalogue, operator=as_operator, reader=as_reader)

    from integrations.appdb.web import add_web_routes

    add_web_routes(app, catalogue, reader=lambda request, token: authorize(request, token,
                                                                           READERS),
                   feeds=cfg.feeds, page_size=cfg.page_size)
    app.add_middleware(BodyLimit, limit=cfg.max_body,
                       paths=((re.escape(f"{API_PREFIX}/sites/"), cfg.max_holdings_body),
                              (CONTAINMENT_PATTERN, cfg.max_containment_body)))
    app.add_middleware(SecurityHeaders, docs_path=f"{API_PREFIX}/docs")
    return app
