"""A real OCI registry for tests: Debian's ``docker-registry`` (distribution 2.8.2) on 127.0.0.1.

:func:`registry_server` starts it on a free port with filesystem storage in a directory of the
caller's, waits until ``GET /v2/`` answers and stops it afterwards. Its storage is laid out as
distribution lays it out, so a test can damage a blob (:meth:`Registry.blob_file`) and see what
a client makes of a registry that serves other bytes than it was given; its access log tells
which requests reached it (:meth:`Registry.requests`).

Distribution 2.8 has no referrers API. :func:`referrers_proxy` puts one in front of it, as
registries that have one answer (OCI distribution spec 1.1): every request is passed through,
a manifest pushed with a ``subject`` is answered with ``OCI-Subject`` and listed under
``GET /v2/<name>/referrers/<digest>``, which otherwise answers an empty image index.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BINARY = "docker-registry"
INSTALL_HINT = ("the registry tests need Debian's docker-registry (distribution 2.8): "
                "scripts/bootstrap.sh --test installs it")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_ACCESS = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/1\.[01]" (\d{3}) ')


class RegistryUnavailable(RuntimeError):
    """The registry binary is missing or did not start; the message says what to do."""


@dataclass(frozen=True)
class Registry:
    """A running registry: ``host`` is ``127.0.0.1:PORT`` (plain HTTP)."""

    host: str
    root: Path
    log: Path

    def ref(self, name: str) -> str:
        """``oci://HOST/NAME`` (NAME with its tag or digest)."""
        return f"oci://{self.host}/{name}"

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps the bytes of blob (or manifest) ``digest``."""
        algorithm, _, hexpart = digest.partition(":")
        return (self.root / "docker/registry/v2/blobs" / algorithm / hexpart[:2] / hexpart
                / "data")

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request in the access log so far."""
        text = self.log.read_text(errors="replace")
        return [(m[1], m[2], int(m[3])) for m in _ACCESS.finditer(text)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/v2/", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _tail(log: Path, lines: int = 6) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def registry_server(base: Path) -> Iterator[Registry]:
    """Run ``docker-registry serve`` with its storage and log under ``base``."""
    binary = shutil.which(BINARY) or shutil.which(BINARY, path="/usr/bin")
    if binary is None:
        raise RegistryUnavailable(f"{BINARY} not found; {INSTALL_HINT}")
    root, log, config = base / "storage", base / "registry.log", base / "config.yml"
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    host = f"127.0.0.1:{port}"
    # JSON is YAML. No blob descriptor cache: a blob damaged on disk is served as it is now.
    config.write_text(json.dumps({
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}},
        "http": {"addr": host, "secret": "imageaudit-tests"},
    }))
    # REGISTRY_* variables would override the configuration file.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    with log.open("ab") as out:
        proc = subprocess.Popen([binary, "serve", str(config)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(host):
            if proc.poll() is not None:
                raise RegistryUnavailable(f"{binary} exited with {proc.returncode}: "
                                          f"{_tail(log)}")
            if time.monotonic() > deadline:
                raise RegistryUnavailable(f"{binary} did not answer GET /v2/ on {host} in "
                                          f"{START_TIMEOUT:.0f} s: {_tail(log)}")
            time.sleep(0.1)
        yield Registry(host=host, root=root, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)


_REFERRERS_PATH = re.compile(r"/v2/(.+)/referrers/(sha256:[a-f0-9]{64})")
_MANIFEST_PATH = re.compile(r"/v2/(.+)/manifests/[^/]+")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class _Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_HEADERS:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self) -> None:
        body = self._body()
        with self.server.lock:
            self.server.seen.append((self.command, self.path))
        match = _REFERRERS_PATH.fullmatch(self.path.split("?")[0])
        if self.command == "GET" and match:
            with self.server.lock:
                listed = list(self.server.referrers.get((match[1], match[2]), {}).values())
            index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                     "manifests": listed}
            self._answer(200, [("Content-Type", "application/vnd.oci.image.index.v1+json")],
                         json.dumps(index).encode())
            return
        conn = http.client.HTTPConnection(self.server.backend, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            extra = self._note_referrer(response.status, body)
            self._answer(response.status, [*response.getheaders(), *extra], data)
        finally:
            conn.close()

    def _note_referrer(self, status: int, body: bytes) -> list[tuple[str, str]]:
        match = _MANIFEST_PATH.fullmatch(self.path)
        if self.command != "PUT" or status != 201 or not match:
            return []
        manifest = json.loads(body)
        subject = manifest.get("subject")
        if not isinstance(subject, dict):
            return []
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        entry = {"mediaType": manifest.get("mediaType"), "digest": digest, "size": len(body),
                 "artifactType": manifest.get("artifactType")
                 or manifest.get("config", {}).get("mediaType")}
        if manifest.get("annotations"):
            entry["annotations"] = manifest["annotations"]
        with self.server.lock:
            self.server.referrers.setdefault((match[1], subject["digest"]), {})[digest] = entry
        return [("OCI-Subject", subject["digest"])]

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, backend: str) -> None:
        super().__init__(("127.0.0.1", 0), _Proxy)
        self.backend = backend
        self.lock = threading.Lock()
        self.referrers: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.seen: list[tuple[str, str]] = []


@dataclass(frozen=True)
class ReferrersProxy:
    """A registry with the referrers API: ``host`` is ``127.0.0.1:PORT``, ``seen`` the
    (method, path) of every request it was sent."""

    host: str
    seen: list[tuple[str, str]]


@contextlib.contextmanager
def referrers_proxy(backend: Registry) -> Iterator[ReferrersProxy]:
    """A registry with the referrers API in front of ``backend``, which stores everything."""
    server = _ProxyServer(backend.host)
    thread = threading.Thread(target=server.serve_forever, name="referrers-proxy", daemon=True)
    thread.start()
    try:
        yield ReferrersProxy(f"127.0.0.1:{server.server_address[1]}", server.seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=STOP_TIMEOUT)
