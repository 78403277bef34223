"""What the catalogue serves to sites and legacy consumers.

- a per-VO HEPiX image list (JSON, optionally S/MIME signed, detached ``multipart/signed``, as
  vmcatcher/cloudkeeper expect; atrope reads only signed ones) holding only *listed* images,
  with the AppDB fields atrope requires;
- per image version, an AppDB ``endorsable`` security report and a Secant ``<SECANT>`` report.
Specs: HEPiX image list format; AppDB VA version "endorsable report"; Secant assessment XML;
openssl-smime(1).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509

from integrations.appdb.catalogue import Endorsement, Standing, VoList
from integrations.appdb.dn import openssl_dn
from integrations.appdb.schemas import format_time

LIST_VALIDITY = timedelta(days=7)
# AppDB's name for the image group of an appliance that defines none.
DEFAULT_GROUP = "General group"
_WEB_URL = re.compile(r"^https?://[^\s]+$", re.IGNORECASE)
_XML_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class SigningIdentity:
    """The catalogue's certificate and key for signing image lists."""

    cert: Path
    key: Path
    dn: str
    ca: str

    @classmethod
    def load(cls, cert: Path, key: Path) -> SigningIdentity:
        """Read the certificate's names (the key stays on disk for openssl)."""
        c = x509.load_pem_x509_certificate(cert.read_bytes())
        if not key.is_file():
            raise FileNotFoundError(f"signing key {key} not found")
        return cls(cert, key, openssl_dn(c.subject), openssl_dn(c.issuer))


def _endorser_fields(who: Endorsement | None, mpuri: str, catalogue_name: str) -> dict[str, str]:
    # AppDB names, per image, the person who registered it; here that is the endorser whose
    # list brought the image in. atrope refuses a whole list where one image lacks one.
    dn = who.dn if who else ""
    list_uri = who.list_uri if who else ""
    return {
        "ad:group": DEFAULT_GROUP,
        "ad:user:fullname": (who.name if who else "") or dn or catalogue_name,
        "ad:user:guid": str(uuid.uuid5(uuid.NAMESPACE_X500, dn or catalogue_name)),
        "ad:user:uri": list_uri if _WEB_URL.match(list_uri) else mpuri,
        "ad:appid": who.appliance if who else "",
    }


def image_entry(st: Standing, base_url: str, *, endorsement: Endorsement | None = None,
                catalogue_name: str = "") -> dict[str, Any]:
    """The ``hv:image`` object of a listed image; it expires with its certification.

    The AppDB fields atrope requires (``ad:group``, ``ad:user:*``) and ``ad:appid`` keep what
    the endorser's list gave; missing ones come from the endorser (``endorsement``).
    """
    v = st.version
    expiry = [t for t in (v.expires, st.report_expires) if t is not None]
    img: dict[str, Any] = {k: val for k, val in json.loads(v.extra or "{}").items()
                           if not k.startswith("imageaudit:")}
    mpuri = f"{base_url}/images/{st.image.identifier}"
    for key, value in _endorser_fields(endorsement, mpuri, catalogue_name).items():
        if img.get(key) in (None, ""):
            img[key] = value
    img.update({
        "dc:identifier": st.image.identifier, "dc:title": v.title,
        "dc:description": v.description, "hv:uri": v.uri, "hv:size": v.size,
        "sl:checksum:sha512": v.sha512, "hv:format": v.format, "hv:hypervisor": v.hypervisor,
        "hv:version": v.version, "sl:arch": v.arch, "sl:os": v.os, "sl:osname": v.osname,
        "sl:osversion": v.osversion, "sl:comments": v.comments, "ad:vo": st.image.vo.name,
        "ad:mpuri": mpuri, "imageaudit:level": st.level, "imageaudit:report": st.report_id,
    })
    if expiry:
        img["dc:date:expires"] = format_time(min(expiry))
    return {"hv:image": img}


def build_imagelist(vo: VoList, listed: list[Standing], *, base_url: str, now: datetime,
                    signer: SigningIdentity | None, catalogue_name: str) -> bytes:
    """The HEPiX image list JSON for ``vo`` (UTF-8 bytes).

    Its ``dc:identifier`` (and ``ad:swid``) is the VO's own stable UUID; its URLs start with
    ``base_url``, the catalogue's public URL. ``ad:vo`` at the list's level is what atrope
    (and AppDB's VO lists) use to share the images with the VO's project.
    """
    doc = {"hv:imagelist": {
        "dc:identifier": vo.list_uuid, "ad:swid": vo.list_uuid, "ad:vo": vo.name,
        "dc:title": f"{vo.name} endorsed images", "dc:description":
            f"Images of VO {vo.name} whose security level meets the VO minimum, "
            f"from {catalogue_name}",
        "dc:date:created": format_time(now), "dc:date:expires": format_time(now + LIST_VALIDITY),
        "dc:source": base_url, "hv:uri": f"{base_url}/api/v1/vos/{vo.name}/image.list",
        "hv:version": format_time(now),
        "hv:endorser": {"hv:x509": {"dc:creator": catalogue_name,
                                    "hv:ca": signer.ca if signer else "",
                                    "hv:dn": signer.dn if signer else "", "hv:email": ""}},
        "hv:images": [image_entry(st, base_url, catalogue_name=catalogue_name,
                                  endorsement=vo.endorsements.get(st.image.identifier))
                      for st in listed],
    }}
    return json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8")


class Signer:
    """Signs bodies with ``openssl smime -sign``; caches the last few (lists change rarely)."""

    def __init__(self, identity: SigningIdentity, timeout: float = 30.0) -> None:
        self.identity = identity
        self.timeout = timeout
        self._cache: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    def sign(self, body: bytes) -> bytes:
        """Detached S/MIME signature of ``body`` (``multipart/signed``)."""
        with self._lock:
            hit = self._cache.get(body)
        if hit is not None:
            return hit
        with tempfile.TemporaryDirectory(prefix="catalogue-sign-") as tmp:
            src = Path(tmp, "body")
            src.write_bytes(body)
            proc = subprocess.run(
                ["openssl", "smime", "-sign", "-in", str(src), "-signer", str(self.identity.cert),
                 "-inkey", str(self.identity.key), "-outform", "SMIME"],
                capture_output=True, timeout=self.timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError("openssl could not sign the image list: "
                               + proc.stderr.decode("utf-8", "replace")[:300])
        with self._lock:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[body] = proc.stdout
        return proc.stdout


def _clean(text: str | None) -> str:
    return _XML_BAD.sub("?", text or "")


def outcome(report: dict[str, Any], minimum: str) -> str:
    """Secant's outcome: OK when ``minimum`` is granted, INTERNAL_FAILURE when it failed only
    for checks that could not run, else FAIL."""
    levels = {lv.get("name"): lv for lv in report["certification"]["levels"]}
    lv = levels.get(minimum)
    if lv is None:
        return "INTERNAL_FAILURE"
    if lv.get("granted"):
        return "OK"
    blocking, unevaluated = set(lv.get("blocking", ())), set(lv.get("unevaluated", ()))
    return "INTERNAL_FAILURE" if blocking and blocking <= unevaluated else "FAIL"


def _findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report.get("findings", []) if f.get("status") in ("FAIL", "ERROR")]


def appdb_xml(st: Standing, report: dict[str, Any], minimum: str) -> bytes:
    """AppDB ``<endorsable>`` wrapper with one ``<report kind="security">``."""
    cert = report["certification"]
    root = ET.Element("endorsable", {"type": "vappliance:version",
                                     "identifier": _clean(st.image.identifier),
                                     "version": _clean(st.version.version)})
    rep = ET.SubElement(root, "report", {
        "kind": "security", "source": "imageaudit", "outcome": outcome(report, minimum),
        "level": _clean(cert["level"]), "issued": cert["issued"], "expires": cert["expires"],
        "checksum": st.version.sha512, "hashtype": "sha512",
        "ruleset": _clean(cert["ruleset_version"]), "tool": _clean(cert["tool_version"])})
    for f in _findings(report):
        el = ET.SubElement(rep, "finding", {"rule": _clean(f["rule_id"]), "status": f["status"],
                                            "severity": f["severity"]})
        el.text = _clean(f["message"])
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out


def secant_xml(st: Standing, report: dict[str, Any], minimum: str) -> bytes:
    """Secant-style ``<SECANT>`` assessment: one CHECK per judged rule that did not pass."""
    root = ET.Element("SECANT")
    for tag, text in (("VERSION", "1.0"), ("IMAGE_ID", st.image.identifier),
                      ("BASE_MPURI", st.version.uri), ("DATE", report["certification"]["issued"]),
                      ("OUTCOME", outcome(report, minimum)),
                      ("OUTCOME_DESCRIPTION", f"level {report['certification']['level']}, "
                                              f"catalogue minimum {minimum}")):
        ET.SubElement(root, tag).text = _clean(text)
    for f in _findings(report):
        check = ET.SubElement(root, "CHECK")
        ET.SubElement(check, "CHECK_ID").text = _clean(f["rule_id"])
        # Secant: ERROR = the check found a problem; INTERNAL_FAILURE = it could not run.
        status = "ERROR" if f["status"] == "FAIL" else "INTERNAL_FAILURE"
        ET.SubElement(check, "STATUS").text = status
        ET.SubElement(check, "SUMMARY").text = _clean(f["title"])
        ET.SubElement(check, "DETAILS").text = _clean(f["message"])
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out
