"""VM images held as OCI artefacts in a registry: pull the disk, attach the audit report to it.

EGI's registry (Harbor) keeps VM images as OCI artefacts: an image manifest whose one layer is
the disk. ``oci://REGISTRY[:PORT]/PATH/REPO:TAG`` or ``…@sha256:HEX`` names one (both tag and
digest may be given; the digest then decides what is fetched). The registry protocol (auth from
the Docker config and token realms, manifest and blob URLs, blob uploads) is oras's; this module
adds what an auditor needs on top, because every byte a registry sends is hostile:

- A manifest is read up to :data:`MAX_MANIFEST_BYTES` and, when fetched by digest, must hash to
  it (the digest in the reference is what the user trusts, not the registry's word). JSON with
  duplicate keys is refused: two parsers could read two different manifests from it.
- The disk layer is the one layer whose media type is a disk type (:data:`DISK_MEDIA_TYPES`,
  ``application/x-qemu-disk`` first); when no layer declares one, the one layer whose first
  bytes are a qcow2/vmdk/vdi/vhdx/vhd header (oras pushes files as
  ``application/vnd.oci.image.layer.v1.tar`` unless told otherwise) or whose media type is
  ``application/octet-stream`` (a raw disk has no header to sniff). Two candidates: refused,
  rather than auditing one of them at random.
- An image index (or Docker manifest list) is followed only when exactly one of its entries is
  for linux/amd64, and only one level deep; otherwise it is refused, listing the platforms. The
  manifest digest given back (and the subject a report is attached to) is then that entry's:
  the manifest that holds the disk that was audited.
- The blob is streamed to ``<cache_dir>/oci/<algorithm>/<hex>``, content-addressed by the
  layer digest, through a part file in the same directory renamed into place only after its
  digest matched; a wrong digest removes the part file. A cached file of the declared size is
  used without any blob request (it was checked when written). ``max_bytes`` bounds the
  declared size and the bytes read.
- Every request has a connect and a read timeout; a body (manifest, error, start of a blob) is
  read in at most :data:`SMALL_READ_SECONDS` and a disk in :data:`DOWNLOAD_BASE_SECONDS` plus
  one second per :data:`DOWNLOAD_MIN_RATE` bytes, after which a timer cuts the connection (the
  read timeout alone lets a body come a byte a minute). GET and HEAD are tried
  :data:`REQUEST_TRIES` times on connection errors, timeouts, 429 and 502-504; oras's own retry
  sleeps for minutes and sets no timeout, so :class:`_Client` replaces it.
- A 404 for a manifest is told apart as an unknown repository or an unknown tag/digest by the
  repository's tag list: distribution answers MANIFEST_UNKNOWN for both.

A report is attached as an OCI 1.1 referrer: an image manifest with ``artifactType`` the report's
media type, the empty config and the report as its one layer, whose ``subject`` is the audited
manifest. A registry with the referrers API answers the push with ``OCI-Subject`` (or, failing
that, answers ``GET /v2/<name>/referrers/<digest>`` with 200) and lists it by itself; one
without (distribution 2.8 among them) gets the distribution spec's referrers tag schema:
the image index tagged ``<alg>-<hex>`` (the subject's digest, hex cut to 64) lists the
referrers, and is read, extended and pushed back. The same report with the same annotations
makes the same manifest (canonical JSON), so attaching it twice lists it once. Two writers
updating one referrers tag at once can lose an entry; the index is read back after each push and
the update redone, up to :data:`TAG_UPDATE_TRIES` times, which narrows that window without
closing it (distribution has no conditional PUT).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import stat
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import oras.container
import oras.provider
import requests
import requests.adapters

from imageaudit.openers import formatparse
from imageaudit.openers.docker_daemon import shown

PREFIX = "oci://"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
REPORT_MEDIA_TYPE = "application/vnd.imageaudit.report.v1+json"
# Disk image media types (freedesktop shared-mime-info names); the first is the one EGI uses.
DISK_MEDIA_TYPES = (
    "application/x-qemu-disk",
    "application/x-raw-disk-image",
    "application/x-virtualbox-vdi",
    "application/x-virtualbox-vmdk",
    "application/x-virtualbox-vhd",
    "application/x-virtualbox-vhdx",
)
# A layer of this type is a disk only if it is the one candidate (a raw disk has no header).
OCTET_STREAM = "application/octet-stream"
# Layers of these types are compressed tars, never a disk: their bytes are not sniffed.
_COMPRESSED = re.compile(r"(\+|\.)(gzip|zstd|bzip2|xz)$|\+encrypted$")
# The header formats that make a layer of another type a disk (formatparse.magics names).
SNIFFED_FORMATS = frozenset({"qcow2", "vmdk", "vdi", "vhdx", "vpc"})
SNIFF_BYTES = 4096

MAX_REF_CHARS = 1024
MAX_NAME_CHARS = 255  # registry host, "/" and repository name together (distribution spec)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # what the distribution spec asks registries to accept
MAX_ERROR_BYTES = 64 * 1024
MAX_LAYERS = 128
MAX_INDEX_ENTRIES = 4096
MAX_REFERRER_PAGES = 16
MAX_REPORT_BYTES = 64 * 1024 * 1024
MAX_ANNOTATIONS = 64
MAX_ANNOTATION_CHARS = 4096
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
SMALL_READ_SECONDS = 120.0  # a manifest, an error, the start of a blob
DOWNLOAD_BASE_SECONDS = 300.0
DOWNLOAD_MIN_RATE = 1024 * 1024  # bytes per second a download may not fall below on average
REQUEST_TRIES = 3
RETRY_DELAY = 1.0  # doubled after each failed try
RETRY_STATUSES = frozenset({429, 502, 503, 504})
TAG_UPDATE_TRIES = 3
CHUNK = 1024 * 1024

_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(?:{_HOST_LABEL})(?:\.{_HOST_LABEL})*")
_PORT = re.compile(r"[1-9][0-9]{0,4}")
# OCI distribution spec 1.1, "Pulling manifests": <name> and <reference> as a tag.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
_DIGEST_HEX = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")
# RFC 6838 type/subtype, as the image spec requires of every mediaType.
_MEDIA_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)


class RegistryError(Exception):
    """A reference is invalid, or a registry refused, failed or sent something unacceptable;
    the message names the reference and the reason."""

    def __init__(self, reference: str, reason: str) -> None:
        self.reference = reference[:MAX_REF_CHARS]
        self.reason = reason
        super().__init__(f"{shown(self.reference)}: {reason}")

    def __reduce__(self) -> tuple[type[RegistryError], tuple[str, str]]:
        # Raised in Dask workers and pickled back: rebuild from both arguments.
        return type(self), (self.reference, self.reason)


def digest_error(digest: str) -> str | None:
    """Why ``digest`` is not ``sha256:<64 hex>`` or ``sha512:<128 hex>``, or ``None``."""
    alg, colon, hexpart = digest.partition(":")
    if not colon:
        return f"digest {shown(digest[:200])!r} is not ALGORITHM:HEX"
    if alg not in _DIGEST_HEX:
        return f"digest algorithm {shown(alg[:40])!r} is not accepted (sha256, sha512)"
    if len(hexpart) != _DIGEST_HEX[alg] or not _HEX.fullmatch(hexpart):
        return f"a {alg} digest is {_DIGEST_HEX[alg]} lowercase hex digits"
    return None


def _registry_error(registry: str) -> str | None:
    """Why ``registry`` is not ``host[:port]`` (a lowercase DNS name, an IPv4 address or a
    bracketed IPv6 address), or ``None``."""
    if registry.startswith("["):
        host, bracket, rest = registry[1:].partition("]")
        try:
            IPv6Address(host)
        except ValueError:
            host = ""
        if not host or "%" in host or not bracket or (rest and not rest.startswith(":")):
            return f"registry {shown(registry[:300])!r} is not a valid [IPv6] address"
        port = rest[1:] if rest else None
    else:
        host, colon, port_text = registry.partition(":")
        port = port_text if colon else None
        if not _HOST.fullmatch(host):
            return f"registry host {shown(host[:300])!r} is not a valid lowercase host name"
    if port is not None and not (_PORT.fullmatch(port) and int(port) <= 65535):
        return f"registry port {shown(port[:20])!r} is not a number from 1 to 65535"
    return None


@dataclass(frozen=True, slots=True)
class OciRef:
    """An artefact in a registry: ``registry`` is ``host[:port]`` (host lowercase),
    ``repository`` the distribution-spec name, and at least one of ``tag`` and ``digest``."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        reason = _registry_error(self.registry) or (
            None if _NAME.fullmatch(self.repository) else
            f"repository name {shown(self.repository[:300])!r} is not valid (lowercase "
            "letters and digits, components joined by '.', '_', '__' or '-', separated by '/')"
        )
        if reason is None and len(self.registry) + 1 + len(self.repository) > MAX_NAME_CHARS:
            reason = f"registry and repository name are over {MAX_NAME_CHARS} characters"
        if reason is None and self.tag is not None and not _TAG.fullmatch(self.tag):
            reason = (f"tag {shown(self.tag[:200])!r} is not valid (letters, digits, '_', "
                      "'.', '-', not starting with '.' or '-', at most 128 characters)")
        if reason is None and self.digest is not None:
            reason = digest_error(self.digest)
        if reason is None and self.tag is None and self.digest is None:
            reason = "no tag or digest (give :TAG or @sha256:HEX)"
        if reason is not None:
            raise RegistryError(self._text(), reason)

    def _text(self) -> str:
        text = f"{PREFIX}{self.registry}/{self.repository}"
        text += f":{self.tag}" if self.tag is not None else ""
        return text + (f"@{self.digest}" if self.digest is not None else "")

    def __str__(self) -> str:
        return self._text()

    @property
    def reference(self) -> str:
        """What a manifest is fetched by: the digest when there is one, else the tag."""
        return self.digest or self.tag or ""


def parse_oci_ref(text: str) -> OciRef:
    """``oci://REGISTRY[:PORT]/NAME[:TAG][@ALG:HEX]`` checked against the distribution spec's
    grammars; :class:`RegistryError` naming the text and the reason otherwise."""
    if len(text) > MAX_REF_CHARS:
        raise RegistryError(text, f"a reference is at most {MAX_REF_CHARS} characters")
    if not text.startswith(PREFIX):
        raise RegistryError(text, f"an OCI reference starts with {PREFIX}")
    registry, slash, rest = text[len(PREFIX):].partition("/")
    if not registry or not slash:
        raise RegistryError(text, "expected oci://REGISTRY[:PORT]/NAME:TAG or …@sha256:HEX")
    name, at, digest = rest.partition("@")
    if at and not digest:
        raise RegistryError(text, "nothing after '@' (expected a digest)")
    name, colon, tag = name.partition(":")
    if colon and not tag:
        raise RegistryError(text, "nothing after ':' (expected a tag)")
    try:
        # Host names (and IPv6 hex) are case-insensitive: the canonical form is lowercase.
        return OciRef(registry.lower(), name, tag if colon else None, digest if at else None)
    except RegistryError as exc:
        raise RegistryError(text, exc.reason) from None


@dataclass(frozen=True, slots=True)
class PulledDisk:
    """A disk taken from a registry: the cached file and what it was taken from."""

    path: Path
    manifest_digest: str  # the image manifest holding the disk (an index's linux/amd64 entry)
    layer_digest: str
    media_type: str  # the layer's declared media type
    size: int


# --- the client ------------------------------------------------------------------------------


class _TimeoutAdapter(requests.adapters.HTTPAdapter):
    """Every request of the session (token realms included) gets a connect and read timeout."""

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: float | tuple[float | None, float | None] | None = None,
             verify: bool | str = True, cert: str | tuple[str, str] | None = None,
             proxies: Mapping[str, str] | None = None) -> requests.Response:
        return super().send(request, stream=stream,
                            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT) if timeout is None else timeout,
                            verify=verify, cert=cert, proxies=dict(proxies or {}))


# oras's Registry.do_request without its retry decorator (five tries, sleeping up to 83 s).
_ORAS_REQUEST: Callable[..., requests.Response] = getattr(
    oras.provider.Registry.do_request, "__wrapped__", oras.provider.Registry.do_request)


class _Client(oras.provider.Registry):  # type: ignore[misc]
    """oras's registry client with timeouts and a short, bounded retry of GET and HEAD."""

    def __init__(self, ref: OciRef, insecure: bool) -> None:
        super().__init__(hostname=ref.registry, insecure=insecure)
        adapter = _TimeoutAdapter()
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.ref = ref
        self.container = oras.container.Container("placeholder", registry=ref.registry)
        # Set, not parsed: oras's own parser takes a first component with a dot for a host.
        namespace, _, repository = ref.repository.rpartition("/")
        self.container.namespace = namespace or None
        self.container.repository = repository
        self.container.tag = ref.tag
        self.container.digest = ref.digest
        self.auth.load_configs(self.container)

    def do_request(self, url: str, method: str = "GET", data: Any = None,
                   headers: dict[str, str] | None = None, json: Any = None,
                   stream: bool = False) -> requests.Response:
        tries = REQUEST_TRIES if method in ("GET", "HEAD") else 1
        for attempt in range(1, tries + 1):
            try:
                response = _ORAS_REQUEST(self, url, method, data, dict(headers or {}), json,
                                         stream)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == tries or isinstance(exc, requests.exceptions.SSLError):
                    raise
            else:
                if response.status_code not in RETRY_STATUSES or attempt == tries:
                    return response
                response.close()
            time.sleep(RETRY_DELAY * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def url(self, path: str) -> str:
        """``path`` under this repository's ``/v2/<name>/``."""
        return f"{self.prefix}://{self.ref.registry}/v2/{self.ref.repository}/{path}"


@contextlib.contextmanager
def _talking(ref: OciRef | str, what: str) -> Iterator[None]:
    """Anything oras or the network raises becomes a :class:`RegistryError` saying ``what``."""
    try:
        yield
    except RegistryError:
        raise
    except requests.Timeout:
        raise RegistryError(str(ref), f"{what}: timed out") from None
    except requests.exceptions.SSLError as exc:
        raise RegistryError(str(ref), f"{what}: TLS failed: {_short(exc)}") from None
    except requests.ConnectionError as exc:
        # requests nests the reason in its message: the errno's words are the useful part.
        errno = _ERRNO.search(str(exc))
        raise RegistryError(str(ref), f"{what}: cannot connect: "
                                      f"{errno[1] if errno else _short(exc)}") from None
    except Exception as exc:  # oras raises ValueError, KeyError, ... on what a registry sends
        raise RegistryError(str(ref), f"{what}: {type(exc).__name__}: {_short(exc)}") from None


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]{1,200})")


def _short(exc: BaseException) -> str:
    text = shown(str(exc))
    return text if len(text) <= 300 else text[:300] + "…"


class _Watchdog:
    """Cuts a streamed response's connection when ``seconds`` have passed.

    The read timeout bounds each ``recv``, not a body sent a byte a minute; shutting the socket
    down from a timer thread ends the read that is waiting. :meth:`check` then says so."""

    def __init__(self, response: requests.Response, seconds: float) -> None:
        self.response = response
        self.seconds = seconds
        self.fired = threading.Event()
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True

    def _fire(self) -> None:
        self.fired.set()
        # The body is read from http.client's file over the socket (urllib3 keeps the socket
        # on its connection only while the connection stays open for another request).
        raw = self.response.raw
        body_file = getattr(getattr(getattr(raw, "_fp", None), "fp", None), "raw", None)
        for sock in (getattr(body_file, "_sock", None),
                     getattr(getattr(raw, "connection", None), "sock", None)):
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def check(self, ref: OciRef | str, what: str) -> None:
        if self.fired.is_set():
            raise RegistryError(str(ref), f"{what} took longer than the {self.seconds:.0f} s "
                                          "allowed")

    def __enter__(self) -> _Watchdog:
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()


def _read_bounded(response: requests.Response, limit: int) -> bytes | None:
    """The body, or ``None`` when it is longer than ``limit`` bytes; in at most
    :data:`SMALL_READ_SECONDS`."""
    data = bytearray()
    with _Watchdog(response, SMALL_READ_SECONDS) as watchdog:
        try:
            for chunk in response.iter_content(chunk_size=64 * 1024):
                data += chunk
                if len(data) > limit:
                    return None
        except requests.RequestException:
            watchdog.check(response.url, "reading the answer")
            raise
    watchdog.check(response.url, "reading the answer")
    return bytes(data)


def _status_reason(response: requests.Response) -> str:
    """``HTTP 404 (MANIFEST_UNKNOWN: manifest unknown)``, from the registry's error body."""
    reason = f"HTTP {response.status_code}"
    try:
        body = _read_bounded(response, MAX_ERROR_BYTES) or b""
        errors = json.loads(body).get("errors")
    except (ValueError, RecursionError, AttributeError, requests.RequestException):
        return reason
    if isinstance(errors, list):
        parts = [f"{e.get('code')}: {e.get('message')}" for e in errors[:3] if isinstance(e, dict)]
        if parts:
            reason += f" ({shown('; '.join(parts))[:300]})"
    return reason


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {shown(key[:100])!r}")
        out[key] = value
    return out


def _json_object(ref: OciRef | str, what: str, data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise RegistryError(str(ref), f"{what} is not valid JSON: {_short(exc)}") from None
    if not isinstance(doc, dict):
        raise RegistryError(str(ref), f"{what} is not a JSON object")
    return doc


def _digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _descriptor(ref: OciRef | str, what: str, value: object) -> dict[str, Any]:
    """A content descriptor, checked: media type, digest, size (extra fields kept)."""
    if not isinstance(value, dict):
        raise RegistryError(str(ref), f"{what} is not a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not _MEDIA_TYPE.fullmatch(media_type):
        raise RegistryError(str(ref), f"{what} has no valid mediaType")
    if not isinstance(digest, str) or (reason := digest_error(digest)) is not None:
        raise RegistryError(str(ref), f"{what}: {reason or 'no digest'}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise RegistryError(str(ref), f"{what} has no valid size")
    return value


@dataclass(frozen=True, slots=True)
class _Manifest:
    digest: str
    media_type: str
    data: bytes
    doc: dict[str, Any]


class _NotFound(RegistryError):
    """The repository exists, the manifest asked for does not (404)."""


def _repository_missing(client: _Client) -> str | None:
    """Why the repository does not exist (its tag list is a 404), or ``None``.

    Distribution answers a manifest of an unknown repository with MANIFEST_UNKNOWN, as for an
    unknown tag; only the tag list tells the two apart (NAME_UNKNOWN)."""
    url = f"{client.prefix}://{client.container.tags_url(N=1)}"
    with _talking(client.ref, "listing tags"), \
            client.do_request(url, "GET", stream=True) as response:
        return _status_reason(response) if response.status_code == 404 else None


def _fetch_manifest(client: _Client, reference: str, accept: tuple[str, ...],
                    what: str = "manifest") -> _Manifest:
    """The manifest ``reference`` (tag or digest) names, checked. A 404 is :class:`_NotFound`,
    or a plain :class:`RegistryError` when the whole repository is missing."""
    ref = client.ref
    with _talking(ref, f"fetching the {what}"):
        url = f"{client.prefix}://{client.container.manifest_url(reference)}"
        with client.do_request(url, "GET", headers={"Accept": ", ".join(accept)},
                               stream=True) as response:
            if response.status_code == 404:
                reason = _status_reason(response)
                missing = _repository_missing(client)
                if missing is not None:
                    raise RegistryError(str(ref), f"repository {ref.repository} not found: "
                                                  f"{missing}")
                raise _NotFound(str(ref), f"{what} {reference} not found: {reason}")
            if response.status_code != 200:
                raise RegistryError(str(ref), f"fetching the {what} {reference}: "
                                              f"{_status_reason(response)}")
            data = _read_bounded(response, MAX_MANIFEST_BYTES)
            header_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            header_digest = response.headers.get("Docker-Content-Digest")
    if data is None:
        raise RegistryError(str(ref), f"the {what} is over {MAX_MANIFEST_BYTES} bytes")
    if digest_error(reference) is None:
        actual = _digest_of(data, reference.partition(":")[0])
        if actual != reference:
            raise RegistryError(str(ref), f"the {what} fetched by digest {reference} hashes to "
                                          f"{actual}: the registry sent other content")
        digest = reference
    else:
        digest = _digest_of(data)
        if (header_digest and digest_error(header_digest) is None
                and _digest_of(data, header_digest.partition(":")[0]) != header_digest):
            raise RegistryError(str(ref), f"the {what} for tag {reference} does not hash to "
                                          f"the Docker-Content-Digest {header_digest}")
    doc = _json_object(ref, f"the {what}", data)
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise RegistryError(str(ref), f"the {what}'s mediaType is not a string")
    media_type = declared or header_type
    if declared and header_type and header_type != declared:
        raise RegistryError(str(ref), f"the {what} says it is {shown(declared)} but was sent "
                                      f"as {shown(header_type)}")
    if media_type not in accept:
        raise RegistryError(str(ref), f"the {what} is {shown(media_type or 'of no media type')}"
                                      f", not one of {', '.join(accept)}")
    if doc.get("schemaVersion") != 2:
        raise RegistryError(str(ref), f"the {what} is not schemaVersion 2")
    return _Manifest(digest, media_type, data, doc)


# --- pulling a disk --------------------------------------------------------------------------


def _platform_entry(ref: OciRef, index: _Manifest) -> str:
    """The digest of the index's one linux/amd64 image manifest."""
    entries = index.doc.get("manifests")
    if not isinstance(entries, list) or len(entries) > MAX_INDEX_ENTRIES:
        raise RegistryError(str(ref), "the image index has no valid manifests list")
    found: list[str] = []
    platforms: list[str] = []
    for i, entry in enumerate(entries):
        desc = _descriptor(ref, f"image index entry {i}", entry)
        platform = desc.get("platform")
        os_name = arch = "?"
        if isinstance(platform, dict):
            os_name, arch = str(platform.get("os", "?")), str(platform.get("architecture", "?"))
        platforms.append(shown(f"{os_name}/{arch}")[:40])
        if (os_name, arch) == ("linux", "amd64"):
            if desc["mediaType"] not in MANIFEST_TYPES:
                raise RegistryError(str(ref), "the image index's linux/amd64 entry is "
                                              f"{shown(desc['mediaType'])}, not an image manifest")
            found.append(desc["digest"])
    if len(found) != 1:
        listed = ", ".join(platforms[:12]) + (", …" if len(platforms) > 12 else "")
        raise RegistryError(
            str(ref), f"an image index is pulled only when exactly one entry is linux/amd64; "
                      f"this one has {len(found)} (platforms: {listed or 'none'})")
    return found[0]


def _layers(ref: OciRef, manifest: _Manifest) -> list[dict[str, Any]]:
    layers = manifest.doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise RegistryError(str(ref), "the manifest has no layers")
    if len(layers) > MAX_LAYERS:
        raise RegistryError(str(ref), f"the manifest has {len(layers)} layers (at most "
                                      f"{MAX_LAYERS})")
    _descriptor(ref, "the manifest's config", manifest.doc.get("config"))
    return [_descriptor(ref, f"layer {i}", layer) for i, layer in enumerate(layers)]


def _cache_path(cache_dir: Path, digest: str) -> Path:
    algorithm, _, hexpart = digest.partition(":")
    return cache_dir / "oci" / algorithm / hexpart


def _cached(path: Path, size: int) -> bool:
    """A regular file of the expected size is at ``path`` (a wrong one is removed)."""
    try:
        st = path.lstat()
    except OSError:
        return False
    if stat.S_ISREG(st.st_mode) and st.st_size == size:
        return True
    with contextlib.suppress(OSError):
        path.unlink()
    return False


def _head(client: _Client, layer: Mapping[str, Any], cache_dir: Path) -> bytes:
    """The first :data:`SNIFF_BYTES` of a layer, from the cache or the start of the blob."""
    path = _cache_path(cache_dir, layer["digest"])
    if _cached(path, layer["size"]):
        with path.open("rb") as fh:
            return fh.read(SNIFF_BYTES)
    with _talking(client.ref, f"reading the start of layer {layer['digest']}"), \
            client.get_blob(client.container, layer["digest"], stream=True) as response:
        if response.status_code != 200:
            raise RegistryError(str(client.ref), f"reading layer {layer['digest']}: "
                                                 f"{_status_reason(response)}")
        head = bytearray()
        with _Watchdog(response, SMALL_READ_SECONDS) as watchdog:
            try:
                for chunk in response.iter_content(chunk_size=SNIFF_BYTES):
                    head += chunk
                    if len(head) >= SNIFF_BYTES:
                        break
            except requests.RequestException:
                watchdog.check(client.ref, f"reading the start of layer {layer['digest']}")
                raise
        return bytes(head[:SNIFF_BYTES])


def _looks_like_disk(head: bytes, size: int) -> bool:
    def read(pos: int, length: int) -> bytes:
        return head[pos:pos + length] if pos < len(head) else b""

    try:
        return bool(SNIFFED_FORMATS & set(formatparse.magics(read, size)))
    except Exception:  # a truncated header the parser trips on is no disk header
        return False


def _disk_layer(client: _Client, layers: list[dict[str, Any]],
                cache_dir: Path) -> dict[str, Any]:
    ref = client.ref
    declared = [layer for layer in layers if layer["mediaType"] in DISK_MEDIA_TYPES]
    if not declared:
        declared = [
            layer for layer in layers
            if layer["mediaType"] == OCTET_STREAM or (
                not _COMPRESSED.search(layer["mediaType"])
                and _looks_like_disk(_head(client, layer, cache_dir), layer["size"]))
        ]
        if not declared:
            types = ", ".join(sorted({shown(layer["mediaType"]) for layer in layers}))
            raise RegistryError(
                str(ref), f"no disk layer: no layer is of a disk media type "
                          f"({DISK_MEDIA_TYPES[0]}, …), {OCTET_STREAM} or starts with a disk "
                          f"header (layers: {types})")
    if len(declared) > 1:
        listed = ", ".join(f"{layer['digest']} ({shown(layer['mediaType'])})"
                           for layer in declared[:4])
        raise RegistryError(str(ref), f"{len(declared)} candidate disk layers, one expected: "
                                      f"{listed}")
    return declared[0]


def _download(client: _Client, layer: Mapping[str, Any], target: Path, max_bytes: int) -> None:
    """Stream the blob into a part file beside ``target``, check it, rename it into place."""
    ref, digest, size = client.ref, layer["digest"], layer["size"]
    algorithm = digest.partition(":")[0]
    allowed = DOWNLOAD_BASE_SECONDS + size / DOWNLOAD_MIN_RATE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, part_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:16]}.",
                                         suffix=".part")
    except OSError as exc:
        raise RegistryError(str(ref), f"cache {target.parent}: {exc.strerror}") from None
    part = Path(part_name)
    try:
        hasher = hashlib.new(algorithm)
        received = 0
        with os.fdopen(fd, "wb") as out, _talking(ref, f"downloading layer {digest}"), \
                client.get_blob(client.container, digest, stream=True) as response, \
                _Watchdog(response, allowed) as watchdog:
            if response.status_code != 200:
                raise RegistryError(str(ref), f"downloading layer {digest}: "
                                              f"{_status_reason(response)}")
            try:
                for chunk in response.iter_content(chunk_size=CHUNK):
                    received += len(chunk)
                    if received > max_bytes:
                        raise RegistryError(str(ref), f"layer {digest} sent more than the cap "
                                                      f"of {max_bytes} bytes")
                    if received > size:
                        raise RegistryError(str(ref), f"layer {digest} sent more than its "
                                                      f"declared {size} bytes")
                    hasher.update(chunk)
                    out.write(chunk)
            except requests.RequestException:
                watchdog.check(ref, f"downloading layer {digest}")
                raise
            watchdog.check(ref, f"downloading layer {digest}")
        if received != size:
            raise RegistryError(str(ref), f"layer {digest} ended after {received} of its "
                                          f"declared {size} bytes")
        actual = f"{algorithm}:{hasher.hexdigest()}"
        if actual != digest:
            raise RegistryError(str(ref), f"layer {digest} hashes to {actual}: the registry "
                                          "sent other content")
        try:
            part.replace(target)
        except OSError as exc:
            raise RegistryError(str(ref), f"cache {target}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()


def pull_disk(ref: OciRef, cache_dir: Path, *, max_bytes: int,
              insecure: bool = False) -> PulledDisk:
    """Bring the disk of the artefact ``ref`` names into ``cache_dir`` (see the module doc).

    ``insecure`` speaks plain HTTP instead of HTTPS. Every failure is a :class:`RegistryError`
    naming ``ref``.
    """
    with _talking(ref, "connecting"):
        client = _Client(ref, insecure)
    manifest = _fetch_manifest(client, ref.reference, MANIFEST_TYPES + INDEX_TYPES)
    if manifest.media_type in INDEX_TYPES:
        manifest = _fetch_manifest(client, _platform_entry(ref, manifest), MANIFEST_TYPES,
                                  "linux/amd64 manifest")
    layer = _disk_layer(client, _layers(ref, manifest), cache_dir)
    digest, size = layer["digest"], layer["size"]
    if size > max_bytes:
        raise RegistryError(str(ref), f"layer {digest} is {size} bytes, over the cap of "
                                      f"{max_bytes} bytes")
    target = _cache_path(cache_dir, digest)
    if not _cached(target, size):
        _download(client, layer, target, max_bytes)
    return PulledDisk(path=target, manifest_digest=manifest.digest, layer_digest=digest,
                      media_type=layer["mediaType"], size=size)


def resolve(ref: OciRef, *, insecure: bool = False) -> str:
    """The digest of the image manifest :func:`pull_disk` would read for ``ref`` (a tag is
    resolved; an index gives its linux/amd64 entry), without downloading any layer."""
    with _talking(ref, "connecting"):
        client = _Client(ref, insecure)
    manifest = _fetch_manifest(client, ref.reference, MANIFEST_TYPES + INDEX_TYPES)
    if manifest.media_type in INDEX_TYPES:
        return _platform_entry(ref, manifest)
    return manifest.digest


# --- referrers -------------------------------------------------------------------------------


def _referrers_tag(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart[:64]}"


def _index_entries(ref: OciRef, index: _Manifest | None, what: str) -> list[dict[str, Any]]:
    if index is None:
        return []
    if index.media_type != OCI_INDEX:
        raise RegistryError(str(ref), f"the {what} is {shown(index.media_type)}, not an OCI "
                                      "image index")
    entries = index.doc.get("manifests")
    if not isinstance(entries, list) or len(entries) > MAX_INDEX_ENTRIES:
        raise RegistryError(str(ref), f"the {what} has no valid manifests list")
    return [_descriptor(ref, f"{what} entry {i}", e) for i, e in enumerate(entries)]


def _api_referrers(client: _Client, subject: str) -> list[dict[str, Any]] | None:
    """The referrers API's list, or ``None`` when the registry has no referrers API (404)."""
    ref = client.ref
    url = client.url(f"referrers/{subject}")
    found: list[dict[str, Any]] = []
    for _ in range(MAX_REFERRER_PAGES):
        with _talking(ref, "listing referrers"), \
                client.do_request(url, "GET", headers={"Accept": OCI_INDEX},
                                  stream=True) as response:
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise RegistryError(str(ref), f"listing the referrers of {subject}: "
                                              f"{_status_reason(response)}")
            data = _read_bounded(response, MAX_MANIFEST_BYTES)
            if data is None:
                raise RegistryError(str(ref), f"the referrers list is over {MAX_MANIFEST_BYTES} "
                                              "bytes")
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            following = response.links.get("next", {}).get("url")
        doc = _json_object(ref, "the referrers list", data)
        declared = doc.get("mediaType")
        page = _Manifest(subject, declared if isinstance(declared, str) else media_type, data,
                         doc)
        found += _index_entries(ref, page, "referrers list")
        if not following:
            return found
        next_url = urllib.parse.urljoin(url, following)
        if urllib.parse.urlsplit(next_url)[:2] != urllib.parse.urlsplit(url)[:2]:
            # The token is sent with every request: never to another place.
            raise RegistryError(str(ref), f"the referrers list's next page is elsewhere: "
                                          f"{shown(next_url[:200])}")
        url = next_url
    raise RegistryError(str(ref), f"the referrers list has more than {MAX_REFERRER_PAGES} pages")


def _tag_referrers(client: _Client, subject: str) -> tuple[_Manifest | None,
                                                          list[dict[str, Any]]]:
    try:
        index: _Manifest | None = _fetch_manifest(client, _referrers_tag(subject), (OCI_INDEX,),
                                                  "referrers tag")
    except _NotFound:
        index = None
    return index, _index_entries(client.ref, index, "referrers tag")


def referrers(ref: OciRef, subject_digest: str, *, insecure: bool = False) -> list[dict[str, Any]]:
    """The descriptors of the manifests that refer to ``subject_digest`` in ``ref``'s
    repository: from the referrers API, or the referrers tag where the registry has none."""
    if (reason := digest_error(subject_digest)) is not None:
        raise RegistryError(str(ref), f"subject {reason}")
    with _talking(ref, "connecting"):
        client = _Client(ref, insecure)
    listed = _api_referrers(client, subject_digest)
    if listed is None:
        listed = _tag_referrers(client, subject_digest)[1]
    return listed


def _checked_annotations(ref: OciRef, annotations: Mapping[str, str] | None) -> dict[str, str]:
    out = dict(annotations or {})
    if len(out) > MAX_ANNOTATIONS:
        raise RegistryError(str(ref), f"{len(out)} annotations (at most {MAX_ANNOTATIONS})")
    for key, value in out.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise RegistryError(str(ref), "annotations map non-empty strings to strings")
        if len(key) + len(value) > MAX_ANNOTATION_CHARS:
            raise RegistryError(str(ref), f"annotation {shown(key[:100])!r} is over "
                                          f"{MAX_ANNOTATION_CHARS} characters")
    return out


def _push_blob(client: _Client, data: bytes, media_type: str, workdir: Path) -> dict[str, Any]:
    """Upload ``data`` as a blob (oras skips one the registry has); its descriptor."""
    layer: dict[str, Any] = {"mediaType": media_type, "digest": _digest_of(data),
                             "size": len(data)}
    path = workdir / layer["digest"].partition(":")[2]
    path.write_bytes(data)
    with _talking(client.ref, f"uploading blob {layer['digest']}"):
        response = client.upload_blob(str(path), client.container, layer)
    if response.status_code not in (200, 201, 202):
        raise RegistryError(str(client.ref), f"uploading blob {layer['digest']}: "
                                             f"{_status_reason(response)}")
    return layer


def _put_manifest(client: _Client, reference: str, body: bytes,
                  media_type: str) -> requests.Response:
    with _talking(client.ref, f"pushing manifest {reference}"):
        response = client.do_request(client.url(f"manifests/{reference}"), "PUT", data=body,
                                     headers={"Content-Type": media_type})
    if response.status_code not in (200, 201):
        raise RegistryError(str(client.ref), f"pushing manifest {reference}: "
                                             f"{_status_reason(response)}")
    sent = response.headers.get("Docker-Content-Digest")
    if sent and digest_error(sent) is None and sent != _digest_of(body, sent.partition(":")[0]):
        raise RegistryError(str(client.ref), f"the registry stored manifest {reference} as "
                                             f"{sent}, not as the bytes sent")
    return response


def _add_to_referrers_tag(client: _Client, subject: str, entry: dict[str, Any]) -> None:
    """The referrers tag schema: read the index, add ``entry`` unless listed, push it back."""
    tag = _referrers_tag(subject)
    for _ in range(TAG_UPDATE_TRIES):
        index, entries = _tag_referrers(client, subject)
        if any(e["digest"] == entry["digest"] for e in entries):
            return
        doc: dict[str, Any] = dict(index.doc) if index is not None else {"schemaVersion": 2}
        doc["mediaType"] = OCI_INDEX
        doc["manifests"] = [*entries, entry]
        body = _canonical(doc)
        if len(body) > MAX_MANIFEST_BYTES:
            raise RegistryError(str(client.ref), f"the referrers tag {tag} would be over "
                                                 f"{MAX_MANIFEST_BYTES} bytes")
        _put_manifest(client, tag, body, OCI_INDEX)
    # Another writer replaced the tag after each of our pushes: say so rather than guess.
    if not any(e["digest"] == entry["digest"] for e in _tag_referrers(client, subject)[1]):
        raise RegistryError(str(client.ref), f"the referrers tag {tag} kept being replaced by "
                                             f"another writer; {entry['digest']} is not listed")


def attach_report(ref: OciRef, subject_digest: str, report: bytes, *,
                  media_type: str = REPORT_MEDIA_TYPE,
                  annotations: dict[str, str] | None = None, insecure: bool = False) -> str:
    """Attach ``report`` to the manifest ``subject_digest`` of ``ref``'s repository as an OCI
    referrer (see the module doc); the referrer manifest's digest."""
    if (reason := digest_error(subject_digest)) is not None:
        raise RegistryError(str(ref), f"subject {reason}")
    if not _MEDIA_TYPE.fullmatch(media_type):
        raise RegistryError(str(ref), f"media type {shown(media_type[:200])!r} is not "
                                      "type/subtype")
    if len(report) > MAX_REPORT_BYTES:
        raise RegistryError(str(ref), f"the report is over {MAX_REPORT_BYTES} bytes")
    notes = _checked_annotations(ref, annotations)
    with _talking(ref, "connecting"):
        client = _Client(ref, insecure)
    subject = _fetch_manifest(client, subject_digest, MANIFEST_TYPES + INDEX_TYPES,
                             "subject manifest")
    with tempfile.TemporaryDirectory(prefix="imageaudit-referrer-") as workdir:
        config = _push_blob(client, EMPTY_BLOB, EMPTY_MEDIA_TYPE, Path(workdir))
        layer = _push_blob(client, report, media_type, Path(workdir))
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": media_type,
        "config": config,
        "layers": [layer],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest,
                    "size": len(subject.data)},
    }
    if notes:
        manifest["annotations"] = notes
    body = _canonical(manifest)
    digest = _digest_of(body)
    response = _put_manifest(client, digest, body, OCI_MANIFEST)
    if response.headers.get("OCI-Subject") == subject.digest:
        return digest  # the registry keeps the referrers list itself
    if _api_referrers(client, subject.digest) is not None:
        return digest
    entry: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body),
                             "artifactType": media_type}
    if notes:
        entry["annotations"] = notes
    _add_to_referrers_tag(client, subject.digest, entry)
    return digest
