"""Mail to endorsers: one message per endorser listing their affected images, sent over SMTP.

The security team's campaigns end here (``campaign notify``): each endorser gets one message
naming every image version of theirs the campaign found, what was found in it, the fix where
one is known, and the deadline. Sent with the standard library's ``smtplib`` (STARTTLS, implicit
TLS or plain, with authentication when a user is configured). Everything in a message that came
from an image list or a report is hostile text: it goes into the plain-text body only, with
control characters removed, never into a header other than as a count.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Any

SMTP_ENV = {
    "host": "IMAGEAUDIT_SMTP_HOST",
    "port": "IMAGEAUDIT_SMTP_PORT",
    "security": "IMAGEAUDIT_SMTP_SECURITY",
    "user": "IMAGEAUDIT_SMTP_USER",
    "password_file": "IMAGEAUDIT_SMTP_PASSWORD_FILE",
    "sender": "IMAGEAUDIT_MAIL_FROM",
}
SECURITY = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
# C0 and C1 controls, bidirectional marks and overrides, lone surrogates: none of them may
# reorder or hide what a mail reader shows of image-supplied text.
_CTRL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
                   "\ud800-\udfff]")
_EMAIL = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,253}$")


class MailError(Exception):
    """Mail settings that cannot work, or a server that refused; the message says which."""


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how mail is sent. ``security``: ``starttls`` (default; refuses a server that
    does not offer it), ``tls`` (implicit, port 465) or ``none`` (a relay on localhost)."""

    host: str
    sender: str
    port: int | None = None
    security: str = "starttls"
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0
    cafile: str | None = None

    def __post_init__(self) -> None:
        if self.security not in SECURITY:
            raise MailError(f"SMTP security {self.security!r}: use {', '.join(SECURITY)}")
        if not valid_address(self.sender):
            raise MailError(f"sender address {self.sender!r} is not an e-mail address")
        if self.user and self.security == "none":
            raise MailError("SMTP authentication over a plain connection: use starttls or tls")

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]

    @classmethod
    def from_options(cls, *, host: str | None, sender: str | None, port: int | None = None,
                     security: str | None = None, user: str | None = None,
                     password_file: str | None = None) -> SmtpSettings:
        """Options given on the command line, else the ``IMAGEAUDIT_SMTP_*`` environment."""
        env = os.environ
        host = host or env.get(SMTP_ENV["host"])
        sender = sender or env.get(SMTP_ENV["sender"])
        if not host or not sender:
            raise MailError(f"no SMTP server or sender: give --smtp-host and --mail-from (or "
                            f"{SMTP_ENV['host']} and {SMTP_ENV['sender']})")
        port_text = env.get(SMTP_ENV["port"])
        if port is None and port_text:
            if not port_text.isdigit():
                raise MailError(f"{SMTP_ENV['port']}={port_text!r} is not a port number")
            port = int(port_text)
        user = user or env.get(SMTP_ENV["user"]) or None
        password_file = password_file or env.get(SMTP_ENV["password_file"])
        password = None
        if password_file:
            try:
                password = Path(password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise MailError(f"SMTP password file {password_file}: {exc.strerror}") from exc
        if user and not password:
            raise MailError("an SMTP user needs a password file (--smtp-password-file)")
        return cls(host=host, sender=sender, port=port,
                   security=security or env.get(SMTP_ENV["security"]) or "starttls",
                   user=user, password=password)


def valid_address(address: str) -> bool:
    return bool(_EMAIL.match(address))


def clean(text: object, limit: int = 500) -> str:
    """Image-supplied text for a mail body: printable, one line, bounded."""
    value = _CTRL.sub(" ", str(text)).replace("\n", " ").strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _describe(hit: Mapping[str, Any]) -> list[str]:
    vos = ", ".join(clean(v, 63) for v in hit.get("vos") or ()) or "-"
    state = "listed" if hit.get("listed") else "not listed"
    if hit.get("withdrawn"):
        state = "withdrawn"
    lines = [
        f"- {clean(hit.get('image_id'), 255)} version {clean(hit.get('version') or '-', 255)}"
        f" (VO {vos}; level {clean(hit.get('level') or 'none', 64)}; {state})",
        f"  SHA-512 {clean(hit.get('sha512'), 128)}",
    ]
    for matched in list(hit.get("matched") or ())[:20]:
        lines.append(f"  found: {clean(matched)}")
    if hit.get("fix"):
        lines.append(f"  fix: {clean(hit['fix'])}")
    return lines


def compose(*, sender: str, to: str, name: str | None, campaign: str, about: str,
            hits: Sequence[Mapping[str, Any]], deadline: date, catalogue_url: str | None,
            domain: str | None = None) -> EmailMessage:
    """The one message for one endorser about one campaign's hits."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = formataddr((clean(name or "", 100), to)) if name else to
    count = len(hits)
    msg["Subject"] = (f"[imageaudit] {count} image version{'s' if count != 1 else ''} you "
                      f"endorsed need action by {deadline.isoformat()}")
    msg["Message-ID"] = make_msgid("imageaudit-campaign", domain=domain)
    msg["X-Imageaudit-Campaign"] = clean(campaign, 63)
    greeting = f"Dear {clean(name, 100)}," if name else "Hello,"
    body = [
        greeting,
        "",
        "the federation's security team ran a campaign over the image catalogue "
        f"({clean(about, 300)}).",
        f"It found the following image versions that you endorsed. Please publish a fixed "
        f"version, or withdraw the affected ones, by {deadline.isoformat()}; after that date "
        "the catalogue may withdraw them from the VO image lists.",
        "",
    ]
    for hit in hits:
        body.extend(_describe(hit))
        body.append("")
    if catalogue_url:
        body.append(f"Reports and standing: {clean(catalogue_url, 300)}/")
    body.append(f"Campaign: {clean(campaign, 63)}")
    msg.set_content("\n".join(body) + "\n")
    return msg


def send(settings: SmtpSettings, messages: Sequence[EmailMessage]) -> list[str | None]:
    """Send every message over one connection; per message ``None`` when the server took it,
    else the reason it was refused. A connection or login failure is a :class:`MailError`."""
    context = ssl.create_default_context(cafile=settings.cafile)
    where = f"{settings.host}:{settings.effective_port}"
    try:
        server: smtplib.SMTP
        if settings.security == "tls":
            server = smtplib.SMTP_SSL(settings.host, settings.effective_port,
                                      timeout=settings.timeout, context=context)
        else:
            server = smtplib.SMTP(settings.host, settings.effective_port,
                                  timeout=settings.timeout)
        with server:
            server.ehlo()
            if settings.security == "starttls":
                if not server.has_extn("starttls"):
                    raise MailError(f"SMTP server {where} does not offer STARTTLS "
                                    "(use --smtp-security none only for a local relay)")
                server.starttls(context=context)
                server.ehlo()
            if settings.user:
                server.login(settings.user, settings.password or "")
            results: list[str | None] = []
            for message in messages:
                try:
                    server.send_message(message)
                    results.append(None)
                except smtplib.SMTPRecipientsRefused as exc:
                    results.append(f"recipient refused: {exc.recipients}")
                except smtplib.SMTPDataError as exc:
                    results.append(f"message refused: {exc.smtp_code} {exc.smtp_error!r}")
            return results
    except MailError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"SMTP server {where} refused the login of {settings.user}: "
                        f"{exc.smtp_code}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"SMTP server {where}: {exc}") from exc


__all__ = ["MailError", "SmtpSettings", "clean", "compose", "send", "valid_address"]
