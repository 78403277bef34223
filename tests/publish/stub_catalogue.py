"""A tiny catalogue on 127.0.0.1 that keeps the publish contract and records what it got.

Real HTTP (stdlib ``http.server`` in a thread), so the publisher's sockets, timeouts and error
paths are exercised for real. It can be stopped and started again on the same port, told to
answer 5xx a number of times, and to redirect.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from imageaudit.signing import SigningError, verify_report


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    authorization: str | None
    body: dict[str, Any] | None
    status: int


@dataclass
class CatalogueState:
    """What the stub knows and what it saw; shared by every server started on it."""

    images: set[str] = field(default_factory=set)  # registered SHA-512s
    tokens: dict[str, str] = field(default_factory=dict)  # token -> role
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # report id -> report
    requests: list[Received] = field(default_factory=list)
    fail_next: int = 0  # answer 503 to this many POSTs first
    redirect_to: str | None = None
    # When set, reports must carry this key's signature, as the real catalogue demands.
    public_key: Ed25519PublicKey | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posts(self) -> list[Received]:
        return [r for r in self.requests if r.method == "POST"]


def _handler(state: CatalogueState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, doc: dict[str, Any], body: dict[str, Any] | None,
                    headers: dict[str, str] | None = None) -> None:
            with state.lock:
                state.requests.append(
                    Received(self.command, self.path, self.headers.get("Authorization"),
                             body, status)
                )
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/api/v1/health":
                self._answer(200, {"status": "ok"}, None)
            else:
                self._answer(404, {"detail": "not found"}, None)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                self._answer(422, {"detail": "body is not JSON"}, None)
                return
            if self.path != "/api/v1/reports":
                self._answer(404, {"detail": "no such endpoint"}, body)
                return
            if state.redirect_to:
                self._answer(307, {}, body, {"Location": state.redirect_to})
                return
            with state.lock:
                failing = state.fail_next > 0
                state.fail_next -= 1 if failing else 0
            if failing:
                self._answer(503, {"detail": "database is restarting"}, body)
                return
            auth = self.headers.get("Authorization") or ""
            token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            if token is None:
                self._answer(401, {"detail": "a bearer token is required"}, body)
                return
            if token not in state.tokens:
                self._answer(401, {"detail": "unknown token"}, body)
                return
            if state.tokens[token] != "auditor":
                self._answer(403, {"detail": "this token has not the auditor role"}, body)
                return
            report = body.get("report") if isinstance(body, dict) else None
            rid = body.get("report_id") if isinstance(body, dict) else None
            if not isinstance(report, dict) or not isinstance(rid, str):
                self._answer(422, {"detail": "report_id and report are required"}, body)
                return
            canonical = json.dumps(report, sort_keys=True, separators=(",", ":"),
                                   ensure_ascii=False)
            if hashlib.sha256(canonical.encode()).hexdigest() != rid:
                self._answer(422, {"detail": "report_id is not the report's digest"}, body)
                return
            if state.public_key is not None:
                sig = body.get("signature")
                try:
                    verify_report(report, sig if isinstance(sig, dict) else {},
                                  state.public_key)
                except SigningError as exc:
                    self._answer(422, {"detail": f"bad signature: {exc}"}, body)
                    return
            sha = (report.get("certification") or {}).get("image_sha512")
            if sha not in state.images:
                self._answer(404, {"detail": f"no image with SHA-512 {sha}"}, body)
                return
            with state.lock:
                new = rid not in state.stored
                state.stored.setdefault(rid, report)
            self._answer(201 if new else 200, {"report_id": rid}, body)

    return Handler


class StubCatalogue:
    """Start with :meth:`start`, stop with :meth:`stop`; the port stays the same across both."""

    def __init__(self, state: CatalogueState | None = None, port: int = 0) -> None:
        self.state = state or CatalogueState()
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StubCatalogue:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self.state))
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
