"""End to end: the weak and clean example images are published to a real catalogue; a campaign
on a package only the weak image has finds it; ``campaign notify`` mails its endorser through a
real SMTP server (once, however often it runs); ``campaign withdraw`` takes it out of the VO's
image list while the clean image stays."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from integrations.appdb.process import CatalogueProcess
from tests.appdb.smtp_server import PASSWORD, USER, smtp_server
from tests.batch.httpserver import FileServer
from tests.batch.test_batch import run_batch
from tests.builders.batch import build_images, image_list
from tests.builders.catalogue import cli, ok, ready_catalogue, token
from tests.builders.debian import cache_root

pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[2]
VO = "campaign.test.vo"


def listed(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/api/v1/vos/{VO}/image.list", timeout=30) as response:
        doc: Any = json.loads(response.read())
    return sorted(e["hv:image"]["dc:identifier"] for e in doc["hv:imagelist"]["hv:images"])


def test_campaign_finds_notifies_once_and_withdraws(tmp_path: Path) -> None:
    weak, clean, weak2 = build_images(cache_root() / "batch", 3)  # variants 0 and 2 are weak
    db = f"sqlite:///{tmp_path / 'catalogue.db'}"
    files = {"/weak.qcow2": weak.read_bytes(), "/clean.qcow2": clean.read_bytes(),
             "/weak2.qcow2": weak2.read_bytes()}
    with FileServer(files) as srv:
        listing = tmp_path / "vo.list"
        listing.write_bytes(image_list([("camp-weak", srv.url("/weak.qcow2"), weak),
                                        ("camp-clean", srv.url("/clean.qcow2"), clean)], vo=VO))
        auditor = ready_catalogue(db, listing, tmp_path, "a")
        operator = token(db, "operator", "o")
        with CatalogueProcess(db, tmp_path / "catalogue.log", cwd=ROOT) as server:
            # This VO lists any audited image, so that the weak one is listed until withdrawn.
            request = urllib.request.Request(
                f"{server.url}/api/v1/vos/{VO}", method="PUT",
                data=json.dumps({"min_level": "none"}).encode(),
                headers={"Authorization": f"Bearer {operator}",
                         "Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=30).close()
            published = run_batch(tmp_path, f"catalogue:{server.url}/vo/{VO}", "--workers", "2",
                                  "--publish", "--catalogue", server.url, "--token", auditor.token,
                                  "--signing-key", str(auditor.key))
            assert published.returncode == 0, published.stderr
            assert listed(server.url) == ["camp-clean", "camp-weak"]

            found = json.loads(ok("catalogue", "campaign", "query", "--package", "telnetd",
                                  "--save", "telnetd-2026", "--format", "json", "--db", db))
            assert [(h["image_id"], h["endorser_email"], h["listed"])
                    for h in found["affected"]] == [
                ("camp-weak", "endorser@example.org", True)]

            dry = ok("catalogue", "campaign", "notify", "telnetd-2026", "--dry-run",
                     "--deadline", "2026-12-10", "--db", db)
            assert "To: Test Endorser <endorser@example.org>" in dry and "camp-weak" in dry
            with smtp_server(tmp_path) as mail:
                env = {"IMAGEAUDIT_SMTP_HOST": mail.host, "IMAGEAUDIT_SMTP_PORT": str(mail.port),
                       "IMAGEAUDIT_SMTP_USER": USER, "IMAGEAUDIT_MAIL_FROM": "csirt@example.org",
                       "IMAGEAUDIT_SMTP_PASSWORD_FILE": str(tmp_path / "smtp.pw"),
                       "SSL_CERT_FILE": str(mail.cafile)}
                (tmp_path / "smtp.pw").write_text(PASSWORD)
                args = ("catalogue", "campaign", "notify", "telnetd-2026", "--deadline",
                        "2026-12-10", "--catalogue", server.url, "--db", db)
                first = cli(*args, env=env)
                assert first.returncode == 0, first.stderr
                again = cli(*args, env=env)
                assert again.returncode == 0, again.stderr
                # A second weak image of the same endorser appears: its own mail, only it.
                second = tmp_path / "vo2.list"
                second.write_bytes(image_list([("camp-weak2", srv.url("/weak2.qcow2"), weak2)],
                                              vo=VO, identifier="second-list"))
                ok("catalogue", "import-imagelist", str(second), "--db", db)
                more = run_batch(tmp_path, f"catalogue:{server.url}/vo/{VO}", "--workers", "1",
                                 "--publish", "--catalogue", server.url, "--token", auditor.token,
                                 "--signing-key", str(auditor.key))
                assert more.returncode == 0, more.stderr
                third = cli(*args, env=env)
                assert third.returncode == 0, third.stderr
                received = mail.received.messages
            assert len(received) == 2, "notify thrice, one mail per newly affected set"
            late = received[1][2].get_payload(decode=True)
            assert isinstance(late, bytes)
            assert "camp-weak2" in late.decode() and "camp-weak " not in late.decode()
            sender, rcpt, message = received[0]
            assert (sender, rcpt) == ("csirt@example.org", ["endorser@example.org"])
            payload = message.get_payload(decode=True)
            assert isinstance(payload, bytes)
            body = payload.decode()
            assert "camp-weak" in body and "telnetd" in body and "camp-clean" not in body
            assert "sent 0 message(s); 1 version(s) already notified" in again.stderr

            withdrawn = ok("catalogue", "campaign", "withdraw", "telnetd-2026", "--reason",
                           "telnetd enabled (test)", "--db", db)
            assert withdrawn.split("\n")[:2] == ["suspended camp-weak", "suspended camp-weak2"]
            assert listed(server.url) == ["camp-clean"]
