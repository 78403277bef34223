"""Campaigns over HTTP on SQLite and PostgreSQL: queries for any valid token, saving and running
for operators, indicator files posted as they are, the ``/campaigns`` page with hostile image
strings escaped, and the command line through a running catalogue (``--catalogue``)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrations.appdb.api import Settings
from integrations.appdb.catalogue import Catalogue
from tests.appdb.helpers import (
    ADMIN,
    add_auditor,
    image_entry,
    live_server,
    sha512_of,
    store_report,
)
from tests.appdb.test_campaigns import (
    ALICE,
    ALICE_LIST,
    BOB,
    MINER,
    listing,
    populate,
    register,
    write_osv_snapshot,
)
from tests.builders.inventory import hashed_file, inventory, package, report_with

HOSTILE = '<img src=x onerror="alert(1)">'
RANGE = "<< 3.0.15-1~deb12u1"


def auth(cat: Catalogue, role: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + cat.create_token(role, role, ADMIN)}


def ids(hits: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(h["image_id"], h["version"]) for h in hits]


def test_queries_need_a_token_and_answer_json(catalogue: Catalogue, tmp_path: Path) -> None:
    populate(catalogue)
    feeds = write_osv_snapshot(tmp_path)
    reader, operator = auth(catalogue, "reader"), auth(catalogue, "operator")
    with live_server(catalogue, Settings(feeds=feeds)) as url, \
            httpx.Client(base_url=url, timeout=30) as c:
        params = {"package": "openssl", "affected": RANGE}
        r = c.get("/api/v1/campaigns", params=params)
        assert (r.status_code, r.json()) == (401, {"detail": "a valid bearer token is required"})
        assert c.get("/api/v1/campaigns", params=params,
                     headers={"Authorization": "Bearer nope"}).status_code == 401
        r = c.get("/api/v1/campaigns", params=params, headers=reader)
        assert r.status_code == 200
        assert ids(r.json()) == [("img-copy", "1.0"), ("img-deb", "1.0")]
        first = r.json()[0]
        assert {k: first[k] for k in ("vos", "endorser_email", "level", "listed", "fix")} == {
            "vos": ["othervo"], "endorser_email": "bob@example.org", "level": "basic",
            "listed": True, "fix": "3.0.15-1~deb12u1"}
        r = c.get("/api/v1/campaigns", params={"cve": "CVE-2099-0002"}, headers=reader)
        assert {(h["image_id"], h["fix"]) for h in r.json()} == {
            ("img-deb", "2.36-9+deb12u3"), ("img-copy", "2.36-9+deb12u3"),
            ("img-epoch", "2.36-9+deb12u3")}
        r = c.get("/api/v1/campaigns", params={"endorser_dn": ALICE.dn}, headers=reader)
        assert ids(r.json()) == [("img-deb", "1.0"), ("img-deb", "2.0"), ("img-epoch", "1.0")]

        for bad, message in (({"affected": RANGE}, "affected (a version range) needs a package"),
                             ({}, "give a package, a CVE, an OSV id, indicators or an endorser"),
                             ({"cve": "CVE-99"}, "String should match pattern"),
                             ({"package": "openssl", "affected": "~> 3"}, "is not OP VERSION")):
            r = c.get("/api/v1/campaigns", params=bad, headers=reader)
            assert r.status_code == 422 and message in r.json()["detail"][0]["msg"], r.text
        r = c.get("/api/v1/campaigns", params={"cve": "CVE-2099-9999"}, headers=reader)
        assert r.status_code == 404
        assert r.json()["detail"].startswith("no OSV record names CVE-2099-9999")

        # saving and running are an operator's
        save = {"name": "old-openssl", "query": {"package": "openssl", "affected": RANGE}}
        r = c.post("/api/v1/campaigns", json=save, headers=reader)
        assert (r.status_code, r.json()) == (
            403, {"detail": "role reader may not do this; needs admin or operator"})
        r = c.post("/api/v1/campaigns", json=save, headers=operator)
        assert r.status_code == 201
        assert ids(r.json()["newly_affected"]) == [("img-copy", "1.0"), ("img-deb", "1.0")]
        assert c.post("/api/v1/campaigns", json=save, headers=operator).status_code == 409
        r = c.get("/api/v1/campaigns/saved", headers=reader)
        assert [(s["name"], s["created_by"], len(s["runs"])) for s in r.json()] == [
            ("old-openssl", "operator", 1)]
        assert c.get("/api/v1/campaigns/saved").status_code == 401
        assert c.post("/api/v1/campaigns/saved/old-openssl/runs",
                      headers=reader).status_code == 403

        register(catalogue, listing(ALICE, ALICE_LIST, [
            image_entry("img-late", sha512_of("late"), "fedcloud", "Late")]))
        store_report(catalogue, report_with(sha512_of("late"), "basic", inventory(
            [package("libssl3", "3.0.13-1~deb12u1", source="openssl")])))
        r = c.post("/api/v1/campaigns/saved/old-openssl/runs", headers=operator)
        assert r.status_code == 200
        assert (len(r.json()["affected"]), ids(r.json()["newly_affected"])) == (
            3, [("img-late", "1.0")])
        r = c.get("/api/v1/campaigns/saved/old-openssl", headers=reader)
        assert [(x["affected"], x["newly_affected"]) for x in r.json()["runs"]] == [(2, 2),
                                                                                   (3, 1)]
        assert c.get("/api/v1/campaigns/saved/nope", headers=reader).status_code == 404


def test_indicator_file_posted_as_is(sqlite_catalogue: Catalogue) -> None:
    populate(sqlite_catalogue)
    reader = auth(sqlite_catalogue, "reader")
    sheet = f"sha256,filename\n{hashlib.sha256(MINER).hexdigest()},\n,kworker\n".encode()
    with live_server(sqlite_catalogue) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.post("/api/v1/campaigns/ioc", content=sheet).status_code == 401
        r = c.post("/api/v1/campaigns/ioc", content=sheet, headers=reader)
        assert r.status_code == 200
        hits = {h["image_id"]: [(m["by"], m["provenance"]) for m in h["matched"]]
                for h in r.json()}
        assert hits == {
            "img-alpine": [("sha256", ["the indicator file:2"])],
            "img-copy": [("sha256", ["the indicator file:2"]), ("name", ["the indicator file:3"])],
            "img-deb": [("sha256", ["the indicator file:2"]), ("name", ["the indicator file:3"])]}
        r = c.post("/api/v1/campaigns/ioc", params={"endorser_dn": BOB.dn}, content=sheet,
                   headers=reader)
        assert sorted(h["image_id"] for h in r.json()) == ["img-alpine", "img-copy"]
        r = c.post("/api/v1/campaigns/ioc", content=b"\x00\x01binary", headers=reader)
        assert r.status_code == 422
        assert r.json()["detail"].startswith("indicators refused: the indicator file: ")
        r = c.post("/api/v1/campaigns/ioc", content=b"x" * (8 * 1024 * 1024 + 1), headers=reader)
        assert (r.status_code, r.json()) == (
            413, {"detail": "an indicator file is at most 8388608 bytes"})


@pytest.fixture
def hostile(sqlite_catalogue: Catalogue) -> Catalogue:
    """An image whose title, package, path and endorser carry markup."""
    from integrations.appdb.imagelist_write import Endorser

    evil = Endorser(dn="/CN=Evil <b>", ca="/CN=CA", creator="Eve " + HOSTILE,
                    email="eve@example.org")
    register(sqlite_catalogue, listing(evil, ALICE_LIST, [
        image_entry("img-evil", sha512_of("evil"), "fedcloud", "=cmd|' /C calc'!A0 " + HOSTILE)]))
    add_auditor(sqlite_catalogue)
    store_report(sqlite_catalogue, report_with(sha512_of("evil"), "basic", inventory(
        [package("<svg/onload=alert(1)>", "1.0-1")],
        [hashed_file("/tmp/<script>alert(1)</script>", MINER)])))
    return sqlite_catalogue


def test_campaign_page_escapes_what_images_say(hostile: Catalogue) -> None:
    reader = hostile.create_token("reader", "reader", ADMIN)
    with live_server(hostile) as url, httpx.Client(base_url=url, timeout=30) as c:
        form = c.get("/campaigns")
        assert form.status_code == 200 and '<form method="post" action="/campaigns"' in form.text
        r = c.post("/campaigns", data={"package": "<svg/onload=alert(1)>"})
        assert r.status_code == 401 and "a valid bearer token is required" in r.text
        assert "<svg/onload" not in r.text  # the filter is echoed escaped too
        r = c.post("/campaigns", data={"package": "<svg/onload=alert(1)>", "token": reader})
        page = r.text
        assert r.status_code == 200
        assert reader not in page
        assert 'data-image="img-evil"' in page
        assert "Eve &lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
        assert "&lt;svg/onload=alert(1)&gt; 1.0-1" in page
        assert "<img" not in page and "<svg" not in page and "<script" not in page
        r = c.post("/campaigns", data={"package": "x", "affected": "< 2", "token": reader})
        assert r.status_code == 422 and "write &lt;&lt; (strictly)" in r.text
        r = c.post("/campaigns", data={"cve": "CVE-2099-0001", "token": reader})
        assert r.status_code == 409 and "advisories are resolved through a feed" in r.text


def test_csv_and_table_are_safe(hostile: Catalogue, capsys: pytest.CaptureFixture[str]) -> None:
    from integrations.appdb.cli import main

    db = hostile.engine.url.render_as_string(hide_password=False)
    sha = hashlib.sha256(MINER).hexdigest()
    ioc = Path(hostile.engine.url.database or "").parent / "sha.csv"
    ioc.write_text(f"{sha}\n")
    assert main(["catalogue", "campaign", "query", "--ioc", str(ioc), "--format", "csv",
                 "--db", db]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["image_id"], r["title"], r["endorser_name"]) for r in rows] == [
        ("img-evil", "'=cmd|' /C calc'!A0 " + HOSTILE, "Eve " + HOSTILE)]
    assert rows[0]["matched"] == f"/tmp/<script>alert(1)</script> sha256 {sha[:16]}… [{ioc}:1]"
    assert main(["catalogue", "campaign", "query", "--package", "<svg/onload=alert(1)>",
                 "--db", db]) == 0
    table = capsys.readouterr().out
    assert "<svg/onload=alert(1)> 1.0-1" in table and "Eve <img" in table
    assert "1 affected image version(s), 1 listed" in table


def test_command_line_through_a_running_catalogue(catalogue: Catalogue, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from integrations.appdb.cli import main

    populate(catalogue)
    reader = catalogue.create_token("reader", "reader", ADMIN)
    operator = catalogue.create_token("ops", "operator", ADMIN)
    sheet = tmp_path / "names.csv"
    sheet.write_text("filename\nkworker\n")
    with live_server(catalogue) as url:
        assert main(["catalogue", "campaign", "query", "--package", "openssl", "--affected",
                     RANGE, "--format", "json", "--catalogue", url, "--token", reader]) == 0
        assert ids(json.loads(capsys.readouterr().out)) == [("img-copy", "1.0"),
                                                            ("img-deb", "1.0")]
        assert main(["catalogue", "campaign", "query", "--ioc", str(sheet), "--endorser-dn",
                     ALICE.dn, "--catalogue", url, "--token", reader]) == 0
        out = capsys.readouterr().out
        assert "img-deb" in out and "img-copy" not in out
        assert main(["catalogue", "campaign", "query", "--endorser-dn", BOB.dn, "--save", "bob",
                     "--catalogue", url, "--token", reader]) == 2
        assert capsys.readouterr().err == ("imageaudit: error: catalogue answered 403: role "
                                           "reader may not do this; needs admin or operator\n")
        assert main(["catalogue", "campaign", "query", "--endorser-dn", BOB.dn, "--save", "bob",
                     "--catalogue", url, "--token", operator]) == 0
        assert "campaign bob: 3 affected, 3 new" in capsys.readouterr().out
        assert main(["catalogue", "campaign", "run", "bob", "--format", "json", "--catalogue", url,
                     "--token", operator]) == 0
        assert json.loads(capsys.readouterr().out)["newly_affected"] == []
        assert main(["catalogue", "campaign", "list", "--catalogue", url, "--token", reader]) == 0
        assert capsys.readouterr().out.startswith(f"bob  endorser {BOB.dn}  (saved ")
        assert main(["catalogue", "campaign", "show", "bob", "--format", "json", "--catalogue", url,
                     "--token", reader]) == 0
        assert len(json.loads(capsys.readouterr().out)["runs"]) == 2


def test_every_write_and_read_is_in_the_openapi_document(sqlite_catalogue: Catalogue) -> None:
    with live_server(sqlite_catalogue) as url:
        paths = httpx.get(f"{url}/api/v1/openapi.json").json()["paths"]
    assert {p: sorted(ops) for p, ops in paths.items() if "campaigns" in p} == {
        "/api/v1/campaigns": ["get", "post"], "/api/v1/campaigns/ioc": ["post"],
        "/api/v1/campaigns/saved": ["get"], "/api/v1/campaigns/saved/{campaign}": ["get"],
        "/api/v1/campaigns/saved/{campaign}/runs": ["post"]}

