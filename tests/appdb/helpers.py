"""Builders for catalogue tests: image lists, publish requests signed by a registered auditor,
a live server (the PKI and the reports are in ``tests.builders``)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from imageaudit.signing import public_pem, report_digest, sign_report
from integrations.appdb.api import Settings, create_app
from integrations.appdb.catalogue import Catalogue, Principal
from integrations.appdb.imagelist_write import Endorser, image_list, listed_image
from integrations.appdb.process import free_port
from integrations.appdb.schemas import PublishRequest, format_time

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
