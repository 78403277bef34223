"""Builders for catalogue tests: image lists, genuine signed reports, a live server (the PKI is
``tests.builders.pki``)."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from imageaudit.certify import load_levels, required_rules
from imageaudit.engine import worst_status
from imageaudit.model import Status
from imageaudit.signing import public_pem, report_digest, sign_report
from integrations.appdb.api import Settings, create_app
from integrations.appdb.catalogue import Catalogue, Principal
from integrations.appdb.imagelist_write import Endorser, image_list, listed_image
from integrations.appdb.process import free_port
from integrations.appdb.schemas import PublishRequest, format_time
from integrations.appdb.verify import _outcomes, expected_certification, shipped_levels_file

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden" / "report.json"
# Who the tests act as when they administer the catalogue.
ADMIN = Principal("test", "admin")
# The auditor the tests publish as: its token is named AUDITOR and this key is registered for it.
AUDITOR = "ci"
AUDITOR_KEY = Ed25519PrivateKey.generate()


def stamp(delta: timedelta = timedelta(0)) -> str:
    return format_time(datetime.now(UTC) + delta)


def image_entry(ident: str, sha: str, vo: str, title: str, version: str = "1.0") -> dict[str, Any]:
    """An image of SHA-512 ``sha`` as the product's list writer lists it."""
    return listed_image(ident, sha, 4096, title=title, description=f"{title} image", fmt="qcow2",
                        vo=vo, uri=f"https://images.example.org/{ident}.qcow2",
                        version=version, hypervisor="QEMU,KVM")


def imagelist(images: list[dict[str, Any]], *, dn: str, ca: str,
              created: str | None = None, expires: str | None = None,
              ident: str = "3a9bd1b3-6a9a-4b5c-9d0e-0f1e2d3c4b5a") -> bytes:
    """An unsigned list of ``images`` by the endorser ``dn`` under ``ca``, as the product's list
    writer makes it (valid for a week), with its dates replaced where given."""
    endorser = Endorser(dn=dn, ca=ca, creator="Image Endorser", email="endorser@example.org")
    doc = image_list(images, identifier=ident, title="Test endorser images",
                     description="images for the catalogue tests", endorser=endorser,
                     source="https://endorser.example.org/",
                     uri="https://endorser.example.org/list", valid=timedelta(days=7))
    if created is not None:
        doc["hv:imagelist"]["dc:date:created"] = created
    if expires is not None:
        doc["hv:imagelist"]["dc:date:expires"] = expires
    return json.dumps(doc, indent=1).encode()


def sha512_of(text: str) -> str:
    return hashlib.sha512(text.encode()).hexdigest()


def make_report(sha: str, level: str, *, expires: timedelta = timedelta(days=30),
                issued: timedelta = timedelta(minutes=-1)) -> dict[str, Any]:
    """A genuine report bound to ``sha`` that reaches ``level``: the golden report with the
    findings that would block ``level`` (or one below) turned into passes, and the rules'
    statuses, the summary and the certification recomputed as imageaudit does."""
    doc: dict[str, Any] = copy.deepcopy(json.loads(GOLDEN.read_text()))
    doc["image"]["sha512"] = sha
    cert = doc["certification"]
    cert["image_sha512"] = sha
    cert["issued"], cert["expires"] = stamp(issued), stamp(expires)
    levels = load_levels(shipped_levels_file())
    names = list(levels.names())
    required = required_rules(levels, _outcomes(doc))
    if level in names:
        for f in doc["findings"]:
            if f["rule_id"] in required[level] and f["status"] in ("FAIL", "ERROR"):
                f["status"], f["message"] = "PASS", "Passes (made so by the test)"
        if level != names[-1]:
            # Keep the next level out of reach: a waived finding it requires is not waived.
            above = set(required[names[names.index(level) + 1]]) - set(required[level])
            for f in doc["findings"]:
                if f["rule_id"] in above and f["status"] == "WAIVED":
                    f.update(status="FAIL", waived=False, waiver=None)
    _settle(doc)
    got = expected_certification(doc, levels)
    assert got.level == level, (got.level, level)
    cert["level"] = got.level
    cert["levels"] = [{"name": lv.name, "description": lv.description, "granted": lv.granted,
                       "blocking": list(lv.blocking), "unevaluated": list(lv.unevaluated)}
                      for lv in got.levels]
    return doc


def _settle(doc: dict[str, Any]) -> None:
    """Rules' statuses and the summary from the findings, as imageaudit makes them."""
    for rule in doc["rules"]:
        statuses = {Status(f["status"]) for f in doc["findings"] if f["rule_id"] == rule["id"]}
        rule["status"] = worst_status(statuses).value
    doc["summary"] = {st: sum(f["status"] == st for f in doc["findings"])
                      for st in ("PASS", "FAIL", "ERROR", "NOT_APPLICABLE", "WAIVED")}


def body(report: dict[str, Any], key: Ed25519PrivateKey | None = AUDITOR_KEY) -> dict[str, Any]:
    """The publish request: the report, its canonical id, and ``key``'s signature."""
    doc: dict[str, Any] = {"report_id": report_digest(report), "report": report}
    if key is not None:
        doc["signature"] = sign_report(report, key)
    return doc


def add_auditor(cat: Catalogue, name: str = AUDITOR,
                key: Ed25519PrivateKey = AUDITOR_KEY) -> str:
    """Register ``key`` as ``name``'s; its key id."""
    pem = public_pem(key.public_key()).encode()
    return cat.add_auditor_key(name, pem, ADMIN)


def store_report(cat: Catalogue, report: dict[str, Any]) -> None:
    """Store ``report`` in ``cat`` directly (as ADMIN), signed with the test auditor's key."""
    sent = body(report)
    cat.add_report(PublishRequest.model_validate(sent), ADMIN, raw=sent["report"])


@contextmanager
def live_server(catalogue: Catalogue, settings: Settings | None = None) -> Iterator[str]:
    """Serve ``catalogue`` with uvicorn on 127.0.0.1 in a thread; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(create_app(catalogue, settings), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
