"""Why an image is not listed, on SQLite and PostgreSQL: every image summary says it (suspended,
no report, an expired certification, a level below the VO's minimum), the image listing pages
with an offset, and a site's agent finds the withdrawn images through the client."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
from sqlalchemy import select

from imageaudit.cloud import site_client
from imageaudit.cloud.site_client import CatalogueCallError, WithdrawnImage, withdrawn_images
from integrations.appdb.catalogue import Catalogue
from integrations.appdb.db import Report, Version, utcnow
from integrations.appdb.imagelist import parse_imagelist
from integrations.appdb.listing import unlisted_reasons
from integrations.appdb.schemas import format_time
from tests.appdb.helpers import (
    ADMIN,
    add_auditor,
    image_entry,
    imagelist,
    live_server,
    sha512_of,
    store_report,
)
from tests.builders.reports import make_report

NAMES = ("listed", "suspended", "failed", "basic", "lapsed", "new")
SHA = {name: sha512_of(name) for name in NAMES}


def populate(cat: Catalogue) -> None:
    """img-listed is listed; each other image is not, for its own reason."""
    images = [image_entry(f"img-{name}", SHA[name], "strictvo" if name == "basic" else
                          "fedcloud", f"{name.title()} image") for name in NAMES]
    data = imagelist(images, dn="/CN=e", ca="/CN=c")
    cat.import_imagelist(parse_imagelist(data, ca_dir=None, now=utcnow()), ADMIN)
    cat.set_vo("strictvo", "standard", ADMIN)
    add_auditor(cat)
    for name, level in (("listed", "standard"), ("suspended", "standard"), ("failed", "none"),
                        ("basic", "basic")):
        store_report(cat, make_report(SHA[name], level))
    store_report(cat, make_report(SHA["lapsed"], "standard", issued=timedelta(days=-40),
                                  expires=timedelta(days=-10)))
    cat.suspend("img-suspended", "root password leaked", ADMIN)


def lapsed_at(cat: Catalogue) -> str:
    """When img-lapsed's report expired (it is no longer the image's report)."""
    assert cat.standing("img-lapsed").report_expires is None
    with cat.sessions() as s:
        return format_time(s.scalars(select(Report.expires).join(
            Version, Version.id == Report.version_id).where(
            Version.sha512 == SHA["lapsed"])).one())


def test_summaries_say_why_an_image_is_not_listed(catalogue: Catalogue) -> None:
    populate(catalogue)
    expired = lapsed_at(catalogue)
    with live_server(catalogue) as url, httpx.Client(base_url=url, timeout=30) as c:
        r = c.get("/api/v1/images")
        assert r.status_code == 200
        assert {x["image_id"]: (x["listed"], x["unlisted_reason"]) for x in r.json()} == {
            "img-listed": (True, None),
            "img-suspended": (False, "suspended: root password leaked"),
            "img-failed": (False, "its report grants no level (VO fedcloud's minimum is basic)"),
            "img-basic": (False, "level basic does not reach VO strictvo's minimum standard"),
            "img-lapsed": (False, f"its certification expired at {expired}"),
            "img-new": (False, "it has no report")}
        assert c.get("/api/v1/images/img-new").json()["unlisted_reason"] == "it has no report"
        # pages by image id: two at a time from the third
        r = c.get("/api/v1/images", params={"limit": 2, "offset": 2})
        assert [x["image_id"] for x in r.json()] == ["img-lapsed", "img-listed"]
        r = c.get("/api/v1/images", params={"limit": 2, "offset": 6})
        assert r.json() == []


def test_every_reason_that_holds_is_given() -> None:
    now = datetime(2026, 12, 4, tzinfo=UTC)
    assert unlisted_reasons(suspended=True, level="basic", levels=["basic", "standard"],
                            expires=now, minimum="standard", now=now,
                            suspension_reason="miner", vo="fedcloud") == [
        "suspended: miner", "its image list entry expired at 2026-12-04T00:00:00Z",
        "level basic does not reach VO fedcloud's minimum standard"]
    assert unlisted_reasons(suspended=False, level="none", levels=["basic"], expires=None,
                            minimum="none", now=now) == []
    assert unlisted_reasons(suspended=False, level=None, levels=[], expires=None,
                            minimum="none", now=now) == ["it has no report"]


@pytest.mark.parametrize("minimum", ["basic", "standard", "hardened"])
def test_listed_exactly_when_no_reason(sqlite_catalogue: Catalogue, minimum: str) -> None:
    populate(sqlite_catalogue)
    sqlite_catalogue.set_vo("fedcloud", minimum, ADMIN)
    for st in sqlite_catalogue.standings():
        assert st.listed is (st.unlisted_reason is None), st.image.identifier


def test_agent_finds_the_withdrawn_images_and_why(catalogue: Catalogue,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    populate(catalogue)
    expired = lapsed_at(catalogue)
    monkeypatch.setattr(site_client, "IMAGES_PAGE", 2)  # every page boundary is crossed
    with live_server(catalogue) as url:
        found = withdrawn_images(url)
        strict = withdrawn_images(url + "/", vo="strictvo")
        assert withdrawn_images(url, vo="novo") == []
    assert found[:1] == [WithdrawnImage(
        image_id="img-basic", vo="strictvo", sha512=SHA["basic"], title="Basic image",
        version="1.0", level="basic", suspended=False,
        reason="level basic does not reach VO strictvo's minimum standard")]
    assert [(w.image_id, w.vo, w.sha512, w.suspended, w.reason) for w in found] == [
        ("img-basic", "strictvo", SHA["basic"], False,
         "level basic does not reach VO strictvo's minimum standard"),
        ("img-failed", "fedcloud", SHA["failed"], False,
         "its report grants no level (VO fedcloud's minimum is basic)"),
        ("img-lapsed", "fedcloud", SHA["lapsed"], False,
         f"its certification expired at {expired}"),
        ("img-new", "fedcloud", SHA["new"], False, "it has no report"),
        ("img-suspended", "fedcloud", SHA["suspended"], True,
         "suspended: root password leaked")]
    assert strict == found[:1]


class Hostile(BaseHTTPRequestHandler):
    """A catalogue answering what ``Hostile.pages`` holds for the image listing."""

    pages: ClassVar[list[bytes]] = []

    def do_GET(self) -> None:
        body = self.pages[0] if self.pages else b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def entry(**changes: Any) -> dict[str, Any]:
    return {"image_id": "img-x", "vo": "fedcloud", "sha512": SHA["new"], "title": "X",
            "version": "1.0", "level": "none", "listed": False, "suspended": False,
            "unlisted_reason": "it has no report", **changes}


@pytest.mark.parametrize(("page", "message"), [
    (b"<html>", "the answer is not JSON"),
    (b'{"images": []}', "not a JSON list of at most 1000 images"),
    (json.dumps([entry(image_id="../../etc")]).encode(),
     "entry 0: image_id '../../etc' is not an image id"),
    (json.dumps([entry(sha512="ABC")]).encode(),
     "entry 0 (image img-x): sha512 is not 128 lowercase hex digits"),
    (json.dumps([entry(title="X\x1b[2J")]).encode(),
     "entry 0 (image img-x): title is longer than 1024 or has control characters"),
    (json.dumps([entry(listed="no")]).encode(),
     "entry 0 (image img-x): listed is missing or not true/false"),
    (json.dumps([entry(unlisted_reason=["x"])]).encode(),
     "entry 0 (image img-x): unlisted_reason is not a short text"),
])
def test_what_a_catalogue_answers_is_checked(page: bytes, message: str) -> None:
    Hostile.pages = [page]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(CatalogueCallError) as caught:
            withdrawn_images(url)
    finally:
        server.shutdown()
        server.server_close()
    assert str(caught.value) == (
        f"{url}/api/v1/images?limit=1000&offset=0: {message}")


def test_a_catalogue_before_the_reason_still_names_its_withdrawn_images() -> None:
    old = {k: v for k, v in entry().items() if k != "unlisted_reason"}
    Hostile.pages = [json.dumps([old, {**old, "image_id": "img-y", "listed": True}]).encode()]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        found = withdrawn_images(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert [(w.image_id, w.reason) for w in found] == [
        ("img-x", "not listed (the catalogue gives no reason)")]
