"""The client a cloud site's agent calls, against a live catalogue on SQLite and PostgreSQL: its
holdings and its containment log sent (in parts, again without duplicates), and every refusal
or failure an error naming the catalogue's URL and the HTTP status and reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imageaudit.cloud import site_client
from imageaudit.cloud.site_client import (
    CatalogueCallError,
    SiteReport,
    report_holdings,
    send_containment,
)
from imageaudit.publish import RetryPolicy
from integrations.appdb.catalogue import Catalogue
from integrations.appdb.containment import records
from integrations.appdb.process import free_port
from integrations.appdb.sites import sites
from tests.appdb.helpers import ADMIN, live_server
from tests.appdb.test_containment import LOG, NEW, OLD, register, step

PATH = "/api/v1/images/img-a/containment"
NO_WAIT = RetryPolicy(tries=2, first_delay=0, timeout=10)


def token(cat: Catalogue, role: str) -> str:
    return cat.create_token(role, role, ADMIN)


def test_agent_sends_holdings_and_its_log(catalogue: Catalogue,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    register(catalogue)
    operator = token(catalogue, "operator")
    with live_server(catalogue) as url:
        got = report_holdings(url, operator, "site-a", [
            {"sha512": NEW, "copies": 2, "instances": 3}, {"sha512": OLD, "copies": 1,
                                                           "instances": 0}])
        assert got == SiteReport(site="site-a", reported=sites(catalogue)[0].reported,
                                 images=2, copies=3, instances=3)
        assert send_containment(url, operator, "img-a", LOG) == (5, 0)
        assert send_containment(url + "/", operator, "img-a", iter(LOG)) == (0, 5)
        # a resumed run's whole log, in parts of two records
        monkeypatch.setattr(site_client, "BATCH_RECORDS", 2)
        resumed = [*LOG, step(6, "unpause"), step(7, "unlock")]
        assert send_containment(url, operator, NEW, resumed) == (2, 5)
    assert [e.action for e in records(catalogue, "img-a")[1]] == [
        "deactivate", "make-private", "snapshot", "lock", "pause", "unpause", "unlock"]


def test_refusals_name_the_catalogue_and_the_status(catalogue: Catalogue,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    register(catalogue)
    operator, reader = token(catalogue, "operator"), token(catalogue, "reader")
    with live_server(catalogue) as url:
        target = f"catalogue {url}: POST {PATH} (containment records 0-4 of image img-a) failed"
        with pytest.raises(CatalogueCallError) as caught:
            send_containment(url, "iac_wrong", "img-a", LOG)
        assert str(caught.value) == (
            f"{target}: HTTP 401 Unauthorized: a valid bearer token is required")
        assert (caught.value.status, caught.value.transient) == (401, False)
        with pytest.raises(CatalogueCallError) as caught:
            send_containment(url, reader, "img-a", LOG)
        assert str(caught.value) == (f"{target}: HTTP 403 Forbidden: role reader may not do "
                                     "this; needs admin or operator")
        with pytest.raises(CatalogueCallError) as caught:
            send_containment(url, operator, "nope", LOG)
        assert str(caught.value).endswith(
            "failed: HTTP 404 Not Found: no image nope (neither an image id nor the SHA-512 of "
            "a registered image version)")
        # the second part names another image: the first is stored, and the error says so
        monkeypatch.setattr(site_client, "BATCH_RECORDS", 3)
        with pytest.raises(CatalogueCallError) as caught:
            send_containment(url, operator, "img-a", [*LOG, step(9, "lock", image="img-b")])
        assert str(caught.value).startswith(
            f"catalogue {url}: POST {PATH} (containment records 3-5 of image img-a; records "
            "0-2 were stored) failed: HTTP 422 Unprocessable Entity: records[2] (2026-12-04"
            "T17:03:09Z site-a INC-42: lock server vm-1) names image img-b, not image img-a")
        assert len(records(catalogue, "img-a")[1]) == 3
        with pytest.raises(CatalogueCallError) as caught:
            send_containment(url, operator, "img-a", [{**LOG[0], "object": "glance-1"}])
        assert "HTTP 422 Unprocessable Entity: body.records.0.object: Input should be a valid " \
               "dictionary" in str(caught.value)
        with pytest.raises(CatalogueCallError) as caught:
            report_holdings(url, operator, "site-a", [{"sha512": "x", "copies": 1,
                                                       "instances": 1}])
        assert str(caught.value).startswith(
            f"catalogue {url}: PUT /api/v1/sites/site-a/holdings (holdings of site site-a) "
            "failed: HTTP 422 Unprocessable Entity: body.holdings.0.sha512: String should "
            "match pattern")

        for bad, message in (
                (lambda: send_containment(url, operator, "img-a", []),
                 f"catalogue {url}: no containment record to send for image img-a"),
                (lambda: send_containment(url, operator, "../x", LOG),
                 f"catalogue {url}: '../x' is not an image id or SHA-512"),
                (lambda: send_containment(url, operator, "img-a", [{**LOG[0], "n": float("nan")}]),
                 f"catalogue {url}: record 0 cannot be sent as JSON: Out of range float values "
                 "are not JSON compliant"),  # (Python 3.12 adds ": nan")
                (lambda: send_containment(url, operator, "img-a", ["not a record"]),
                 f"catalogue {url}: record 0 is not a JSON object"),
                (lambda: send_containment(url, "", "img-a", LOG),
                 f"catalogue {url}: no catalogue token: give --token or set "
                 "IMAGEAUDIT_CATALOGUE_TOKEN"),
                (lambda: send_containment("ftp://catalogue", operator, "img-a", LOG),
                 "catalogue URL 'ftp://catalogue': expected http://HOST[:PORT] or https://..."),
                (lambda: report_holdings(url, operator, "site/a", []),
                 f"catalogue {url}: 'site/a' is not a site name")):
            with pytest.raises(CatalogueCallError) as caught:
                bad()
            assert str(caught.value).removesuffix(": nan") == message


def test_a_catalogue_that_does_not_answer() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    waits: list[float] = []
    with pytest.raises(CatalogueCallError) as caught:
        send_containment(url, "iac_x", "img-a", LOG, policy=NO_WAIT, sleep=waits.append)
    assert str(caught.value) == (
        f"catalogue {url}: POST {PATH} (containment records 0-4 of image img-a) failed: no "
        "answer (connection refused)")
    assert (caught.value.status, caught.value.transient, waits) == (None, True, [0.0])
    with pytest.raises(CatalogueCallError) as caught:
        report_holdings(url, "iac_x", "site-a", [], policy=NO_WAIT, sleep=waits.append)
    assert str(caught.value).endswith("failed: no answer (connection refused)")


def test_the_client_imports_no_web_framework() -> None:
    code = ("import sys, imageaudit.cloud.site_client; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('fastapi', 'starlette', 'uvicorn', 'jinja2')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    assert json.loads(out.replace("'", '"')) == []
