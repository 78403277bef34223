"""A real, small, signed Debian repository built by the tests, served over 127.0.0.1.

Packages are made with ``dpkg-deb --build``, indexes with ``dpkg-scanpackages``, the Release
file with ``apt-ftparchive release`` and the InRelease with ``gpg --clearsign`` by a key made
for the test; :class:`RepoServer` serves the tree with ETag and Last-Modified support and
counts 200/304 answers.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import lzma
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GPG_BATCH = """\
%no-protection
Key-Type: RSA
Key-Length: 2048
Name-Real: imageaudit test archive
Name-Email: archive@example.invalid
Expire-Date: 0
%commit
"""


@dataclass(frozen=True)
class Deb:
    """A binary package to build: name, version, architecture and optional Source field."""

    name: str
    version: str
    arch: str = "amd64"
    source: str | None = None


def make_key(home: Path) -> Path:
    """Generate a signing key in ``home`` (a GNUPGHOME); return the exported public keyring."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--quiet", "--gen-key"], input=GPG_BATCH.encode(),
                   env=env, check=True, capture_output=True)
    keyring = home / "archive-keyring.gpg"
    data = subprocess.run(["gpg", "--batch", "--export"], env=env, check=True,
                          capture_output=True).stdout
    keyring.write_bytes(data)
    return keyring


def build_deb(deb: Deb, pool: Path, work: Path) -> Path:
    """Build one tiny .deb into ``pool``."""
    root = work / f"{deb.name}_{deb.version.replace(':', '%')}_{deb.arch}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/share/doc" / deb.name).mkdir(parents=True)
    (root / "usr/share/doc" / deb.name / "README").write_text(f"{deb.name} {deb.version}\n")
    control = [f"Package: {deb.name}", f"Version: {deb.version}", f"Architecture: {deb.arch}",
               "Maintainer: Test <test@example.invalid>", f"Description: test package {deb.name}"]
    if deb.source:
        control.insert(1, f"Source: {deb.source}")
    (root / "DEBIAN/control").write_text("\n".join(control) + "\n")
    pool.mkdir(parents=True, exist_ok=True)
    target = pool / f"{root.name}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(target)],
                   check=True, capture_output=True)
    return target


def build_suite(repo: Path, suite: str, debs: list[Deb], gnupghome: Path,
                codename: str | None = None) -> None:
    """Build ``dists/<suite>`` (main/binary-amd64) of ``repo`` and sign its InRelease."""
    pool = repo / "pool" / suite
    for deb in debs:
        build_deb(deb, pool, repo.parent / "build" / suite)
    packages = subprocess.run(["dpkg-scanpackages", "--multiversion", f"pool/{suite}",
                               "/dev/null"], cwd=repo, check=True, capture_output=True).stdout
    dist = repo / "dists" / suite
    index = dist / "main" / "binary-amd64"
    index.mkdir(parents=True)
    (index / "Packages").write_bytes(packages)
    (index / "Packages.xz").write_bytes(lzma.compress(packages))
    (index / "Packages.gz").write_bytes(gzip.compress(packages))
    options = [
        "-o", f"APT::FTPArchive::Release::Suite={suite}",
        "-o", f"APT::FTPArchive::Release::Codename={codename or suite}",
        "-o", "APT::FTPArchive::Release::Components=main",
        "-o", "APT::FTPArchive::Release::Architectures=amd64",
    ]
    release = subprocess.run(["apt-ftparchive", *options, "release", "."], cwd=dist,
                             check=True, capture_output=True).stdout
    (dist / "Release").write_bytes(release)
    env = {**os.environ, "GNUPGHOME": str(gnupghome)}
    subprocess.run(["gpg", "--batch", "--yes", "--clearsign", "-o", str(dist / "InRelease"),
                    str(dist / "Release")], env=env, check=True, capture_output=True)


class _Handler(http.server.SimpleHTTPRequestHandler):
    counts: dict[str, int]
    _etag: str | None = None

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        if path.is_file():
            etag = '"' + hashlib.sha256(path.read_bytes()).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.counts["304"] = self.counts.get("304", 0) + 1
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return None
            self.counts["200"] = self.counts.get("200", 0) + 1
            self._etag = etag
        else:
            self.counts["404"] = self.counts.get("404", 0) + 1
        return super().send_head()

    def end_headers(self) -> None:
        etag = getattr(self, "_etag", None)
        if etag:
            self.send_header("ETag", etag)
            self._etag = None
        super().end_headers()


@contextmanager
def serve(directory: Path) -> Iterator[tuple[str, dict[str, int]]]:
    """Serve ``directory`` on 127.0.0.1; yields (base URL, answer counters)."""
    counts: dict[str, int] = {}
    handler = type("Handler", (_Handler,), {"counts": counts})

    def factory(*args: Any) -> http.server.SimpleHTTPRequestHandler:
        made: http.server.SimpleHTTPRequestHandler = handler(*args, directory=str(directory))
        return made

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), factory)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counts
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
