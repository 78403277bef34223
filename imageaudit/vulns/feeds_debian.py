"""Debian and Ubuntu update feeds: ``dists/<suite>/InRelease`` and its ``Packages`` indexes.

``InRelease`` is verified with ``gpgv`` against the archive keyring and only the signed text
is used; every ``Packages`` file is checked against the size and SHA256 that text lists. The
suite's ``Suite``/``Codename`` must be the one asked for, and ``Valid-Until`` (the security
archive sets it) must not have passed, so an old or substituted index is refused.

Specs: Debian repository format (wiki.debian.org/DebianRepository/Format), deb-control(5)
fields ``Package``/``Version``/``Architecture``/``Source``, gpgv(1).
"""

from __future__ import annotations

import bz2
import datetime as dt
import email.utils
import gzip
import hashlib
import io
import lzma
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import zstandard

from imageaudit.vulns.model import FeedInfo
from imageaudit.vulns.sync import (
    Download,
    FeedError,
    SnapshotFeed,
    SnapshotWriter,
    iso,
    utc_now,
)

DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
UBUNTU_MIRROR = "http://archive.ubuntu.com/ubuntu"
UBUNTU_SECURITY_MIRROR = "http://security.ubuntu.com/ubuntu"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
UBUNTU_KEYRING = Path("/usr/share/keyrings/ubuntu-archive-keyring.gpg")
MAX_INDEX = 1 << 30  # decompressed Packages cap
# Compressed forms in the order we prefer them.
_COMPRESSIONS = (".xz", ".gz", ".bz2", "")
_FIELD = re.compile(r"^([A-Za-z0-9-]+):\s?(.*)$")
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?\s*$")


@dataclass(frozen=True, slots=True)
class AptSuite:
    """One suite to sync: ``bookworm-security`` from the security mirror, say."""

    distro: str  # debian | ubuntu
    release: str  # bookworm, jammy
    suite: str
    mirror: str
    security: bool


def default_suites(
    distro: str, release: str, mirror: str | None = None, security_mirror: str | None = None,
    with_release: bool = False,
) -> list[AptSuite]:
    """The update channels of a release: ``<release>-security`` and ``<release>-updates``."""
    if distro == "debian":
        main, sec = mirror or DEBIAN_MIRROR, security_mirror or DEBIAN_SECURITY_MIRROR
    elif distro == "ubuntu":
        main, sec = mirror or UBUNTU_MIRROR, security_mirror or UBUNTU_SECURITY_MIRROR
    else:
        raise ValueError(f"unknown apt distribution {distro!r}")
    suites = [
        AptSuite(distro, release, f"{release}-security", sec, True),
        AptSuite(distro, release, f"{release}-updates", main, False),
    ]
    if with_release:
        suites.append(AptSuite(distro, release, release, main, False))
    return suites


def verify_inrelease(
    path: Path, keyrings: Sequence[Path], label: str = "InRelease"
) -> tuple[str, str]:
    """Check an InRelease signature with gpgv; returns (signed text, signing key fingerprint).

    Raises FeedError when no keyring key made a good signature.
    """
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise FeedError("gpgv is not installed; cannot verify InRelease (apt-get install gpgv)")
    cmd = [gpgv, "--status-fd", "1"]
    for ring in keyrings:
        cmd += ["--keyring", str(ring.resolve())]
    with tempfile.TemporaryDirectory(prefix="imageaudit-gpgv-") as home:
        out = Path(home) / "signed"
        cmd += ["--homedir", home, "--output", str(out), str(path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        status = proc.stdout.splitlines()
        valid = [line.split()[2] for line in status
                 if line.startswith("[GNUPG:] VALIDSIG") and len(line.split()) > 2]
        if proc.returncode != 0 or not valid or not any(
            line.startswith("[GNUPG:] GOODSIG") for line in status
        ):
            reason = (proc.stderr.strip().splitlines() or ["no valid signature"])[-1]
            rings = ", ".join(map(str, keyrings))
            raise FeedError(f"{label}: signature not valid with {rings}: {reason}")
        return out.read_text(errors="replace"), valid[0]


def parse_release(text: str) -> tuple[dict[str, str], dict[str, tuple[str, int]]]:
    """Fields of a Release text and its SHA256 list (path -> (digest, size))."""
    fields: dict[str, str] = {}
    hashes: dict[str, tuple[str, int]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith((" ", "\t")):
            if current == "SHA256":
                parts = line.split()
                if len(parts) == 3 and parts[1].isdigit():
                    hashes[parts[2]] = (parts[0].lower(), int(parts[1]))
            continue
        match = _FIELD.match(line)
        if match:
            current = match.group(1)
            fields[current] = match.group(2).strip()
    return fields, hashes


def check_release(fields: dict[str, str], suite: AptSuite, now: dt.datetime) -> None:
    """Refuse a Release that is for another suite or past its Valid-Until."""
    names = {fields.get("Suite"), fields.get("Codename")}
    if suite.suite not in names:
        raise FeedError(f"{suite.suite}: InRelease is for suite {fields.get('Suite')!r} "
                        f"(codename {fields.get('Codename')!r})")
    valid_until = fields.get("Valid-Until")
    if valid_until:
        try:
            until = email.utils.parsedate_to_datetime(valid_until)
        except (TypeError, ValueError) as exc:
            raise FeedError(f"{suite.suite}: bad Valid-Until {valid_until!r}") from exc
        if until.tzinfo is None:
            until = until.replace(tzinfo=dt.UTC)
        if until < now:
            raise FeedError(f"{suite.suite}: InRelease expired on {valid_until}")


def decompress(data: bytes, name: str, limit: int = MAX_INDEX) -> bytes:
    """Decompress by file suffix with a cap on the output size."""
    try:
        out = _open_compressed(data, name).read(limit + 1)
    except (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError) as exc:
        raise FeedError(f"{name}: corrupt compressed data: {exc}") from exc
    if len(out) > limit:
        raise FeedError(f"{name}: decompresses to more than {limit} bytes")
    return out


def _open_compressed(data: bytes, name: str) -> BinaryIO:
    raw = io.BytesIO(data)
    if name.endswith(".xz"):
        return cast(BinaryIO, lzma.LZMAFile(raw))
    if name.endswith(".gz"):
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw))
    if name.endswith(".bz2"):
        return cast(BinaryIO, bz2.BZ2File(raw))
    if name.endswith(".zst"):
        return cast(BinaryIO, zstandard.ZstdDecompressor().stream_reader(raw))
    return raw


def iter_packages(text: str) -> Iterator[list[str]]:
    """Rows ``[name, version, arch, source, source_version]`` of a Packages index."""
    fields: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if "Package" in fields and "Version" in fields:
                name, version = fields["Package"], fields["Version"]
                src, srcver = name, version
                match = _SOURCE.match(fields.get("Source", ""))
                if match:
                    src = match.group(1)
                    srcver = match.group(2) or version
                yield [name, version, fields.get("Architecture", ""), src, srcver]
            fields = {}
            continue
        if line[0] in " \t":
            continue
        key, sep, value = line.partition(":")
        if sep and key in ("Package", "Version", "Architecture", "Source"):
            fields[key] = value.strip()


def _index_name(hashes: dict[str, tuple[str, int]], component: str, arch: str) -> str | None:
    for suffix in _COMPRESSIONS:
        name = f"{component}/binary-{arch}/Packages{suffix}"
        if name in hashes:
            return name
    return None


def _verified(download: Download, expected: tuple[str, int], name: str) -> bytes:
    data = download.path.read_bytes()
    digest, size = expected
    if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
        raise FeedError(f"{name}: size/SHA256 differ from InRelease ({download.url})")
    return data


def sync_suite(
    writer: SnapshotWriter,
    suite: AptSuite,
    keyrings: Sequence[Path],
    arches: Sequence[str] = ("amd64",),
    components: Sequence[str] | None = None,
) -> SnapshotFeed:
    """Fetch, verify and parse one suite into ``writer``; FeedError when it cannot."""
    base = f"{suite.mirror.rstrip('/')}/dists/{suite.suite}"
    inrelease = writer.http.fetch(f"{base}/InRelease", max_bytes=64 << 20)
    text, fingerprint = verify_inrelease(inrelease.path, keyrings, f"{suite.suite} InRelease")
    fields, hashes = parse_release(text)
    check_release(fields, suite, utc_now())
    prefix = f"{suite.distro}/{suite.suite}"
    files = [writer.add_file(f"{prefix}/InRelease", inrelease.path)]
    wanted = components or fields.get("Components", "main").split()
    rows: list[list[str]] = []
    checked: list[str] = []
    oldest = inrelease.fetched_at
    for component in wanted:
        for arch in arches:
            name = _index_name(hashes, component.split("/")[-1], arch) or _index_name(
                hashes, component, arch)
            if name is None:
                continue
            download = writer.http.fetch(f"{base}/{name}", max_bytes=hashes[name][1] + 1)
            data = _verified(download, hashes[name], name)
            files.append(writer.add_file(f"{prefix}/{name}", data))
            text_index = decompress(data, name).decode("utf-8", errors="replace")
            rows.extend(iter_packages(text_index))
            checked.append(name)
            oldest = min(oldest, download.fetched_at)
    if not checked:
        raise FeedError(f"{suite.suite}: InRelease lists no Packages index for "
                        f"{', '.join(wanted)} / {', '.join(arches)}")
    parsed = writer.add_json(f"{prefix}/packages.json", {"packages": rows})
    info = FeedInfo(
        kind="ubuntu" if suite.distro == "ubuntu" else "debian",
        suite=suite.suite,
        url=base,
        fetched_at=oldest,
        verified=True,
        verification=f"InRelease signed by {fingerprint}; SHA256 of {len(checked)} "
        f"Packages files checked (Date: {fields.get('Date', '?')})",
        package_count=len(rows),
    )
    return SnapshotFeed(info, f"{suite.distro}:{suite.release}", "deb-packages", suite.security,
                        tuple(files), (parsed,))


def release_date(fields: dict[str, str]) -> str | None:
    """The Release ``Date`` as ISO 8601 UTC, None when absent or unreadable."""
    try:
        return iso(email.utils.parsedate_to_datetime(fields["Date"]))
    except (KeyError, TypeError, ValueError):
        return None
