"""Inventories beside reports, on SQLite and PostgreSQL: stored once per image content however
often it is reported, in bulk for a large image, and a malformed one refuses its report whole."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from integrations.appdb.catalogue import Catalogue, CatalogueError
from integrations.appdb.db import Inventory, InventoryFile, InventoryPackage, Report, utcnow
from integrations.appdb.imagelist import parse_imagelist
from integrations.appdb.inventory import MAX_PACKAGES
from integrations.appdb.schemas import PublishRequest
from tests.appdb.helpers import (
    ADMIN,
    AUDITOR,
    add_auditor,
    body,
    image_entry,
    imagelist,
    live_server,
    sha512_of,
    store_report,
)
from tests.builders.inventory import hashed_file, inventory, package, report_with

SHA = {name: sha512_of(name) for name in ("a", "b", "big")}
INV = inventory([package("openssl", "3.0.11-1~deb12u2"),
                 package("libssl3", "3.0.11-1~deb12u2", source="openssl")],
                [hashed_file("/usr/bin/ls", b"ls"), hashed_file("/usr/bin/cat", b"cat")])


def register(cat: Catalogue, images: list[dict[str, Any]],
             ident: str = "3a9bd1b3-6a9a-4b5c-9d0e-0f1e2d3c4b5a") -> None:
    data = imagelist(images, dn="/CN=endorser", ca="/CN=ca", ident=ident)
    cat.import_imagelist(parse_imagelist(data, ca_dir=None, now=utcnow()), ADMIN)


def counts(cat: Catalogue) -> tuple[int, int, int, int]:
    with cat.sessions() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) or 0  # type: ignore[return-value]
                     for t in (Report, Inventory, InventoryPackage, InventoryFile))


def test_stored_once_per_content(catalogue: Catalogue) -> None:
    # img-b is the same file as img-a, registered under another image
    register(catalogue, [image_entry("img-a", SHA["a"], "fedcloud", "A"),
                         image_entry("img-b", SHA["a"], "othervo", "B")])
    add_auditor(catalogue)
    first = report_with(SHA["a"], "basic", INV)
    store_report(catalogue, first)
    assert counts(catalogue) == (1, 1, 2, 2)
    store_report(catalogue, first)  # the same report again
    store_report(catalogue, report_with(SHA["a"], "standard", inventory(
        [package("other", "1")], complete=False)))  # a newer audit of the same content
    assert counts(catalogue) == (2, 1, 2, 2)
    with catalogue.sessions() as s:
        row = s.scalars(select(Inventory)).one()
        kept = s.scalars(select(InventoryPackage.name).order_by(InventoryPackage.name)).all()
    assert (row.complete, row.packages, row.files, row.not_hashed) == (True, 2, 2, 0)
    assert kept == ["libssl3", "openssl"]
    # a report without an inventory is stored as before
    register(catalogue, [image_entry("img-c", SHA["b"], "fedcloud", "C")],
             ident="3a9bd1b3-6a9a-4b5c-9d0e-0f1e2d3c4b5b")
    store_report(catalogue, report_with(SHA["b"], "basic", None))
    assert counts(catalogue) == (3, 1, 2, 2)


def test_a_large_inventory_goes_in_whole(catalogue: Catalogue) -> None:
    register(catalogue, [image_entry("img-big", SHA["big"], "fedcloud", "Big")])
    add_auditor(catalogue)
    big = inventory([package(f"pkg{i}", f"1.{i}-1") for i in range(2000)],
                    [hashed_file(f"/usr/lib/f{i}.so", str(i).encode()) for i in range(20000)])
    started = time.perf_counter()
    store_report(catalogue, report_with(SHA["big"], "basic", big))
    elapsed = time.perf_counter() - started
    assert counts(catalogue) == (1, 1, 2000, 20000)
    print(f"published 2,000 packages and 20,000 files in {elapsed:.2f} s")


def test_names_as_reports_escape_them(catalogue: Catalogue) -> None:
    # a 255-byte file name of undecodable bytes, escaped as \xNN; a newline, which reports keep
    odd = "/tmp/" + "\\xff" * 255
    register(catalogue, [image_entry("img-a", SHA["a"], "fedcloud", "A")])
    add_auditor(catalogue)
    store_report(catalogue, report_with(SHA["a"], "basic", inventory(
        [package("\u00e9" * 512, "1.0")],
        [hashed_file(odd, b"odd"), hashed_file("/tmp/two\nlines", b"two")])))
    from integrations.appdb.campaigns import query_indicators, query_package

    assert [h.image_id for h in query_indicators(catalogue, names={"\\xff" * 255}).hits] == [
        "img-a"]
    assert [h.matched[0]["path"] for h in query_indicators(catalogue, paths={odd}).hits] == [odd]
    assert len(query_indicators(catalogue, names={"two\nlines"}).hits) == 1
    assert len(query_package(catalogue, "\u00e9" * 512).hits) == 1


def broken(path: list[Any], value: Any) -> dict[str, Any]:
    inv = copy.deepcopy(INV)
    target: Any = inv
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return inv


CASES = [
    (broken(["packages"], {"openssl": "3"}), "inventory.packages is missing or not a list"),
    (broken(["files"], KeyError), "inventory.files is missing or not a list"),
    (broken(["complete"], KeyError), "inventory.complete is missing or not true/false"),
    (broken(["complete"], "yes"), "inventory.complete is missing or not true/false"),
    (broken(["packages", 1], "libssl3"), "inventory.packages[1] is not an object"),
    (broken(["packages", 0, "version"], KeyError), "inventory.packages[0].version is missing"),
    (broken(["packages", 0, "name"], ""), "inventory.packages[0].name is empty"),
    (broken(["packages", 0, "name"], "é" * 513),
     "inventory.packages[0].name is longer than 1024 bytes"),
    (broken(["packages", 0, "version"], "x" * 4097),
     "inventory.packages[0].version is longer than 4096 characters"),
    (broken(["packages", 0, "version"], "1.0\x1b[31m"),
     "inventory.packages[0].version has a control character or is not valid Unicode"),
    (broken(["packages", 0, "arch"], 64), "inventory.packages[0].arch is not a string"),
    (broken(["packages", 0, "manager"], "Dpkg!"),
     "inventory.packages[0].manager 'Dpkg!' is not a package manager's name"),
    (broken(["files", 1, "sha256"], "AB" * 32),
     "inventory.files[1].sha256 is not 64 lowercase hex digits"),
    (broken(["files", 0, "md5"], None), "inventory.files[0].md5 is not 32 lowercase hex digits"),
    (broken(["files", 0, "sha1"], "0" * 39), "inventory.files[0].sha1 is not 40 lowercase hex "
                                             "digits"),
    (broken(["files", 0, "path"], "usr/bin/ls"),
     "inventory.files[0].path is missing or not an absolute path"),
    (broken(["files", 0, "path"], "/usr/bin/"),
     "inventory.files[0].path does not end in a file name of 1 to 1024 bytes"),
    (broken(["files", 0, "path"], "/tmp/" + "\\xff" * 257),
     "inventory.files[0].path does not end in a file name of 1 to 1024 bytes"),
    (broken(["files", 0, "path"], "/usr/bin/l\x00s"),
     "inventory.files[0].path has a NUL or is not valid Unicode"),
    (broken(["files", 1, "path"], "/usr/bin/ls"), "inventory.files[1].path '/usr/bin/ls' is "
                                                  "listed twice"),
    (broken(["files", 0, "size"], -1), "inventory.files[0].size is not a count from 0 to "
                                       f"{2**62}"),
    (broken(["files", 0, "size"], True), "inventory.files[0].size is not a count from 0 to "
                                         f"{2**62}"),
    (broken(["files", 0, "kinds"], ["elf", "rootkit"]),
     "inventory.files[0].kinds is not a list of elf, exec, home, persistence, script, writable"),
    (broken(["not_hashed", "count"], "1"), "inventory.not_hashed.count is not a count from 0 "
                                           f"to {2**31 - 1}"),
    (broken(["limits", "max_files"], 1.5), "inventory.limits.max_files is not a count from 0 "
                                           f"to {2**62}"),
    ("packages", "inventory is not an object"),
]


@pytest.mark.parametrize(("inv", "message"), CASES, ids=[m for _, m in CASES])
def test_malformed_inventory_refuses_the_report(sqlite_catalogue: Catalogue, inv: Any,
                                                message: str) -> None:
    register(sqlite_catalogue, [image_entry("img-a", SHA["a"], "fedcloud", "A")])
    add_auditor(sqlite_catalogue)
    token = sqlite_catalogue.create_token(AUDITOR, "auditor", ADMIN)
    sent = body(report_with(SHA["a"], "basic", inv))
    with live_server(sqlite_catalogue) as url:
        r = httpx.post(f"{url}/api/v1/reports", json=sent, timeout=30,
                       headers={"Authorization": f"Bearer {token}"})
    assert (r.status_code, r.json()) == (422, {"detail": f"report refused: {message}"})
    assert counts(sqlite_catalogue) == (0, 0, 0, 0)


def test_text_that_is_not_unicode_is_refused(catalogue: Catalogue) -> None:
    # JSON can carry a lone surrogate ("\udc80", as a non-UTF-8 file name might be passed
    # on); neither the report's id nor PostgreSQL can take it
    register(catalogue, [image_entry("img-a", SHA["a"], "fedcloud", "A")])
    add_auditor(catalogue)
    token = catalogue.create_token(AUDITOR, "auditor", ADMIN)
    sent = body(report_with(SHA["a"], "basic", INV))
    sent["report"]["inventory"]["files"][0]["path"] = "/usr/bin/\udc80"
    with live_server(catalogue) as url:
        r = httpx.post(f"{url}/api/v1/reports", timeout=30,
                       content=json.dumps(sent, ensure_ascii=True).encode(),
                       headers={"Authorization": f"Bearer {token}",
                                "Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("report refused: the report holds text that is not "
                                         "valid Unicode (a lone surrogate at character ")
    assert counts(catalogue) == (0, 0, 0, 0)


def test_too_many_packages(catalogue: Catalogue) -> None:
    register(catalogue, [image_entry("img-a", SHA["a"], "fedcloud", "A")])
    add_auditor(catalogue)
    row = package("p", "1")
    report = report_with(SHA["a"], "basic", inventory([row] * (MAX_PACKAGES + 1)))
    sent = body(report)
    with pytest.raises(CatalogueError) as err:
        catalogue.add_report(PublishRequest.model_validate(sent), ADMIN, raw=sent["report"])
    assert (err.value.status, err.value.message) == (
        422, "report refused: inventory has 50,001 packages; at most 50,000 are accepted")
    assert counts(catalogue) == (0, 0, 0, 0)
