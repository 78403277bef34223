"""End to end, as the federation runs it: the demo's weak image is registered in a catalogue,
uploaded to a site's Glance and booted twice there; the catalogue withdraws it (its signed
report gives level none, below the VO's minimum); the site agent, ``imageaudit cloud sync``,
contains it on the real OpenStack (image deactivated, both servers snapshotted, paused and
locked), logs every step, sends the log to the catalogue and reports the site's holdings; then
``cloud release`` undoes it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from imageaudit.cli.demo import VO, image_list
from imageaudit.cli.main import main
from imageaudit.cli.publish import publish_reports
from imageaudit.cloud.actionlog import default_log
from imageaudit.cloud.openstack import snapshot_name
from imageaudit.example import build_examples
from imageaudit.identity import sha512_file
from imageaudit.pipeline import Judge, ScanOptions, scan_one
from integrations.appdb.process import CatalogueProcess
from tests.builders.debian import cache_root

pytestmark = [pytest.mark.slow, pytest.mark.network]

ROOT = Path(__file__).resolve().parents[2]
WEAK_ID = "imageaudit-example-weak"
SITE = "site-stack"


def catalogue_cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "integrations.appdb.cli", "catalogue", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_sync_contains_what_the_catalogue_withdrew(
        openstack_stack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import openstack

    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(openstack_stack.clouds_yaml))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("IMAGEAUDIT_CATALOGUE_TOKEN", raising=False)

    # The catalogue: the demo's two images registered from its image list, an auditor's key.
    disks = build_examples(cache_root() / "demo-examples")
    weak = disks["weak"]
    db = f"sqlite:///{tmp_path / 'catalogue.db'}"
    catalogue_cli("import-imagelist", str(image_list(disks, tmp_path / "list.json")), "--db", db)
    auditor = catalogue_cli("token", "create", "--role", "auditor", "--name", "aud",
                            "--db", db).strip()
    operator = catalogue_cli("token", "create", "--role", "operator", "--name", SITE,
                             "--db", db).strip()
    key = tmp_path / "aud.key"
    assert main(["keys", "generate", str(key)]) == 0
    catalogue_cli("auditor", "add", "aud", "--public-key", f"{key}.pub", "--db", db)

    # The site: the weak image in Glance (as an image-list sync uploads it), booted twice.
    conn = openstack.connect(cloud="stack-admin")
    glance_image = conn.image.create_image(
        name="imageaudit weak example", data=io.BytesIO(weak.read_bytes()),
        disk_format="qcow2", container_format="bare", visibility="public",
        allow_duplicates=True)
    flavor = conn.compute.find_flavor("m1.tiny")
    servers = [conn.compute.wait_for_server(conn.compute.create_server(
        name=f"weak-vm{i}", image_id=glance_image.id, flavor_id=flavor.id, networks="none"),
        wait=300) for i in range(2)]
    sha512 = sha512_file(weak)[0]
    assert conn.image.get_image(glance_image.id).hash_value == sha512
    # A second copy, as atrope uploads it (tag "atrope", the catalogue id in appdb_id), with a
    # server of its own: atrope deletes it from Glance once the image leaves the list.
    synced = conn.image.create_image(
        name="weak example (atrope)", data=io.BytesIO(weak.read_bytes()), disk_format="qcow2",
        container_format="bare", visibility="public", allow_duplicates=True, tags=["atrope"],
        appdb_id=WEAK_ID)
    orphan = conn.compute.wait_for_server(conn.compute.create_server(
        name="weak-vm-atrope", image_id=synced.id, flavor_id=flavor.id, networks="none"),
        wait=300)

    with CatalogueProcess(db, tmp_path / "catalogue.log", cwd=ROOT) as server:
        url = server.url
        # Before any withdrawal the agent has nothing to contain, and reports the holdings.
        code = main(["cloud", "sync", "--cloud", "stack-admin", "--catalogue", url,
                     "--site", SITE, "--token", operator, "--yes", "--vo", VO])
        out, err = capsys.readouterr()
        assert code == 0, out + err
        assert conn.image.get_image(glance_image.id).status == "active"

        # The catalogue withdraws the weak image: its signed report gives level none.
        options = ScanOptions(progress=False)
        report = scan_one(str(weak), Judge.load(options), options)
        assert report.certification.level == "none"
        assert publish_reports([report], url, auditor, f"sqlite:///{tmp_path / 'r.db'}",
                               signing_key=key) == 0
        capsys.readouterr()
        standing = get(f"{url}/api/v1/images/{WEAK_ID}")
        assert standing["listed"] is False

        conn.image.delete_image(synced.id)  # what atrope does when the image leaves the list

        # Plan first: nothing changes.
        code = main(["cloud", "sync", "--cloud", "stack-admin", "--catalogue", url,
                     "--site", SITE, "--vo", VO])
        out, err = capsys.readouterr()
        assert code == 0, out + err
        assert "would    deactivate" in out and "nothing was changed" in out
        assert conn.image.get_image(glance_image.id).status == "active"

        code = main(["cloud", "sync", "--cloud", "stack-admin", "--catalogue", url,
                     "--site", SITE, "--token", operator, "--yes", "--vo", VO])
        out, err = capsys.readouterr()
        assert code == 0, out + err

        image = conn.image.get_image(glance_image.id)
        assert (image.status, image.visibility, image.is_protected) == (
            "deactivated", "private", True)
        incident = f"withdrawn:{WEAK_ID}"
        for s in [*servers, orphan]:
            server_now = conn.compute.get_server(s.id)
            assert server_now.status == "PAUSED" and server_now.is_locked
            assert incident in server_now.locked_reason
            assert "withdrawn by the catalogue" in server_now.locked_reason
            assert len(list(conn.image.images(name=snapshot_name(incident, s.id)))) == 1
        log = default_log("stack-admin", incident)
        logged = [json.loads(x) for x in log.read_text().splitlines()]
        # (a stack kept running between test sessions may hold copies from earlier runs: they
        # are contained too, and not counted here)
        ours = {glance_image.id, *(s.id for s in servers), orphan.id}
        records = [r for r in logged if r["object"]["id"] in ours]
        assert [(r["object"]["kind"], r["action"]) for r in records] == [
            ("image", "tag"), ("image", "make-private"), ("image", "protect"),
            ("image", "deactivate"),
            *[("server", a) for _ in [*servers, orphan] for a in ("snapshot", "pause", "lock")]]
        # the server whose image atrope deleted was found by the id the agent remembered
        assert f"image {synced.id} is no longer in Glance" in err
        assert {r["result"] for r in records} == {"done"}

        # The catalogue has the containment record and the site's holdings.
        kept = get_with_token(f"{url}/api/v1/images/{WEAK_ID}/containment", operator)
        assert len(kept) == len(logged)
        assert {(r["object"]["id"], r["action"], r["result"]) for r in kept} == {
            (r["object"]["id"], r["action"], r["result"]) for r in logged}
        assert {r["cloud"] for r in kept} == {SITE}
        sites = {s["site"]: s for s in get_with_token(f"{url}/api/v1/sites", operator)}
        assert sites[SITE]["instances"] >= 3  # the orphan counted by its remembered image

        # Again: nothing is repeated.
        code = main(["cloud", "sync", "--cloud", "stack-admin", "--catalogue", url,
                     "--site", SITE, "--token", operator, "--yes", "--vo", VO])
        out, err = capsys.readouterr()
        assert code == 0, out + err
        again = [json.loads(x) for x in log.read_text().splitlines()][len(logged):]
        assert {r["result"] for r in again} == {"already"}
        kept = get_with_token(f"{url}/api/v1/images/{WEAK_ID}/containment", operator)
        assert len(kept) == len(logged) + len(again)

        code = main(["cloud", "release", "--cloud", "stack-admin", "--incident", incident,
                     "--yes", "--publish", "--catalogue", url, "--token", operator])
        out, err = capsys.readouterr()
        assert code == 0, out + err
        image = conn.image.get_image(glance_image.id)
        assert (image.status, image.visibility, image.is_protected) == (
            "active", "public", False)
        for s in [*servers, orphan]:
            server_now = conn.compute.get_server(s.id)
            assert server_now.status == "ACTIVE" and not server_now.is_locked


def get_with_token(url: str, token: str) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as response:
        return json.loads(response.read())
