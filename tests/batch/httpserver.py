"""A real HTTP server on 127.0.0.1 for the fetch tests, told how to misbehave.

It serves ``files`` (path -> bytes), answers ``Range: bytes=N-`` and ``bytes=N-M`` with 206 and
a ``Content-Range`` (416 past the end), and 404 for any other path. The tests can make it fail
the next N requests with 503, cut the next body off after K bytes (closing the connection),
ignore Range (answering 200 with the whole file), send no Content-Length, wait before a body,
and redirect. Every request it saw is kept in ``requests``. Given a certificate and key it
serves https.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

_RANGE = re.compile(r"^bytes=([0-9]+)-([0-9]*)$")


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    range: str | None
    user_agent: str | None


class FileServer:
    """``with FileServer({"/a.img": data}) as srv: fetch(srv.url("/a.img"), ...)``."""

    def __init__(self, files: dict[str, bytes] | None = None, *,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.files = dict(files or {})
        self.redirects: dict[str, str] = {}
        self.requests: list[Seen] = []
        self.ignore_range = False
        self.send_length = True
        self.delay = 0.0
        self._fail: list[int] = []
        self._cut: int | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.scheme = "http"
        if tls is not None:  # (certificate, key): serve https
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next ``n`` requests with ``status`` (and a short body)."""
        with self._lock:
            self._fail = [status] * n

    def cut_next(self, k: int) -> None:
        """Send only the first ``k`` bytes of the next body, then close the connection."""
        with self._lock:
            self._cut = k

    def gets(self) -> list[Seen]:
        """The GET requests seen so far."""
        with self._lock:
            return [r for r in self.requests if r.method == "GET"]

    def _take(self, seen: Seen) -> tuple[int | None, int | None]:
        with self._lock:
            self.requests.append(seen)
            status = self._fail.pop(0) if self._fail else None
            cut, self._cut = (self._cut, None) if status is None else (None, self._cut)
            return status, cut

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def _handler(srv: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(head=True)

        def do_GET(self) -> None:
            self._answer(head=False)

        def _small(self, status: int, text: str, extra: dict[str, str] | None = None) -> None:
            body = text.encode()
            self.send_response(status)
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _answer(self, head: bool) -> None:
            rng = self.headers.get("Range")
            status, cut = srv._take(Seen(self.command, self.path, rng,
                                         self.headers.get("User-Agent")))
            if status is not None:
                self._small(status, "told to fail")
                return
            if self.path in srv.redirects:
                self._small(302, "moved", {"Location": srv.redirects[self.path]})
                return
            data = srv.files.get(self.path)
            if data is None:
                self._small(404, "no such file")
                return
            start, end, code = 0, len(data), 200
            found = _RANGE.match(rng or "")
            if found and not srv.ignore_range:
                start = int(found.group(1))
                end = min(len(data), int(found.group(2)) + 1) if found.group(2) else len(data)
                if start >= len(data):
                    self._small(416, "range not satisfiable",
                                {"Content-Range": f"bytes */{len(data)}"})
                    return
                code = 206
            self.send_response(code)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            if code == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            if srv.send_length:
                self.send_header("Content-Length", str(end - start))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if head:
                return
            time.sleep(srv.delay)
            body = data[start:end]
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler
