"""Builders for catalogue tests: a PKI made with openssl, image lists, reports, a live server."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from integrations.appdb.api import Settings, create_app
from integrations.appdb.catalogue import Catalogue
from integrations.appdb.process import free_port

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden" / "report.json"
FMT = "%Y-%m-%dT%H:%M:%SZ"


def stamp(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).strftime(FMT)


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


@dataclass(frozen=True)
class Pki:
    """A CA (hashed directory ``ca_dir``) and two leaf certificates it issued."""

    ca_dir: Path
    ca_dn: str
    endorser_cert: Path
    endorser_key: Path
    endorser_dn: str
    catalogue_cert: Path
    catalogue_key: Path
    other_ca_dir: Path


def make_pki(root: Path) -> Pki:
    """A test CA plus endorser and catalogue certificates, and an unrelated CA directory."""
    ca_dir, other = root / "ca", root / "other-ca"
    ca_dir.mkdir()
    other.mkdir()

    def selfsigned(d: Path, cn: str) -> tuple[Path, Path]:
        key, crt = d / "ca.key", d / "ca.pem"
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                str(crt), "-days", "30", "-subj", f"/C=EU/O=Test Grid/CN={cn}",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return crt, key

    ca_crt, ca_key = selfsigned(ca_dir, "Test Grid CA")
    selfsigned(other, "Other CA")

    def leaf(name: str, cn: str) -> tuple[Path, Path]:
        key, csr, crt = root / f"{name}.key", root / f"{name}.csr", root / f"{name}.pem"
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                "-subj", f"/C=EU/O=Test Grid/CN={cn}")
        ext = root / f"{name}.ext"
        ext.write_text("keyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\n")
        openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
                "-CAcreateserial", "-out", str(crt), "-days", "10", "-extfile", str(ext))
        return crt, key

    e_crt, e_key = leaf("endorser", "Image Endorser")
    c_crt, c_key = leaf("catalogue", "Catalogue Service")
    openssl("rehash", str(ca_dir))
    openssl("rehash", str(other))
    return Pki(ca_dir, "/C=EU/O=Test Grid/CN=Test Grid CA", e_crt, e_key,
               "/C=EU/O=Test Grid/CN=Image Endorser", c_crt, c_key, other)


def image_entry(ident: str, sha: str, vo: str, title: str, version: str = "1.0") -> dict[str, Any]:
    return {"hv:image": {
        "dc:identifier": ident, "dc:title": title, "dc:description": f"{title} image",
        "hv:uri": f"https://images.example.org/{ident}.qcow2", "hv:size": 4096,
        "sl:checksum:sha512": sha, "hv:format": "qcow2", "hv:hypervisor": "QEMU,KVM",
        "hv:version": version, "sl:arch": "x86_64", "sl:os": "Linux", "sl:osname": "Debian",
        "sl:osversion": "12", "sl:comments": "", "ad:vo": vo}}


def imagelist(images: list[dict[str, Any]], *, dn: str, ca: str,
              created: str | None = None, expires: str | None = None,
              ident: str = "3a9bd1b3-6a9a-4b5c-9d0e-0f1e2d3c4b5a") -> bytes:
    doc = {"hv:imagelist": {
        "dc:identifier": ident, "dc:title": "Test endorser images",
        "dc:description": "images for the catalogue tests",
        "dc:date:created": created or stamp(timedelta(minutes=-1)),
        "dc:date:expires": expires or stamp(timedelta(days=7)),
        "dc:source": "https://endorser.example.org/", "hv:uri": "https://endorser.example.org/list",
        "hv:version": "1",
        "hv:endorser": {"hv:x509": {"dc:creator": "Image Endorser", "hv:ca": ca, "hv:dn": dn,
                                    "hv:email": "endorser@example.org"}},
        "hv:images": images}}
    return json.dumps(doc, indent=1).encode()


def sign(body: bytes, cert: Path, key: Path) -> bytes:
    return openssl("smime", "-sign", "-signer", str(cert), "-inkey", str(key), stdin=body)


def sha512_of(text: str) -> str:
    return hashlib.sha512(text.encode()).hexdigest()


def make_report(sha: str, level: str, *, expires: timedelta = timedelta(days=30),
                issued: timedelta = timedelta(minutes=-1)) -> dict[str, Any]:
    """The golden report bound to ``sha``, granting every level up to ``level``."""
    doc: dict[str, Any] = copy.deepcopy(json.loads(GOLDEN.read_text()))
    doc["image"]["sha512"] = sha
    cert = doc["certification"]
    cert["image_sha512"] = sha
    cert["level"] = level
    names = [lv["name"] for lv in cert["levels"]]
    top = names.index(level) if level in names else -1
    for i, lv in enumerate(cert["levels"]):
        lv["granted"] = i <= top
        if lv["granted"]:
            lv["blocking"], lv["unevaluated"] = [], []
    cert["issued"], cert["expires"] = stamp(issued), stamp(expires)
    return doc


def body(report: dict[str, Any]) -> dict[str, Any]:
    rid = hashlib.sha256(json.dumps(report, sort_keys=True).encode()).hexdigest()
    return {"report_id": rid, "report": report}


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
