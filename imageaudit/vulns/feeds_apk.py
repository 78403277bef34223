"""Alpine update feeds: ``<mirror>/<branch>/<repo>/<arch>/APKINDEX.tar.gz``.

The index is read in memory (no extraction). Its RSA signature (``.SIGN.RSA.<key>.pub``
member, over the second gzip stream) is not checked: that needs Alpine's public keys, which
are not on a Debian host; the feed is marked unverified and the verification text says so.

Specs: apk-v2 index format (wiki.alpinelinux.org/wiki/Apk_spec: ``P:`` name, ``V:`` version,
``A:`` architecture, ``o:`` origin = source package).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

from imageaudit.vulns.feeds_debian import decompress
from imageaudit.vulns.model import FeedInfo
from imageaudit.vulns.sync import FeedError, SnapshotFeed, SnapshotWriter

ALPINE_MIRROR = "https://dl-cdn.alpinelinux.org/alpine"
MAX_INDEX = 256 << 20


def read_apkindex(data: bytes) -> str:
    """The text of the ``APKINDEX`` member of an APKINDEX.tar.gz."""
    raw = decompress(data, "APKINDEX.tar.gz", MAX_INDEX)
    try:
        # ignore_zeros: the signature part may end with end-of-archive blocks (real indexes
        # leave them out so that the two gzip streams read as one tar).
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:", ignore_zeros=True) as archive:
            for member in archive:
                if member.name == "APKINDEX" and member.isfile():
                    handle = archive.extractfile(member)
                    if handle is None:
                        break
                    return handle.read(MAX_INDEX).decode("utf-8", errors="replace")
    except tarfile.TarError as exc:
        raise FeedError(f"APKINDEX.tar.gz: not a tar archive: {exc}") from exc
    raise FeedError("APKINDEX.tar.gz: no APKINDEX member")


def iter_apkindex(text: str) -> Iterator[list[str]]:
    """Rows ``[name, version, arch, origin, version]`` of an APKINDEX text."""
    fields: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if "P" in fields and "V" in fields:
                name, version = fields["P"], fields["V"]
                yield [name, version, fields.get("A", ""), fields.get("o") or name, version]
            fields = {}
            continue
        key, sep, value = line.partition(":")
        if sep and len(key) == 1 and key in "PVAo":
            fields[key] = value.strip()


def sync_index(
    writer: SnapshotWriter,
    branch: str,
    repos: tuple[str, ...] = ("main", "community"),
    arch: str = "x86_64",
    mirror: str = ALPINE_MIRROR,
) -> SnapshotFeed:
    """Fetch the indexes of ``branch`` (``v3.19``) for ``repos`` into ``writer``."""
    rows: list[list[str]] = []
    files: list[str] = []
    fetched: list[str] = []
    base = f"{mirror.rstrip('/')}/{branch}"
    for repo in repos:
        url = f"{base}/{repo}/{arch}/APKINDEX.tar.gz"
        download = writer.http.fetch(url, max_bytes=64 << 20)
        data = download.path.read_bytes()
        rows.extend(iter_apkindex(read_apkindex(data)))
        files.append(writer.add_file(f"alpine/{branch}/{repo}/{arch}/APKINDEX.tar.gz", data))
        fetched.append(download.fetched_at)
    parsed = writer.add_json(f"alpine/{branch}/{arch}-packages.json", {"packages": rows})
    info = FeedInfo(
        kind="apk",
        suite=f"{branch}/{','.join(repos)}",
        url=base,
        fetched_at=min(fetched),
        verified=False,
        verification="APKINDEX signature not checked (Alpine keys not available)",
        package_count=len(rows),
    )
    return SnapshotFeed(info, f"alpine:{branch}", "apk-index", False, tuple(files), (parsed,))
