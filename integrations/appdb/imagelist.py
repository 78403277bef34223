"""Reading HEPiX image lists: S/MIME signature, signer identity, dates, image entries.

The checks are the ones vmcatcher and cloudkeeper make before trusting a list: the PKCS#7
signature verifies against the CA directory (``openssl smime -verify -CApath``), the signer's
subject equals ``hv:dn`` and its issuer ``hv:ca``, the list is not expired and was not created in
the future; every image carries a stable ``dc:identifier`` and a SHA-512. A refused list raises
``ImageListError`` with a sentence saying why.
Specs: HEPiX image list format (hepix.imagelist), RFC 8551 (S/MIME 4.0), openssl-smime(1).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509

from integrations.appdb.dn import dn_spellings, openssl_dn
from integrations.appdb.schemas import NAME_PATTERN, parse_time

MAX_LIST_BYTES = 32 * 1024 * 1024
OPENSSL_TIMEOUT = 60
# Endorsers' clocks drift; a list stamped a few minutes ahead is not "from the future".
CLOCK_SKEW = timedelta(minutes=5)
_SHA512 = re.compile(r"^[0-9a-f]{128}$")
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$")
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_VO = re.compile(NAME_PATTERN)
_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*):")
# Where sites, vmcatcher and the web page follow a link, only these schemes are accepted: a
# ``javascript:`` or ``file:`` URI from an endorser must never reach them.
WEB_SCHEMES = ("http", "https")


class ImageListError(Exception):
    """The image list is refused; the message says why."""


@dataclass(frozen=True, slots=True)
class Signer:
    """The certificate that signed a list: its names as ``hv:dn``/``hv:ca`` are written
    (:func:`~integrations.appdb.dn.openssl_dn`) and every spelling accepted for them."""

    subject: str
    issuer: str
    subject_spellings: frozenset[str]
    issuer_spellings: frozenset[str]


@dataclass(frozen=True, slots=True)
class ListedImage:
    """One ``hv:image`` entry, every string cleaned of control characters."""

    identifier: str
    version: str
    title: str
    description: str
    uri: str
    size: int | None
    sha512: str
    format: str
    hypervisor: str
    arch: str
    os: str
    osname: str
    osversion: str
    comments: str
    vo: str | None
    expires: datetime | None
    extra: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ImageList:
    """A verified image list."""

    identifier: str
    title: str
    version: str
    uri: str
    source: str
    created: datetime
    expires: datetime
    endorser_dn: str
    endorser_ca: str
    endorser_name: str
    endorser_email: str
    images: tuple[ListedImage, ...]
    signer: Signer | None


def is_smime(data: bytes) -> bool:
    """True when ``data`` is a MIME message (signed list) rather than bare JSON."""
    head = data.lstrip()[:4096].lower()
    return head.startswith(b"mime-version:") or head.startswith(b"content-type:")


def _openssl_error(proc: subprocess.CompletedProcess[bytes]) -> str:
    text = proc.stderr.decode("utf-8", "replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    reasons = [ln for ln in lines if "error" in ln.lower() or "fail" in ln.lower()]
    return _CTRL.sub("?", "; ".join((reasons or lines)[:3]))[:500] or f"exit {proc.returncode}"


def verify_smime(data: bytes, ca_dir: Path | None) -> tuple[bytes, Signer]:
    """Verify an S/MIME signed message; return the signed content and the signer.

    With ``ca_dir`` the signer's chain must verify against that (hashed, ``openssl rehash``)
    directory; without it only the signature over the content is checked (``-noverify``).
    """
    with tempfile.TemporaryDirectory(prefix="imagelist-") as tmp:
        src, out, signer_pem = Path(tmp, "in.msg"), Path(tmp, "content"), Path(tmp, "signer.pem")
        src.write_bytes(data)
        cmd = ["openssl", "smime", "-verify", "-in", str(src), "-out", str(out),
               "-signer", str(signer_pem)]
        cmd += ["-CApath", str(ca_dir)] if ca_dir is not None else ["-noverify"]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=OPENSSL_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ImageListError("signature verification timed out") from exc
        if proc.returncode != 0:
            raise ImageListError(f"signature verification failed: {_openssl_error(proc)}")
        cert = x509.load_pem_x509_certificate(signer_pem.read_bytes())
        content = out.read_bytes()
    signer = Signer(openssl_dn(cert.subject), openssl_dn(cert.issuer),
                    dn_spellings(cert.subject), dn_spellings(cert.issuer))
    return _strip_mime_headers(content), signer


def _strip_mime_headers(content: bytes) -> bytes:
    # Signed with ``-text`` the content starts with its own Content-Type header block.
    if content.lstrip()[:1] in (b"{", b"["):
        return content
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, body = content.partition(sep)
        if found and head.lower().startswith(b"content-type:"):
            return body
    return content


def _text(obj: dict[str, Any], key: str, *, required: bool = False, limit: int = 4096) -> str:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise ImageListError(f"missing {key!r}")
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ImageListError(f"{key!r} is not a string")
    if len(value) > limit:
        raise ImageListError(f"{key!r} is longer than {limit} characters")
    return _CTRL.sub("", value)


def _time(obj: dict[str, Any], key: str, *, required: bool) -> datetime | None:
    raw = _text(obj, key, required=required)
    if not raw:
        return None
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise ImageListError(f"{key!r} is not a %Y-%m-%dT%H:%M:%SZ time: {raw[:40]!r}") from exc


def check_uri(value: str, what: str, *, free_text: bool = False) -> str:
    """``value`` when it is an absolute http(s) URL with a host (or empty).

    With ``free_text`` a value without any scheme is kept as text (``dc:source`` is often a
    name); a value with a scheme must still be http(s).
    """
    if not value:
        return value
    scheme = _SCHEME.match(value)
    if scheme is None and free_text:
        return value
    try:
        host = urllib.parse.urlsplit(value).hostname
    except ValueError:  # a malformed [IPv6] netloc
        host = None
    if (scheme is None or scheme.group(1).lower() not in WEB_SCHEMES or not host
            or any(c.isspace() for c in value)):
        raise ImageListError(f"{what} {value[:80]!r} is not an http or https URL")
    return value


def _is_link(key: str) -> bool:
    low = key.lower()
    return low.endswith(("uri", "url")) or low in ("dc:source",)


def _image(entry: Any, index: int) -> ListedImage:
    img = entry.get("hv:image") if isinstance(entry, dict) else None
    if not isinstance(img, dict):
        raise ImageListError(f"hv:images[{index}] has no hv:image object")
    ident = _text(img, "dc:identifier", required=True, limit=255)
    if not _IDENT.match(ident):
        raise ImageListError(
            f"hv:images[{index}] dc:identifier {ident[:80]!r} is not an identifier")
    sha = _text(img, "sl:checksum:sha512", required=True).lower()
    if not _SHA512.match(sha):
        raise ImageListError(f"image {ident}: sl:checksum:sha512 is not 128 hex digits")
    size_raw = img.get("hv:size")
    size: int | None = None
    if size_raw not in (None, ""):
        try:
            size = int(str(size_raw))
        except ValueError as exc:
            raise ImageListError(f"image {ident}: hv:size is not an integer") from exc
        if not 0 <= size <= 2**62:
            raise ImageListError(f"image {ident}: hv:size out of range")
    known = {"dc:identifier", "hv:version", "dc:title", "dc:description", "hv:uri", "hv:size",
             "sl:checksum:sha512", "hv:format", "hv:hypervisor", "sl:arch", "sl:os",
             "sl:osname", "sl:osversion", "sl:comments", "ad:vo", "dc:date:expires"}
    extra = tuple(sorted((k[:128], _text(img, k)) for k in img
                         if k not in known and isinstance(img[k], str | int | float)))
    for key, value in extra:
        if _is_link(key):
            check_uri(value, f"image {ident}: {key}", free_text=key.lower() == "dc:source")
    vo = _text(img, "ad:vo", limit=63) or None
    if vo is not None and not _VO.match(vo):
        raise ImageListError(f"image {ident}: ad:vo {vo[:80]!r} is not a VO name "
                             "(letters, digits, '.', '_', '-'; up to 63)")
    return ListedImage(
        identifier=ident, version=_text(img, "hv:version", limit=255) or "0",
        title=_text(img, "dc:title", limit=1024),
        description=_text(img, "dc:description", limit=65536),
        uri=check_uri(_text(img, "hv:uri", limit=2048), f"image {ident}: hv:uri"),
        size=size, sha512=sha,
        format=_text(img, "hv:format", limit=64), hypervisor=_text(img, "hv:hypervisor", limit=255),
        arch=_text(img, "sl:arch", limit=64), os=_text(img, "sl:os", limit=255),
        osname=_text(img, "sl:osname", limit=255), osversion=_text(img, "sl:osversion", limit=255),
        comments=_text(img, "sl:comments", limit=65536), vo=vo,
        expires=_time(img, "dc:date:expires", required=False), extra=extra[:64])


def parse_imagelist(data: bytes, *, ca_dir: Path | None, now: datetime) -> ImageList:
    """Verify and parse an image list (plain JSON or S/MIME signed) as of ``now``.

    A CA directory demands a signed list; a signed list is always checked against its
    ``hv:dn``/``hv:ca``.
    """
    if len(data) > MAX_LIST_BYTES:
        raise ImageListError(f"image list larger than {MAX_LIST_BYTES} bytes")
    signer: Signer | None = None
    if is_smime(data):
        data, signer = verify_smime(data, ca_dir)
    elif ca_dir is not None:
        raise ImageListError("image list is not signed, but a CA directory was given to verify it")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImageListError(f"image list is not JSON: {exc}") from exc
    top = doc.get("hv:imagelist") if isinstance(doc, dict) else None
    if not isinstance(top, dict):
        raise ImageListError("no hv:imagelist object")
    x509_obj = (top.get("hv:endorser") or {}).get("hv:x509") if isinstance(
        top.get("hv:endorser"), dict) else None
    if not isinstance(x509_obj, dict):
        raise ImageListError("no hv:endorser/hv:x509 object")
    dn = _text(x509_obj, "hv:dn", required=True, limit=1024)
    ca = _text(x509_obj, "hv:ca", required=True, limit=1024)
    if signer is not None:
        if dn not in signer.subject_spellings:
            raise ImageListError(f"signer {signer.subject!r} is not the endorser hv:dn {dn!r}")
        if ca not in signer.issuer_spellings:
            raise ImageListError(
                f"signer issuer {signer.issuer!r} is not the endorser hv:ca {ca!r}")
    created = _time(top, "dc:date:created", required=True)
    expires = _time(top, "dc:date:expires", required=True)
    assert created is not None and expires is not None
    if expires <= now:
        raise ImageListError(f"image list expired on {top['dc:date:expires']}")
    if created > now + CLOCK_SKEW:
        raise ImageListError(f"image list created in the future ({top['dc:date:created']})")
    raw_images = top.get("hv:images", [])
    if not isinstance(raw_images, list):
        raise ImageListError("hv:images is not a list")
    images = tuple(_image(e, i) for i, e in enumerate(raw_images))
    idents = [im.identifier for im in images]
    if len(set(idents)) != len(idents):
        raise ImageListError("an image dc:identifier appears twice in the list")
    ident = _text(top, "dc:identifier", required=True, limit=255)
    if not _IDENT.match(ident):
        raise ImageListError(f"list dc:identifier {ident[:80]!r} is not an identifier")
    return ImageList(
        identifier=ident, title=_text(top, "dc:title", limit=1024),
        version=_text(top, "hv:version", limit=255),
        uri=check_uri(_text(top, "hv:uri", limit=2048), "list hv:uri"),
        source=check_uri(_text(top, "dc:source", limit=2048), "list dc:source", free_text=True),
        created=created, expires=expires,
        endorser_dn=dn, endorser_ca=ca, endorser_name=_text(x509_obj, "dc:creator", limit=512),
        endorser_email=_text(x509_obj, "hv:email", limit=512), images=images, signer=signer)
