"""A real SMTP server on 127.0.0.1 (aiosmtpd) for the notification tests: STARTTLS with a
self-signed certificate, AUTH PLAIN/LOGIN for one user, and every message it accepted kept."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD = "notifier", "s3cret-for-tests"


@dataclass
class Received:
    """What the server accepted: (envelope sender, recipients, parsed message) each."""

    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              message_from_bytes(envelope.original_content)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                  data: Any) -> AuthResult:
    ok = (isinstance(data, LoginPassword) and data.login == USER.encode()
          and data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    cafile: Path
    received: Received


@contextmanager
def smtp_server(directory: Path, *, starttls: bool = True) -> Iterator[SmtpServer]:
    """Run the server for the block; ``starttls=False`` offers no STARTTLS (and no AUTH)."""
    cert, key = directory / "smtp.pem", directory / "smtp.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    received = Received()
    port = _free_port()
    kwargs: dict[str, Any] = {}
    if starttls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        kwargs = {"tls_context": context, "require_starttls": True, "auth_required": True,
                  "authenticator": _authenticate}
    controller = Controller(received, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, cert, received)
    finally:
        controller.stop()
