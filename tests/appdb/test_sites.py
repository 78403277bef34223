"""Sites' holdings on SQLite and PostgreSQL: a site's report stored by an operator over HTTP,
each report replacing the site's previous one whole, the bounds of a report, the listing of
sites, and campaigns naming the sites that hold an affected version and how many instances run
from it there (JSON, table and CSV)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from integrations.appdb.api import Settings
from integrations.appdb.campaign_output import render_csv, render_table
from integrations.appdb.campaigns import query_package
from integrations.appdb.catalogue import Catalogue, CatalogueError
from integrations.appdb.db import AuditEntry
from integrations.appdb.schemas import MAX_HOLDINGS, Holding, HoldingsReport
from integrations.appdb.sites import holdings_for, report_holdings, sites
from tests.appdb.helpers import ADMIN, live_server, sha512_of
from tests.appdb.test_campaign_api import auth
from tests.appdb.test_campaigns import SHA, populate

RANGE = "<< 3.0.15-1~deb12u1"
UNREGISTERED = sha512_of("an image only the site knows")


def held(sha: str, copies: int, instances: int) -> dict[str, Any]:
    return {"sha512": sha, "copies": copies, "instances": instances}


def test_site_reports_replace_and_campaigns_name_the_sites(
        catalogue: Catalogue, capsys: pytest.CaptureFixture[str]) -> None:
    from integrations.appdb.cli import main

    populate(catalogue)
    reader, operator = auth(catalogue, "reader"), auth(catalogue, "operator")
    first = {"holdings": [held(SHA["deb-1"], 2, 3), held(SHA["rocky"], 1, 0),
                          held(UNREGISTERED, 1, 7)]}
    with live_server(catalogue) as url, httpx.Client(base_url=url, timeout=30) as c:
        put = "/api/v1/sites/site-a/holdings"
        r = c.put(put, json=first)
        assert (r.status_code, r.json()) == (401, {"detail": "a valid bearer token is required"})
        r = c.put(put, json=first, headers=reader)
        assert (r.status_code, r.json()) == (
            403, {"detail": "role reader may not do this; needs admin or operator"})
        r = c.put(put, json=first, headers=operator)
        assert r.status_code == 200, r.text
        assert {k: r.json()[k] for k in ("site", "images", "copies", "instances")} == {
            "site": "site-a", "images": 3, "copies": 4, "instances": 10}
        r = c.put("/api/v1/sites/site-b/holdings", headers=operator,
                  json={"holdings": [held(SHA["deb-1"], 1, 1)]})
        assert r.status_code == 200, r.text

        assert c.get("/api/v1/sites").status_code == 401
        r = c.get("/api/v1/sites", headers=reader)
        assert r.status_code == 200
        assert [(x["site"], x["images"], x["copies"], x["instances"]) for x in r.json()] == [
            ("site-a", 3, 4, 10), ("site-b", 1, 1, 1)]
        assert all(x["reported"].endswith("Z") for x in r.json())

        # every version with the file is affected, and each names both sites holding it
        r = c.get("/api/v1/campaigns", params={"package": "openssl", "affected": RANGE},
                  headers=reader)
        assert r.status_code == 200
        assert [(h["image_id"], [(x["site"], x["copies"], x["instances"]) for x in h["sites"]])
                for h in r.json()] == [("img-copy", [("site-a", 2, 3), ("site-b", 1, 1)]),
                                       ("img-deb", [("site-a", 2, 3), ("site-b", 1, 1)])]
        assert r.json()[0]["sites"][0]["reported"] == c.get(
            "/api/v1/sites", headers=reader).json()[0]["reported"]
        # the command line shows them from the catalogue's answer
        token = reader["Authorization"].removeprefix("Bearer ")
        assert main(["catalogue", "campaign", "query", "--package", "openssl", "--affected",
                     RANGE, "--format", "csv", "--catalogue", url, "--token", token]) == 0
        rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        assert [row["sites"] for row in rows] == [
            "site-a (copies 2, instances 3); site-b (copies 1, instances 1)"] * 2

        # the next report is the site's whole state: deb-1 is gone from site-a
        r = c.put(put, headers=operator, json={"holdings": [held(SHA["deb-2"], 1, 5)]})
        assert r.status_code == 200
        r = c.get("/api/v1/campaigns", params={"package": "openssl", "affected": RANGE},
                  headers=reader)
        assert {h["image_id"]: [x["site"] for x in h["sites"]] for h in r.json()} == {
            "img-copy": ["site-b"], "img-deb": ["site-b"]}
        r = c.get("/api/v1/campaigns", params={"package": "openssl"}, headers=reader)
        assert {(h["image_id"], h["version"]): [(x["site"], x["instances"]) for x in h["sites"]]
                for h in r.json()}[("img-deb", "2.0")] == [("site-a", 5)]
        r = c.get("/api/v1/sites", headers=reader)
        assert [(x["site"], x["images"], x["instances"]) for x in r.json()] == [
            ("site-a", 1, 5), ("site-b", 1, 1)]

        # a site holding nothing any more is no longer listed
        assert c.put("/api/v1/sites/site-b/holdings", headers=operator,
                      json={"holdings": []}).status_code == 200
        assert [x["site"] for x in c.get("/api/v1/sites", headers=reader).json()] == ["site-a"]

    with catalogue.sessions() as s:
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "site.report")
                          .order_by(AuditEntry.id)).all()
    assert [(a.actor, a.object_id, json.loads(a.detail)) for a in audit][:1] == [
        ("operator (operator)", "site-a", {"images": 3, "copies": 4, "instances": 10})]
    assert len(audit) == 4


def test_a_refused_report_keeps_the_previous_one(catalogue: Catalogue) -> None:
    operator = auth(catalogue, "operator")
    report_holdings(catalogue, "site-a", [Holding(sha512=SHA["deb-1"], copies=1, instances=2)],
                    ADMIN)
    twice = [Holding(sha512=SHA["rocky"], copies=1, instances=1)] * 2
    with pytest.raises(CatalogueError) as caught:  # the database refuses it: nothing changes
        report_holdings(catalogue, "site-a", twice, ADMIN)
    assert caught.value.status == 409
    assert caught.value.message.startswith("report of site site-a not stored: ")
    with catalogue.sessions() as s:
        assert {k: [(h.site, h.instances) for h in v] for k, v in holdings_for(
            s, [SHA["deb-1"], SHA["rocky"]]).items()} == {SHA["deb-1"]: [("site-a", 2)]}

    good = held(SHA["deb-1"], 1, 1)
    with live_server(catalogue) as url, httpx.Client(base_url=url, timeout=30) as c:
        put = "/api/v1/sites/site-a/holdings"
        for bad, message in (
                ({"holdings": [held(SHA["deb-1"].upper(), 1, 1)]}, "should match pattern"),
                ({"holdings": [held(SHA["deb-1"][:127], 1, 1)]}, "should match pattern"),
                ({"holdings": [held(SHA["deb-1"], -1, 1)]}, "greater than or equal to 0"),
                ({"holdings": [held(SHA["deb-1"], 1, 10**7 + 1)]}, "less than or equal to"),
                ({"holdings": [{**good, "site": "x"}]}, "Extra inputs are not permitted"),
                ({"holdings": [good, good]}, "is reported more than once"),
                ({}, "Field required")):
            r = c.put(put, json=bad, headers=operator)
            assert r.status_code == 422 and message in r.json()["detail"][0]["msg"], r.text
        r = c.put("/api/v1/sites/not a site/holdings", json={"holdings": [good]},
                  headers=operator)
        assert r.status_code == 422
    assert [(x.site, x.images, x.instances) for x in sites(catalogue)] == [("site-a", 1, 2)]


def test_report_of_the_largest_size(sqlite_catalogue: Catalogue) -> None:
    """100,000 holdings (some 17 MB, above the catalogue's usual body limit) are taken; one
    more is refused."""
    operator = auth(sqlite_catalogue, "operator")
    rows = [held(f"{n:0128x}", 1, 10**7) for n in range(MAX_HOLDINGS)]
    with live_server(sqlite_catalogue) as url, httpx.Client(base_url=url, timeout=120) as c:
        put = "/api/v1/sites/big/holdings"
        r = c.put(put, json={"holdings": [*rows, held(sha512_of("one more"), 1, 1)]},
                  headers=operator)
        assert r.status_code == 422
        assert "at most 100000 items" in r.json()["detail"][0]["msg"]
        r = c.put(put, json={"holdings": rows}, headers=operator)
        assert r.status_code == 200, r.text[:300]
        assert (r.json()["images"], r.json()["instances"]) == (MAX_HOLDINGS, MAX_HOLDINGS * 10**7)
        r = c.put(put, content=b"{" + b" " * (32 * 1024 * 1024) + b"}",
                  headers={**operator, "Content-Type": "application/json"})
        assert (r.status_code, r.json()) == (413, {"detail": "request body too large"})
    assert HoldingsReport.model_validate({"holdings": rows[:2]}).holdings[1].instances == 10**7


def test_table_and_csv_name_the_sites(sqlite_catalogue: Catalogue) -> None:
    populate(sqlite_catalogue)
    report_holdings(sqlite_catalogue, "site-a",
                    [Holding(sha512=SHA["deb-1"], copies=2, instances=3)], ADMIN)
    result = query_package(sqlite_catalogue, "openssl", RANGE)
    out = io.StringIO()
    render_table(result, out)
    table = out.getvalue()
    assert "Sites" in table and table.count("site-a:3 inst") == 2
    assert "2 affected image version(s), 1 listed, 6 instance(s) running at 1 site(s)" in table
    rows = list(csv.DictReader(io.StringIO(render_csv(result))))
    assert [(row["image_id"], row["sites"]) for row in rows] == [
        ("img-copy", "site-a (copies 2, instances 3)"),
        ("img-deb", "site-a (copies 2, instances 3)")]


def test_report_streamed_past_the_limit_is_413(sqlite_catalogue: Catalogue) -> None:
    """Without a Content-Length the limit holds as the body streams in, and says so (413)."""
    operator = auth(sqlite_catalogue, "operator")

    def chunks() -> Iterator[bytes]:
        yield b'{"holdings": ['
        for _ in range(3):
            yield b" " * (1024 * 1024)
        yield b"]}"

    settings = Settings(max_holdings_body=2 * 1024 * 1024)
    with live_server(sqlite_catalogue, settings) as url, httpx.Client(base_url=url) as c:
        r = c.put("/api/v1/sites/site-a/holdings", content=chunks(),
                  headers={**operator, "Content-Type": "application/json"})
    assert (r.status_code, r.json()) == (413, {"detail": "request body too large"})
