"""A VO's served image list carries what AppDB's VO lists carry (list-level ``ad:vo`` and
``ad:swid``; per image ``ad:group``, ``ad:user:*``, ``ad:appid``), keeps the endorser's own
values of those, and keeps its identifier and URLs whatever address it is fetched at."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from integrations.appdb.api import Settings
from integrations.appdb.catalogue import Catalogue
from integrations.appdb.db import Vo, utcnow
from integrations.appdb.imagelist import parse_imagelist
from integrations.appdb.server import open_catalogue
from tests.appdb.helpers import (
    ADMIN,
    add_auditor,
    image_entry,
    imagelist,
    live_server,
    sha512_of,
    store_report,
)
from tests.builders.pki import Pki
from tests.builders.reports import make_report

VO = "fedcloud.egi.eu"
BASE = "https://catalogue.example.org/appdb"
LIST_ID = "3a9bd1b3-6a9a-4b5c-9d0e-0f1e2d3c4b5a"  # the endorser's list (helpers.imagelist)
# What an AppDB-made list already said of its second image: kept as it is.
APPDB_FIELDS = {"ad:group": "CernVM images", "ad:user:fullname": "Jane Builder",
                "ad:user:guid": "8f3c2a6e-0d3b-4d55-9e4c-1b9f0c6a7d21",
                "ad:user:uri": "https://appdb.example.org/store/person/jane.builder",
                "ad:appid": "1017"}


def populate(cat: Catalogue, pki: Pki) -> None:
    plain = image_entry("img-plain", sha512_of("plain"), VO, "Plain")
    appdb = image_entry("img-appdb", sha512_of("appdb"), VO, "From AppDB")
    appdb["hv:image"].update(APPDB_FIELDS)
    data = pki.sign(imagelist([plain, appdb], dn=pki.endorser_dn, ca=pki.ca_dn))
    cat.import_imagelist(parse_imagelist(data, ca_dir=pki.ca_dir, now=utcnow()), ADMIN)
    add_auditor(cat)
    for name in ("plain", "appdb"):
        store_report(cat, make_report(sha512_of(name), "standard"))


def fetch(url: str) -> dict[str, Any]:
    top: dict[str, Any] = httpx.get(f"{url}/api/v1/vos/{VO}/image.list").json()["hv:imagelist"]
    return top


def test_served_list_carries_appdb_fields(catalogue: Catalogue, pki: Pki) -> None:
    populate(catalogue, pki)
    with live_server(catalogue, Settings(base_url=BASE)) as url:
        top = fetch(url)
    with catalogue.sessions() as s:
        list_uuid = s.scalars(select(Vo.list_uuid).where(Vo.name == VO)).one()
    assert str(uuid.UUID(list_uuid)) == list_uuid
    assert {k: top[k] for k in ("dc:identifier", "ad:swid", "ad:vo", "dc:source", "hv:uri")} == {
        "dc:identifier": list_uuid, "ad:swid": list_uuid, "ad:vo": VO, "dc:source": BASE,
        "hv:uri": f"{BASE}/api/v1/vos/{VO}/image.list"}
    images = {e["hv:image"]["dc:identifier"]: e["hv:image"] for e in top["hv:images"]}
    fields = [*APPDB_FIELDS, "ad:vo", "ad:mpuri"]
    assert {k: images["img-plain"][k] for k in fields} == {
        "ad:group": "General group", "ad:user:fullname": "Image Endorser",
        "ad:user:guid": str(uuid.uuid5(uuid.NAMESPACE_X500, pki.endorser_dn)),
        "ad:user:uri": "https://endorser.example.org/list", "ad:appid": LIST_ID,
        "ad:vo": VO, "ad:mpuri": f"{BASE}/images/img-plain"}
    assert {k: images["img-appdb"][k] for k in fields} == {
        **APPDB_FIELDS, "ad:vo": VO, "ad:mpuri": f"{BASE}/images/img-appdb"}


def test_list_identifier_is_the_same_across_addresses_and_restarts(
        catalogue: Catalogue, pki: Pki) -> None:
    populate(catalogue, pki)
    with live_server(catalogue, Settings(base_url=BASE)) as url:
        first = fetch(url)
        again = fetch(url.replace("127.0.0.1", "localhost"))
    with live_server(catalogue) as url:  # another port, no public URL configured
        other = fetch(url)
    assert first["dc:identifier"] == again["dc:identifier"] == other["dc:identifier"]
    assert (again["hv:uri"], other["hv:uri"]) == (
        f"{BASE}/api/v1/vos/{VO}/image.list", f"{url}/api/v1/vos/{VO}/image.list")


def test_vos_of_a_catalogue_older_than_list_identifiers_get_one(tmp_path: Path) -> None:
    from alembic import command

    from integrations.appdb.db import make_engine
    from integrations.appdb.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = alembic_config()
    with make_engine(url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
        conn.exec_driver_sql("INSERT INTO vos (name, min_level) VALUES ('a', NULL), ('b', NULL)")
    with open_catalogue(url).sessions() as s:
        ids = {name: list_uuid for name, list_uuid in s.execute(select(Vo.name, Vo.list_uuid))}
    assert sorted(ids) == ["a", "b"] and len(set(ids.values())) == 2
    assert all(str(uuid.UUID(v)) == v for v in ids.values())


def test_an_image_listed_without_a_size_is_served_with_the_reports(catalogue: Catalogue,
                                                                  pki: Pki) -> None:
    """atrope refuses a whole list when one image has no ``hv:size``: an endorser's list that
    gave none is completed with the size the signed report measured."""
    entry = image_entry("img-nosize", sha512_of("nosize"), VO, "No size")
    del entry["hv:image"]["hv:size"]
    data = pki.sign(imagelist([entry], dn=pki.endorser_dn, ca=pki.ca_dn))
    catalogue.import_imagelist(parse_imagelist(data, ca_dir=pki.ca_dir, now=utcnow()), ADMIN)
    add_auditor(catalogue)
    report = make_report(sha512_of("nosize"), "standard")
    report["image"]["size"] = report["certification"]["image_size"] = 123_456
    store_report(catalogue, report)
    with live_server(catalogue, Settings(base_url=BASE)) as url:
        top = fetch(url)
    [image] = [e["hv:image"] for e in top["hv:images"]]
    assert image["hv:size"] == 123_456
