"""``GET /api/v1/versions``: every registered image version, current or not, on SQLite and
PostgreSQL; and the batch client that reads it, against the service and against a server that
answers malformed lists."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from imageaudit.batch import catalogue as batch_catalogue
from imageaudit.batch.catalogue import CatalogueVersion, list_versions
from imageaudit.batch.fetch import FetchError
from integrations.appdb.catalogue import Catalogue
from integrations.appdb.db import utcnow
from integrations.appdb.imagelist import parse_imagelist
from tests.appdb.helpers import ADMIN, image_entry, imagelist, live_server, sha512_of
from tests.batch.httpserver import FileServer

SHA = {name: sha512_of(name) for name in ("a1", "a2", "b")}


def register(cat: Catalogue) -> None:
    """img-a in two versions (a2 current), img-b in another VO."""
    for images in ([image_entry("img-a", SHA["a1"], "fedcloud", "Alpha", "1.0")],
                   [image_entry("img-a", SHA["a2"], "fedcloud", "Alpha", "2.0"),
                    image_entry("img-b", SHA["b"], "othervo", "Beta", "7")]):
        data = imagelist(images, dn="/CN=endorser", ca="/CN=ca")
        cat.import_imagelist(parse_imagelist(data, ca_dir=None, now=utcnow()), ADMIN)


def version(ident: str, sha: str, vo: str, title: str, ver: str,
            current: bool) -> dict[str, Any]:
    return {"image_id": ident, "vo": vo, "version": ver, "title": title,
            "uri": f"https://images.example.org/{ident}.qcow2", "size": 4096, "sha512": sha,
            "current": current}


ALL = [version("img-a", SHA["a1"], "fedcloud", "Alpha", "1.0", False),
       version("img-a", SHA["a2"], "fedcloud", "Alpha", "2.0", True),
       version("img-b", SHA["b"], "othervo", "Beta", "7", True)]


def test_versions_lists_every_version(catalogue: Catalogue) -> None:
    register(catalogue)
    with live_server(catalogue) as url, httpx.Client(base_url=url) as c:
        r = c.get("/api/v1/versions")
        assert (r.status_code, r.json()) == (200, ALL)
        assert c.get("/api/v1/versions", params={"vo": "fedcloud"}).json() == ALL[:2]
        assert c.get("/api/v1/versions", params={"vo": "nosuchvo"}).json() == []
        assert c.get("/api/v1/versions", params={"limit": 2}).json() == ALL[:2]
        assert c.get("/api/v1/versions", params={"limit": 2, "offset": 2}).json() == ALL[2:]
        for bad in ({"vo": "x" * 64}, {"limit": 0}, {"limit": 10001}, {"offset": -1}):
            assert c.get("/api/v1/versions", params=bad).status_code == 422, bad
        # the image listing still shows only the current version
        assert [i["sha512"] for i in c.get("/api/v1/images").json()] == [SHA["a2"], SHA["b"]]

        assert list_versions(url, None) == [CatalogueVersion(**v) for v in ALL]
        assert list_versions(url + "/", "othervo") == [CatalogueVersion(**ALL[2])]


def test_list_versions_reads_every_page(sqlite_catalogue: Catalogue,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    register(sqlite_catalogue)
    monkeypatch.setattr(batch_catalogue, "PAGE", 2)
    with live_server(sqlite_catalogue) as url:
        assert list_versions(url, None) == [CatalogueVersion(**v) for v in ALL]
        monkeypatch.setattr(batch_catalogue, "MAX_VERSIONS", 2)
        with pytest.raises(FetchError) as err:
            list_versions(url, None)
        assert str(err.value) == f"{url}: the catalogue lists more than 2 image versions"


@pytest.fixture
def hostile() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


def serve(srv: FileServer, body: object) -> str:
    """The URL of ``body`` as the only page of versions; the catalogue's base URL."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    srv.files["/api/v1/versions?limit=1000&offset=0"] = data
    return srv.base


@pytest.mark.parametrize(("change", "message"), [
    ({"sha512": "ab" * 32}, "entry 0 (image img-a): sha512 is not 128 lowercase hex digits"),
    ({"uri": "ftp://images.example.org/a"},
     "entry 0 (image img-a): uri 'ftp://images.example.org/a' is not an http or https URL"),
    ({"size": "4096"}, "entry 0 (image img-a): size is not a byte count"),
    ({"size": True}, "entry 0 (image img-a): size is not a byte count"),
    ({"current": 1}, "entry 0 (image img-a): current is missing or not true/false"),
    ({"vo": "no vo"}, "entry 0 (image img-a): vo 'no vo' is not a VO name"),
    ({"title": "a\x1bb"},
     "entry 0 (image img-a): title is longer than 1024 or has control characters"),
    ({"image_id": "../etc"}, "entry 0: image_id '../etc' is not an image identifier"),
    ({"version": None}, "entry 0: version is missing or not a string"),
])
def test_malformed_entry_is_refused(hostile: FileServer, change: dict[str, Any],
                                    message: str) -> None:
    base = serve(hostile, [{**ALL[0], **change}])
    with pytest.raises(FetchError) as err:
        list_versions(base, None)
    assert str(err.value) == f"{base}/api/v1/versions?limit=1000&offset=0: {message}"


@pytest.mark.parametrize(("body", "message"), [
    ({"versions": []}, "not a JSON list of versions"),
    (b"<html>", "not JSON (Expecting value: line 1 column 1 (char 0))"),
    ([ALL[0]] * 1001, "1001 entries for a page of 1000"),
])
def test_malformed_answer_is_refused(hostile: FileServer, body: object, message: str) -> None:
    base = serve(hostile, body)
    with pytest.raises(FetchError) as err:
        list_versions(base, None)
    assert str(err.value) == f"{base}/api/v1/versions?limit=1000&offset=0: {message}"


def test_missing_endpoint_and_bad_arguments(hostile: FileServer) -> None:
    with pytest.raises(FetchError) as err:
        list_versions(hostile.base, "fedcloud")
    assert str(err.value) == (f"{hostile.base}/api/v1/versions?vo=fedcloud&limit=1000&offset=0: "
                              "HTTP 404 Not Found")
    with pytest.raises(FetchError, match=r"VO '\.\./x' is not a VO name$"):
        list_versions(hostile.base, "../x")
    with pytest.raises(FetchError, match=r"^ftp://x: not an http or https URL$"):
        list_versions("ftp://x", None)
