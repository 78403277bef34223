"""End to end: a signed image list, a real catalogue server, scans, publishing, withdrawal.

Three container images (their SHA-512 is the archive file's) are listed in a HEPiX image list
signed by a test endorser under a test CA (``openssl``); the list is imported into a catalogue
server started with its own command line on 127.0.0.1. Each image is scanned with the pipeline,
the reports are published (one while the catalogue is down: it waits in the outbox and arrives
once, when the catalogue is back), an operator suspends one image, and the VO's image list must
then hold only the clean, unsuspended image.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from imageaudit.cli.publish import publish_reports
from imageaudit.identity import sha512_file
from imageaudit.pipeline import Judge, ScanOptions, scan_one
from imageaudit.publish import Outcome, publish, report_id
from imageaudit.signing import load_private_key
from imageaudit.store import OutboxState, ResultsStore
from integrations.appdb.imagelist_write import Endorser, image_entry
from integrations.appdb.imagelist_write import image_list as hepix_image_list
from integrations.appdb.process import CatalogueProcess
from tests.builders.container import docker_archive, oci_layout
from tests.builders.example_tree import clean_scenario, weak_scenario
from tests.builders.pki import Pki, make_pki
from tests.publish.helpers import run_cli

pytest.importorskip("integrations.appdb.cli")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[2]
VO = "e2e.test.vo"


def _catalogue_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "integrations.appdb.cli", "catalogue", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _image_list(pki: Pki, images: dict[str, Path], out: Path) -> Path:
    entries = [
        image_entry(ident, path, title=f"{ident} test image",
                    description="built by the end-to-end test", fmt="tar", vo=VO,
                    uri=f"https://endorser.example.org/{ident}.tar")
        for ident, path in images.items()
    ]
    endorser = Endorser(dn=pki.endorser_dn, ca=pki.ca_dn, creator="Endorser One",
                        email="endorser@example.org")
    doc = hepix_image_list(entries, identifier="3b4cbb3a-6e2f-4b0e-9d8c-e2e000000001",
                     title="imageaudit end-to-end list", description="test images",
                     endorser=endorser, source="https://endorser.example.org/",
                     uri="https://endorser.example.org/image.list", valid=timedelta(days=7))
    out.write_bytes(pki.sign(json.dumps(doc, indent=2).encode(), text=True))
    return out


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[dict[str, Any]]:
    pki = make_pki(tmp_path / "pki")
    images = {
        "weak-image": docker_archive(weak_scenario(), tmp_path / "weak.tar"),
        "clean-image": docker_archive(clean_scenario(), tmp_path / "clean.tar"),
        "suspended-image": oci_layout(clean_scenario(), tmp_path / "clean-oci.tar", as_tar=True),
    }
    db = f"sqlite:///{tmp_path / 'catalogue.db'}"
    server = CatalogueProcess(db, tmp_path / "catalogue.log",
                              args=("--ca-dir", str(pki.ca_dir)), cwd=ROOT)
    try:
        yield {"pki": pki, "images": images, "db": db, "server": server, "tmp": tmp_path}
    finally:
        server.stop()


def _token(db: str, role: str) -> str:
    done = _catalogue_cli("token", "create", "--role", role, "--name", f"e2e-{role}", "--db", db)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_signed_list_scan_publish_suspend_withdraws(
    workspace: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    pki: Pki = workspace["pki"]
    images: dict[str, Path] = workspace["images"]
    server: CatalogueProcess = workspace["server"]
    tmp: Path = workspace["tmp"]
    auditor, operator = _token(workspace["db"], "auditor"), _token(workspace["db"], "operator")
    key_file = tmp / "e2e-auditor.key"
    assert run_cli(["keys", "generate", str(key_file)]) == 0
    key_id = capsys.readouterr().out.strip()
    done = _catalogue_cli("auditor", "add", "e2e-auditor", "--public-key", f"{key_file}.pub",
                          "--db", workspace["db"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"auditor e2e-auditor: key {key_id} registered\n"
    key = load_private_key(key_file)
    server.start()

    signed = _image_list(pki, images, tmp / "image.list")
    done = _catalogue_cli("import-imagelist", str(signed), "--verify-with", str(pki.ca_dir),
                          "--catalogue", server.url, "--token", operator)
    assert done.returncode == 0, done.stderr
    assert "3 image(s)" in done.stdout and pki.endorser_dn in done.stdout

    options = ScanOptions(progress=False)
    judge = Judge.load(options)
    reports = {name: scan_one(str(path), judge, options).to_json()
               for name, path in images.items()}
    for name, path in images.items():
        assert reports[name]["certification"]["image_sha512"] == sha512_file(path)[0]
    assert reports["weak-image"]["certification"]["level"] == "none"
    assert reports["clean-image"]["certification"]["level"] != "none"
    assert reports["suspended-image"]["certification"]["level"] != "none"

    store_url = f"sqlite:///{tmp / 'results.db'}"
    with ResultsStore.open(store_url) as store:
        # The catalogue is down while the weak image's report is published: kept, not lost.
        server.stop()
        weak = publish(reports["weak-image"], server.url, auditor, store, sleep=lambda s: None,
                       key=key)
        assert weak.outcome is Outcome.QUEUED
        assert weak.message == (
            f"catalogue {server.url} unreachable: connection refused; "
            "report kept in the outbox (1 pending)"
        )
        server.start()

    # Back up: the next publish (what ``scan --publish`` calls) sends the queued report first.
    code = publish_reports([reports["clean-image"], reports["suspended-image"]], server.url,
                           auditor, store_url, signing_key=key_file)
    assert code == 0
    out = capsys.readouterr().err.splitlines()
    rids = {name: report_id(r) for name, r in reports.items()}
    assert out == [
        f"report {rids['weak-image'][:12]} published to {server.url} (stored)",
        f"report {rids['clean-image'][:12]} published to {server.url} (stored)",
        f"report {rids['suspended-image'][:12]} published to {server.url} (stored)",
    ]
    # Flushing again and re-publishing send nothing twice.
    assert run_cli(["outbox", "flush", "--store", store_url, "--token", auditor,
                    "--signing-key", str(key_file)]) == 0
    assert capsys.readouterr().err == "nothing to send\n"
    with ResultsStore.open(store_url) as store:
        assert store.count(OutboxState.SENT) == 3
        again = publish(reports["weak-image"], server.url, auditor, store, key=key)
        assert again.outcome is Outcome.ALREADY_SENT

    done = _catalogue_cli("suspend", "suspended-image", "--reason", "leaked key (e2e test)",
                          "--catalogue", server.url, "--token", operator)
    assert done.returncode == 0, done.stderr

    standing = {img["image_id"]: img for img in _get(f"{server.url}/api/v1/images?vo={VO}")}
    assert {k: (v["level"], v["listed"], v["suspended"]) for k, v in standing.items()} == {
        "weak-image": ("none", False, False),
        "clean-image": (reports["clean-image"]["certification"]["level"], True, False),
        "suspended-image": (reports["suspended-image"]["certification"]["level"], False, True),
    }
    assert standing["suspended-image"]["suspension_reason"] == "leaked key (e2e test)"
    assert {k: (v["signer"], v["report_id"]) for k, v in standing.items()} == {
        name: ("e2e-auditor", rids[name]) for name in images}
    image_list = _get(f"{server.url}/api/v1/vos/{VO}/image.list")["hv:imagelist"]
    listed = [entry["hv:image"] for entry in image_list["hv:images"]]
    assert [img["dc:identifier"] for img in listed] == ["clean-image"]
    assert listed[0]["sl:checksum:sha512"] == sha512_file(images["clean-image"])[0]
    # Exactly once: the catalogue holds each report, the one sent after the outage included.
    for name in images:
        assert _get(f"{server.url}/api/v1/images/{name}/report") == reports[name]
    _assert_stored_once(workspace["db"], set(rids.values()))


def _assert_stored_once(db: str, expected: set[str]) -> None:
    import sqlalchemy as sa

    from integrations.appdb.db import make_engine

    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT report_id FROM reports")).all()
    finally:
        engine.dispose()
    assert sorted(r[0] for r in rows) == sorted(expected)

