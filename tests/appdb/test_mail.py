"""Mail to endorsers over a real SMTP server (aiosmtpd on 127.0.0.1): STARTTLS, login, one
message per endorser, hostile text kept out of the headers."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from integrations.appdb.mail import MailError, SmtpSettings, clean, compose, send
from tests.appdb.smtp_server import PASSWORD, USER, smtp_server

HIT = {"image_id": "img-weak", "version": "2", "sha512": "a" * 128, "vos": ["fedcloud.egi.eu"],
       "level": "none", "listed": True, "matched": ["openssl 3.0.11-1~deb12u2"],
       "fix": "3.0.15-1~deb12u1"}


def _settings(port: int, ca: Path, **changes: object) -> SmtpSettings:
    base = SmtpSettings(host="127.0.0.1", port=port, sender="csirt@example.org", user=USER,
                        password=PASSWORD, cafile=str(ca))
    return replace(base, **changes)  # type: ignore[arg-type]


def test_one_message_per_endorser_over_starttls_with_login(tmp_path: Path) -> None:
    hostile = {**HIT, "image_id": "img-evil", "matched": ["x\r\nBcc: all@example.org"]}
    messages = [
        compose(sender="csirt@example.org", to="alice@example.org", name="Alice\nEvil",
                campaign="openssl-2026", about="openssl << 3.0.15-1~deb12u1", hits=[HIT, hostile],
                deadline=date(2026, 12, 10), catalogue_url="https://catalogue.example.org"),
        compose(sender="csirt@example.org", to="bob@example.org", name=None,
                campaign="openssl-2026", about="openssl << 3.0.15-1~deb12u1", hits=[HIT],
                deadline=date(2026, 12, 10), catalogue_url=None),
    ]
    with smtp_server(tmp_path) as server:
        assert send(_settings(server.port, server.cafile), messages) == [None, None]
        got = server.received.messages
    assert [(frm, to) for frm, to, _ in got] == [("csirt@example.org", ["alice@example.org"]),
                                                  ("csirt@example.org", ["bob@example.org"])]
    alice = got[0][2]
    assert alice["Subject"] == ("[imageaudit] 2 image versions you endorsed need action by "
                                "2026-12-10")
    assert alice["Bcc"] is None, "text from a report never becomes a header"
    payload = alice.get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode()
    assert "img-weak version 2 (VO fedcloud.egi.eu; level none; listed)" in body
    assert "found: openssl 3.0.11-1~deb12u2" in body and "fix: 3.0.15-1~deb12u1" in body
    assert "found: x  Bcc: all@example.org" in body
    assert alice["X-Imageaudit-Campaign"] == "openssl-2026"


def test_refusals_are_clear(tmp_path: Path) -> None:
    message = compose(sender="csirt@example.org", to="alice@example.org", name=None,
                      campaign="c", about="a", hits=[HIT], deadline=date(2026, 12, 10),
                      catalogue_url=None)
    with smtp_server(tmp_path) as server:
        with pytest.raises(MailError, match="refused the login of notifier"):
            send(_settings(server.port, server.cafile, password="wrong"), [message])
        with pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED"):
            send(_settings(server.port, server.cafile, cafile=None), [message])
    with smtp_server(tmp_path, starttls=False) as plain:
        with pytest.raises(MailError, match="does not offer STARTTLS"):
            send(_settings(plain.port, plain.cafile), [message])
        local = _settings(plain.port, plain.cafile, security="none", user=None, password=None)
        assert send(local, [message]) == [None]
    with pytest.raises(MailError, match="plain connection"):
        _settings(1, tmp_path, security="none")
    with pytest.raises(MailError, match="not an e-mail address"):
        _settings(1, tmp_path, sender="not an address")


@pytest.mark.parametrize("hostile", ["\x1b[2J", "\x9b31m", "\u202e", "\u2066", "\u200f", "\udcff"])
def test_image_supplied_text_loses_controls_and_bidi_overrides(hostile: str) -> None:
    assert clean(f"nginx{hostile}1.2") in ("nginx 1.2", "nginx [2J1.2", "nginx 31m1.2")
    assert hostile not in clean(f"nginx{hostile}1.2")
