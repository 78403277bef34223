"""RPM repository feeds: ``repodata/repomd.xml`` -> ``primary.xml(.gz|.zst|.xz|.bz2)``.

The primary file is accepted only when its size (if listed) and checksum match what
repomd.xml says. repomd.xml's own detached signature (``repomd.xml.asc``) is not checked: most
distributions sign packages, not repodata, so the feed is marked ``verified`` for the
checksums only and the verification text says so. XML is parsed with the standard library's
expat (no external entities; expat >= 2.4 limits entity amplification).

Specs: createrepo_c repodata format (repomd.xml ``<data type="primary">``, primary.xml
``<package type="rpm">`` with ``<version epoch ver rel>`` and ``<rpm:sourcerpm>``).
"""

from __future__ import annotations

import hashlib
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

from imageaudit.facts.packages.model import split_source_rpm
from imageaudit.vulns.feeds_debian import decompress
from imageaudit.vulns.model import FeedInfo
from imageaudit.vulns.sync import FeedError, SnapshotFeed, SnapshotWriter

REPO_NS = "{http://linux.duke.edu/metadata/repo}"
COMMON_NS = "{http://linux.duke.edu/metadata/common}"
RPM_NS = "{http://linux.duke.edu/metadata/rpm}"
_HASHES = {"sha256": "sha256", "sha512": "sha512", "sha384": "sha384", "sha224": "sha224",
           "sha1": "sha1", "sha": "sha1"}


@dataclass(frozen=True, slots=True)
class PrimaryRef:
    """Where repomd.xml says the primary metadata is, and how to check it."""

    href: str
    checksum_type: str
    checksum: str
    size: int | None


def parse_repomd(data: bytes) -> PrimaryRef:
    """The ``primary`` entry of a repomd.xml; FeedError when absent or malformed."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise FeedError(f"repomd.xml: not XML: {exc}") from exc
    for entry in root.iter(f"{REPO_NS}data"):
        if entry.get("type") != "primary":
            continue
        location = entry.find(f"{REPO_NS}location")
        checksum = entry.find(f"{REPO_NS}checksum")
        size = entry.find(f"{REPO_NS}size")
        if location is None or checksum is None or not location.get("href"):
            break
        kind = _HASHES.get((checksum.get("type") or "").lower())
        if kind is None:
            raise FeedError(f"repomd.xml: unsupported checksum type {checksum.get('type')!r}")
        return PrimaryRef(
            href=str(location.get("href")),
            checksum_type=kind,
            checksum=(checksum.text or "").strip().lower(),
            size=int(size.text) if size is not None and size.text and size.text.isdigit() else None,
        )
    raise FeedError("repomd.xml: no usable <data type=\"primary\"> entry")


def iter_primary(data: bytes) -> Iterator[list[str]]:
    """Rows ``[name, epoch:ver-rel, arch, source_name, source ver-rel]`` (no ``src`` rows)."""
    try:
        for _event, elem in ET.iterparse(io.BytesIO(data), events=("end",)):
            if elem.tag != f"{COMMON_NS}package":
                continue
            if elem.get("type") == "rpm":
                row = _row(elem)
                if row is not None:
                    yield row
            elem.clear()
    except ET.ParseError as exc:
        raise FeedError(f"primary.xml: not XML: {exc}") from exc


def _row(elem: ET.Element) -> list[str] | None:
    name = (elem.findtext(f"{COMMON_NS}name") or "").strip()
    arch = (elem.findtext(f"{COMMON_NS}arch") or "").strip()
    version = elem.find(f"{COMMON_NS}version")
    if not name or version is None or arch in ("src", "nosrc"):
        return None
    epoch = version.get("epoch") or "0"
    vr = f"{version.get('ver', '')}-{version.get('rel', '')}"
    sourcerpm = elem.findtext(f"{COMMON_NS}format/{RPM_NS}sourcerpm") or ""
    src, srcver = split_source_rpm(sourcerpm.strip())
    # The source version stays without epoch, like the installed side (the sourcerpm file
    # name carries none), so both compare on version-release.
    return [name, f"{epoch}:{vr}", arch, src or name, srcver or vr]


def sync_repo(
    writer: SnapshotWriter, release: str, url: str, security: bool = False
) -> SnapshotFeed:
    """Fetch and check one repository (``url`` is the directory holding ``repodata/``)."""
    base = url.rstrip("/")
    repomd = writer.http.fetch(f"{base}/repodata/repomd.xml", max_bytes=16 << 20)
    repomd_data = repomd.path.read_bytes()
    ref = parse_repomd(repomd_data)
    if "://" in ref.href or ref.href.startswith("/") or ".." in ref.href.split("/"):
        raise FeedError(f"repomd.xml: primary location {ref.href!r} leaves the repository")
    download = writer.http.fetch(f"{base}/{ref.href}")
    data = download.path.read_bytes()
    if ref.size is not None and len(data) != ref.size:
        raise FeedError(f"{ref.href}: size {len(data)} differs from repomd.xml ({ref.size})")
    if hashlib.new(ref.checksum_type, data).hexdigest() != ref.checksum:
        raise FeedError(f"{ref.href}: {ref.checksum_type} differs from repomd.xml")
    slug = release.replace("/", "_")
    prefix = f"rpm/{slug}/{hashlib.sha256(base.encode()).hexdigest()[:12]}"
    files = (
        writer.add_file(f"{prefix}/repomd.xml", repomd_data),
        writer.add_file(f"{prefix}/{ref.href.rsplit('/', 1)[-1]}", data),
    )
    rows = list(iter_primary(decompress(data, ref.href)))
    parsed = writer.add_json(f"{prefix}/packages.json", {"packages": rows})
    info = FeedInfo(
        kind="rpm",
        suite=release,
        url=base,
        fetched_at=min(repomd.fetched_at, download.fetched_at),
        verified=True,
        verification=f"primary {ref.checksum_type} checked against repomd.xml "
        "(repomd.xml signature not checked)",
        package_count=len(rows),
    )
    return SnapshotFeed(info, f"rpm:{release}", "rpm-primary", security, files, (parsed,))
