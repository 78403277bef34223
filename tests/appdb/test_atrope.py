"""A site running atrope 2.0.0 (its own code, from PyPI) takes the catalogue's VO list: the
listed images reach Glance shared with the VO's project, and a withdrawn one leaves Glance on
atrope's next run.

Most EGI sites sync VO lists into Glance with atrope, not with our agent: withdrawal reaches
them only when atrope accepts the list. Here atrope fetches the signed list from a real
catalogue on 127.0.0.1, verifies it against the CA directory, checks the signer against the
list's endorser and the endorser the site configured (as ``openssl x509 -nameopt compat``
prints it), downloads the images into its cache and dispatches them; only the Glance client is
replaced by one that records (``tests/builders/atrope_site.py``). The catalogue signs with a
certificate whose DN has a serialNumber and an emailAddress, and the endorser's list has none
of AppDB's own fields.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrations.appdb.api import Settings
from integrations.appdb.catalogue import Catalogue
from integrations.appdb.db import utcnow
from integrations.appdb.export import Signer, SigningIdentity
from integrations.appdb.imagelist import parse_imagelist
from integrations.appdb.imagelist_write import listed_image
from tests.appdb.helpers import ADMIN, add_auditor, imagelist, live_server, store_report
from tests.batch.httpserver import FileServer
from tests.builders.atrope_venv import Atrope, atrope_env
from tests.builders.pki import Pki, openssl
from tests.builders.reports import make_report

pytestmark = [pytest.mark.network, pytest.mark.slow]

VO = "fedcloud.egi.eu"
PROJECT = "6f1e5b0cf5a04c6e9d0b2a7e1c3d4f50"  # the VO's project at the site
SITE_LIST = "egi-fedcloud"  # the site's name for the catalogue's list (atrope's hepix.yaml)
BASE = "https://catalogue.example.org"
CATALOGUE_DN = ("/DC=eu/DC=egi/C=EU/O=Test Grid/serialNumber=42"
                "/emailAddress=catalogue@example.org/CN=imageaudit catalogue")
# 4096 bytes each: the size the test reports (tests.builders.reports) are made for.
IMAGES = {"img-keep": ((b"an image that stays " * 205)[:4096], "Keep"),
          "img-withdrawn": ((b"an image withdrawn " * 216)[:4096], "Withdrawn")}


@pytest.fixture(scope="module")
def atrope() -> Atrope:
    return atrope_env()


def printed_dn(cert: Path) -> str:
    """The DN a site administrator copies into atrope's configuration."""
    out = openssl("x509", "-in", str(cert), "-noout", "-subject", "-nameopt", "compat")
    return out.decode().strip().removeprefix("subject=")


def site_config(tmp_path: Path, url: str, pki: Pki, cert: Path) -> Path:
    """atrope.conf and hepix.yaml of a site subscribed to the VO's list."""
    state = tmp_path / "atrope-state"
    state.mkdir()
    (tmp_path / "hepix.yaml").write_text(json.dumps({SITE_LIST: {
        "url": f"{url}/api/v1/vos/{VO}/image.list", "enabled": True,
        "endorser": {"dn": printed_dn(cert), "ca": printed_dn(pki.ca_dir / "ca.pem")},
        "project": PROJECT, "prefix": "EGI "}}))
    conf = tmp_path / "atrope.conf"
    conf.write_text(f"[DEFAULT]\nstate_path = {state}\nca_path = {pki.ca_dir}\n"
                    "debug = true\nuse_stderr = true\n"
                    f"[sources]\nhepix_sources = {tmp_path / 'hepix.yaml'}\n"
                    f"[cache]\npath = {state / 'cache'}\n"
                    "[dispatchers]\ndispatcher = glance\n")
    return conf


def endorse(cat: Catalogue, pki: Pki, files: FileServer) -> None:
    """The endorser's signed list (no AppDB fields), imported; a passing report for each."""
    entries = [listed_image(ident, hashlib.sha512(data).hexdigest(), len(data), title=title,
                            description=f"{title} image", fmt="qcow2", vo=VO,
                            uri=files.url(f"/{ident}.qcow2"), hypervisor="QEMU,KVM")
               for ident, (data, title) in IMAGES.items()]
    signed = pki.sign(imagelist(entries, dn=pki.endorser_dn, ca=pki.ca_dn))
    cat.import_imagelist(parse_imagelist(signed, ca_dir=pki.ca_dir, now=utcnow()), ADMIN)
    add_auditor(cat)
    for data, _ in IMAGES.values():
        store_report(cat, make_report(hashlib.sha512(data).hexdigest(), "standard"))


def run(atrope: Atrope, conf: Path, glance: Path) -> dict[str, Any]:
    proc = atrope.dispatch(conf, glance)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ERROR" not in proc.stderr, proc.stderr
    state: dict[str, Any] = json.loads(glance.read_text())
    return state


def by_appdb_id(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {img["appdb_id"]: img for img in state["images"].values()}


def test_atrope_dispatches_listed_images_and_removes_withdrawn_ones(
        sqlite_catalogue: Catalogue, pki: Pki, tmp_path: Path, atrope: Atrope) -> None:
    signing = pki.issue("catalogue-serial", CATALOGUE_DN)
    glance = tmp_path / "glance.json"
    files = {f"/{ident}.qcow2": data for ident, (data, _) in IMAGES.items()}
    with FileServer(files) as file_server:
        endorse(sqlite_catalogue, pki, file_server)
        settings = Settings(base_url=BASE,
                            signer=Signer(SigningIdentity.load(signing.cert, signing.key)))
        with live_server(sqlite_catalogue, settings) as url:
            conf = site_config(tmp_path, url, pki, signing.cert)
            served = httpx.get(f"{url}/api/v1/vos/{VO}/image.list").content
            after_first = run(atrope, conf, glance)
            sqlite_catalogue.suspend("img-withdrawn", "ssh host keys baked in", ADMIN)
            second = run(atrope, conf, glance)

    # our own import takes the list too, its signer named as atrope and openssl name it
    assert parse_imagelist(served, ca_dir=pki.ca_dir, now=utcnow()).endorser_dn == CATALOGUE_DN
    first = by_appdb_id(after_first)
    assert sorted(first) == ["img-keep", "img-withdrawn"]
    for ident, (data, title) in IMAGES.items():
        image = first[ident]
        sha512 = hashlib.sha512(data).hexdigest()
        assert {k: image[k] for k in (
            "name", "tags", "status", "visibility", "sha512", "os_hash_value", "size",
            "image_list", "vo", "disk_format", "container_format", "architecture", "os_distro",
            "os_version", "vmcatcher_event_ad_mpuri")} == {
            "name": f"EGI {title}", "tags": ["atrope"], "status": "active",
            "visibility": "shared", "sha512": sha512, "os_hash_value": sha512,
            "size": len(data), "image_list": SITE_LIST, "vo": VO, "disk_format": "qcow2",
            "container_format": "bare", "architecture": "x86_64", "os_distro": "debian",
            "os_version": "12", "vmcatcher_event_ad_mpuri": f"{BASE}/images/{ident}"}
        attributes = json.loads(image["APPLIANCE_ATTRIBUTES"])
        assert (attributes["dc:identifier"], attributes["ad:vo"], attributes["ad:group"],
                attributes["ad:user:fullname"]) == (ident, VO, "General group", "Image Endorser")
    assert {i: after_first["members"][img["id"]] for i, img in first.items()} == {
        "img-keep": {PROJECT: "accepted"}, "img-withdrawn": {PROJECT: "accepted"}}

    kept = by_appdb_id(second)
    assert list(kept) == ["img-keep"]
    assert kept["img-keep"]["id"] == first["img-keep"]["id"]  # not uploaded again
    calls = [c[:2] for c in second["calls"]]
    assert calls.count(["images.delete", first["img-withdrawn"]["id"]]) == 1
    assert [c[0] for c in second["calls"]].count("images.upload") == 2  # the first run's two
