"""The image page's containment section: behind a posted token like campaigns, the sites' records
per site and incident (failed steps marked), every string a site sent escaped, and the sites
holding any version of the image with their copies and instances."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import httpx

from integrations.appdb.catalogue import Catalogue
from integrations.appdb.schemas import Holding
from integrations.appdb.sites import report_holdings, sites
from tests.appdb.helpers import ADMIN, live_server
from tests.appdb.test_campaign_api import auth
from tests.appdb.test_containment import NEW, OLD, OTHER, PATH, register, step

HOSTILE = '<img src=x onerror="alert(1)">'
ESCAPED = "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;"


class Page(HTMLParser):
    """What a page really holds: every start tag with its attributes, and the text of each
    cell of each table (by the table's attributes), as a browser would show it."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: list[tuple[dict[str, str | None], list[list[str]]]] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append((dict(attrs), []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag == "td":
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" / ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.tables[-1][1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def table(self, **attrs: str) -> list[list[str]]:
        """The body rows of the one table with ``attrs``."""
        [found] = [rows for a, rows in self.tables if all(a.get(k) == v
                                                          for k, v in attrs.items())]
        return [row for row in found if row]


def test_page_shows_records_escaped_and_the_sites_holding_the_image(
        catalogue: Catalogue) -> None:
    register(catalogue)
    operator, reader = auth(catalogue, "operator"), auth(catalogue, "reader")
    log: list[dict[str, Any]] = [
        step(1, "deactivate", "image", image=NEW, obj="glance-1",
             object={"kind": "image", "id": "glance-1", "name": "Debian " + HOSTILE,
                     "project": '"><script>alert(2)</script>'}),
        step(3, "pause", result="failed", reason="Conflict: " + HOSTILE,
             before={"status": HOSTILE}, after=None),
        step(2, "snapshot"),
        step(4, "stop", "instance", cloud="aws-east", incident="INC-43", obj="i-0abc",
             result="planned")]
    report_holdings(catalogue, "site-a", [Holding(sha512=NEW, copies=2, instances=3),
                                          Holding(sha512=OLD, copies=1, instances=4)], ADMIN)
    report_holdings(catalogue, "aws-east", [Holding(sha512=OLD, copies=1, instances=1),
                                            Holding(sha512=OTHER, copies=5, instances=9)], ADMIN)
    reported = sites(catalogue)[0].reported
    with live_server(catalogue) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.post(PATH, json={"records": log}, headers=operator).status_code == 201
        public = c.get("/images/img-a")
        assert public.status_code == 200
        assert '<form method="post" action="/images/img-a#containment" ' in public.text
        assert "glance-1" not in public.text and "aws-east" not in public.text

        r = c.post("/images/img-a", data={"token": "iac_wrong"})
        assert r.status_code == 401
        assert '<p class="error" id="error">a valid bearer token is required</p>' in r.text
        assert "glance-1" not in r.text
        r = c.post("/images/img-a", data={"token": reader["Authorization"].split()[1]})
        assert r.status_code == 200
        page = r.text
        empty = c.post("/images/img-b", data={"token": reader["Authorization"].split()[1]})
        assert '<p id="no-containment">' in empty.text
        assert Page(empty.text).table(id="holdings") == [
            ["aws-east", "1.0 (current)", OTHER[:16] + "…", "5", "9", reported]]

    # what a site sent is text on the page, never markup
    assert "<script>" not in page and "<img" not in page
    assert page.count(ESCAPED) == 2  # the name and the reason; the state holds it as JSON
    shown = Page(page)
    assert not any(t in ("script", "img") for t, _ in shown.tags)
    assert [(h["data-site"], h["data-incident"]) for t, h in shown.tags
            if t == "table" and h.get("class") == "containment"] == [
        ("aws-east", "INC-43"), ("site-a", "INC-42")]
    state = '{"status":"ACTIVE"}'
    assert shown.table(**{"data-site": "site-a", "data-incident": "INC-42"}) == [
        ["2026-12-04T17:03:01Z", f'image glance-1 / Debian {HOSTILE} / project '
         '"><script>alert(2)</script>', "deactivate", "done", "", f'{state} → '
         '{"status":"PAUSED"}', "operator"],
        ["2026-12-04T17:03:02Z", "server vm-1 / vm-1 name / project physics", "snapshot",
         "done", "", f'{state} → {{"status":"PAUSED"}}', "operator"],
        ["2026-12-04T17:03:03Z", "server vm-1 / vm-1 name / project physics", "pause",
         "failed", f"Conflict: {HOSTILE}", f'{{"status":{json.dumps(HOSTILE)}}} → —',
         "operator"]]
    assert shown.table(**{"data-site": "aws-east", "data-incident": "INC-43"}) == [
        ["2026-12-04T17:03:04Z", "instance i-0abc / i-0abc name / project physics", "stop",
         "planned", "", f'{state} → {{"status":"PAUSED"}}', "operator"]]
    # failed steps stand out: their row and their group's heading say so
    assert [h.get("class") for t, h in shown.tags if t == "tr" and "data-result" in h] == [
        "result-planned", "result-done", "result-done", "result-failed"]
    assert ('<h4 class="containment-group" data-site="site-a" data-incident="INC-42">Site '
            'site-a, incident INC-42 — <span class="error">1 failed step(s)</span></h4>') in page
    # both versions of img-a are held, the old one at two sites; img-b's file is not shown
    assert shown.table(id="holdings") == [
        ["aws-east", "1.0", OLD[:16] + "…", "1", "1", reported],
        ["site-a", "1.0", OLD[:16] + "…", "1", "4", reported],
        ["site-a", "2.0 (current)", NEW[:16] + "…", "2", "3", reported]]
    assert '<p id="site-totals">2 site(s), 4 copies, 8 instance(s) running.</p>' in page


def test_page_bounds_and_unknown_images(sqlite_catalogue: Catalogue) -> None:
    register(sqlite_catalogue)
    reader = auth(sqlite_catalogue, "reader")
    token = reader["Authorization"].split()[1]
    with live_server(sqlite_catalogue) as url, httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/images/img-a", content=b"token=" + b"x" * 70000,
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413
        assert "the form is larger than 65536 bytes" in r.text
        assert c.post("/images/nope", data={"token": token}).status_code == 404
        assert c.post(f"/images/{OLD}", data={"token": token}).status_code == 404
        r = c.get("/images/img-a")
        assert '<span class="reason" id="unlisted-reason">it has no report</span>' in r.text
