"""End to end on SQLite and PostgreSQL: signed list imported, reports published over HTTP,
VO image lists omit the failed and the suspended image, refusals are clear."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

from integrations.appdb.api import Settings
from integrations.appdb.catalogue import Catalogue
from integrations.appdb.db import AuditEntry, Report, utcnow
from integrations.appdb.export import Signer, SigningIdentity
from integrations.appdb.imagelist import parse_imagelist
from tests.appdb.helpers import (
    ADMIN,
    AUDITOR,
    add_auditor,
    body,
    image_entry,
    imagelist,
    live_server,
    sha512_of,
)
from tests.builders.pki import Pki
from tests.builders.reports import make_report

SHA = {name: sha512_of(name) for name in ("good", "bad", "suspended", "strict", "old")}


def setup_catalogue(cat: Catalogue, pki: Pki) -> None:
    images = [image_entry("img-good", SHA["good"], "fedcloud", "Good <b>image</b>"),
              image_entry("img-bad", SHA["bad"], "fedcloud", "Default passwords"),
              image_entry("img-suspended", SHA["suspended"], "fedcloud", "Suspended"),
              image_entry("img-strict", SHA["strict"], "strictvo", "Basic only"),
              image_entry("img-old", SHA["old"], "fedcloud", "Expired cert")]
    data = pki.sign(imagelist(images, dn=pki.endorser_dn, ca=pki.ca_dn))
    result = cat.import_imagelist(parse_imagelist(data, ca_dir=pki.ca_dir, now=utcnow()), ADMIN)
    assert result.signed and result.signer == pki.endorser_dn
    cat.set_vo("strictvo", "standard", ADMIN)
    add_auditor(cat)


def listed_ids(doc: dict[str, object]) -> list[str]:
    top = doc["hv:imagelist"]
    assert isinstance(top, dict)
    return [e["hv:image"]["dc:identifier"] for e in top["hv:images"]]


def test_end_to_end(catalogue: Catalogue, pki: Pki, tmp_path: Path) -> None:
    setup_catalogue(catalogue, pki)
    auditor = {"Authorization": "Bearer " + catalogue.create_token(AUDITOR, "auditor", ADMIN)}
    operator = {"Authorization": "Bearer " + catalogue.create_token("ops", "operator", ADMIN)}
    signer = Signer(SigningIdentity.load(pki.catalogue_cert, pki.catalogue_key))
    with live_server(catalogue, Settings(signer=None)) as url, httpx.Client(base_url=url) as c:
        good = body(make_report(SHA["good"], "standard"))
        r = c.post("/api/v1/reports", json=good, headers=auditor)
        assert (r.status_code, r.json()) == (201, {"report_id": good["report_id"],
                                                   "image_id": "img-good", "level": "standard",
                                                   "listed": True, "signer": AUDITOR})
        r = c.post("/api/v1/reports", json=good, headers=auditor)
        assert (r.status_code, r.json()["image_id"]) == (200, "img-good")
        r = c.post("/api/v1/reports", json=body(make_report(SHA["bad"], "none")), headers=auditor)
        assert (r.status_code, r.json()["listed"]) == (201, False)
        r = c.post("/api/v1/images/img-suspended/reports",
                   json=body(make_report(SHA["suspended"], "hardened")), headers=auditor)
        assert (r.status_code, r.json()["listed"]) == (201, True)
        r = c.post("/api/v1/reports", json=body(make_report(SHA["strict"], "basic")),
                   headers=auditor)
        assert (r.status_code, r.json()["listed"]) == (201, False)
        expired = make_report(SHA["old"], "hardened", issued=timedelta(days=-40),
                              expires=timedelta(days=-10))
        assert c.post("/api/v1/reports", json=body(expired), headers=auditor).status_code == 201

        # refusals, each with a clear message
        r = c.post("/api/v1/reports", json=body(make_report(sha512_of("x"), "basic")),
                   headers=auditor)
        assert (r.status_code, r.json()) == (404, {"detail": "no registered image has SHA-512 "
                                                   f"{sha512_of('x')[:16]}..."})
        r = c.post("/api/v1/images/img-good/reports", json=body(make_report(SHA["bad"], "basic")),
                   headers=auditor)
        assert (r.status_code, r.json()) == (409, {"detail": f"report is for SHA-512 "
                                                   f"{SHA['bad'][:16]}..., not a version of "
                                                   "image img-good"})
        broken = make_report(SHA["good"], "basic")
        broken["certification"]["level"] = "platinum"
        r = c.post("/api/v1/reports", json=body(broken), headers=auditor)
        assert r.status_code == 422
        assert "certification.level 'platinum' is not one of" in r.json()["detail"][0]["msg"]

        r = c.post("/api/v1/images/img-suspended/suspension",
                   json={"reason": "ssh keys baked in <script>"}, headers=operator)
        assert (r.status_code, r.json()["suspended"], r.json()["listed"]) == (200, True, False)

        doc = c.get("/api/v1/vos/fedcloud/image.list").json()
        assert listed_ids(doc) == ["img-good"]
        entry = doc["hv:imagelist"]["hv:images"][0]["hv:image"]
        assert entry["sl:checksum:sha512"] == SHA["good"]
        assert entry["dc:date:expires"] == good["report"]["certification"]["expires"]
        assert listed_ids(c.get("/api/v1/vos/strictvo/image.list").json()) == []
        assert c.get("/api/v1/vos/nosuchvo/image.list").status_code == 404

        # lifting the suspension lists the image again
        assert c.delete("/api/v1/images/img-suspended/suspension", headers=operator).json()[
            "listed"] is True
        doc = c.get("/api/v1/vos/fedcloud/image.list").json()
        assert listed_ids(doc) == ["img-good", "img-suspended"]

        secant = ET.fromstring(c.get("/api/v1/images/img-bad/secant.xml").content)
        assert secant.findtext("OUTCOME") == "FAIL"
        checks = secant.iter("CHECK")
        assert [(ch.findtext("CHECK_ID"), ch.findtext("STATUS")) for ch in checks] == [
            ("crashing_check", "INTERNAL_FAILURE"), ("password_default", "ERROR"),
            ("password_default", "ERROR")]
        appdb = ET.fromstring(c.get("/api/v1/images/img-good/security.xml").content)
        rep = appdb.find("report")
        assert rep is not None and (rep.get("kind"), rep.get("outcome"), rep.get("level")) == (
            "security", "OK", "standard")
        assert c.get("/api/v1/images/img-old/secant.xml").status_code == 404

    with catalogue.sessions() as s:
        assert s.scalars(select(Report.report_id).where(
            Report.report_id == good["report_id"])).all() == [good["report_id"]]
        actions = [a for a, in s.execute(select(AuditEntry.action).order_by(AuditEntry.id))]
    assert actions[0] == "imagelist.import"
    assert actions.count("report.add") == 5
    assert actions[-2:] == ["image.suspend", "image.unsuspend"]

    # the signed variant of the list verifies against the CA, as a site's sync tool would
    with live_server(catalogue, Settings(signer=signer)) as url:
        signed = httpx.get(f"{url}/api/v1/vos/fedcloud/image.list").content
    (tmp_path / "list.smime").write_bytes(signed)
    proc = subprocess.run(["openssl", "smime", "-verify", "-in", str(tmp_path / "list.smime"),
                           "-CApath", str(pki.ca_dir)], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert listed_ids(json.loads(proc.stdout)) == ["img-good", "img-suspended"]
    resigned = parse_imagelist(signed, ca_dir=pki.ca_dir, now=utcnow())
    assert resigned.endorser_dn == "/C=EU/O=Test Grid/CN=Catalogue Service"
