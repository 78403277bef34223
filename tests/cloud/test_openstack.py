"""``imageaudit cloud`` against a real OpenStack on 127.0.0.1 (Keystone, Glance, Placement and
Nova with the fake compute driver, from Debian 12's packages): every assertion reads the
cloud's state back through openstacksdk, as an operator would check."""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imageaudit.cli.main import main
from imageaudit.cloud.actionlog import ActionLog, default_log
from imageaudit.cloud.model import INCIDENT_KEY, ContainOptions, ImageQuery, Target
from imageaudit.cloud.openstack import EVIDENCE_KEY, OpenStackProvider, snapshot_name
from imageaudit.cloud.steps import run_steps

pytestmark = [pytest.mark.slow, pytest.mark.network]

INCIDENT = "EGI-2026-1204"


@pytest.fixture
def os_env(openstack_stack: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(openstack_stack.clouds_yaml))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for name in list(os.environ):
        if name.startswith("OS_") and name != "OS_CLIENT_CONFIG_FILE":
            monkeypatch.delenv(name)
    return tmp_path


def connect(user: str) -> Any:
    import openstack

    return openstack.connect(cloud=f"stack-{user}")


@dataclass
class Booted:
    image: Any
    sha512: str
    servers: list[Any]


def upload_and_boot(user: str, servers: int, *, visibility: str = "public",
                    data: bytes | None = None) -> Booted:
    """A new image (its own content, so its own SHA-512) and ``servers`` servers from it."""
    conn = connect(user)
    data = data if data is not None else os.urandom(64 * 1024)
    image = conn.image.create_image(name=f"weak-{hashlib.sha1(data).hexdigest()[:8]}",
                                    data=io.BytesIO(data), disk_format="qcow2",
                                    container_format="bare", visibility=visibility,
                                    allow_duplicates=True)
    flavor = conn.compute.find_flavor("m1.tiny")
    made = [conn.compute.create_server(name=f"vm{i}-{image.id[:8]}", image_id=image.id,
                                       flavor_id=flavor.id, networks="none")
            for i in range(servers)]
    ready = [conn.compute.wait_for_server(s, wait=300) for s in made]
    return Booted(conn.image.get_image(image.id), hashlib.sha512(data).hexdigest(), ready)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["cloud", *args])
    out, err = capsys.readouterr()
    return code, out, err


def log_records(cloud: str, incident: str = INCIDENT) -> list[dict[str, Any]]:
    path = default_log(cloud, incident)
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_plan_changes_nothing(os_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    booted = upload_and_boot("admin", 1)
    code, out, _ = cli(capsys, "plan", "--cloud", "stack-admin", booted.sha512,
                       "--incident", INCIDENT)
    assert code == 0, out
    assert "1 copy of SHA-512" in out and "1 instance" in out
    for action in ("tag", "make-private", "protect", "deactivate", "snapshot", "pause", "lock"):
        assert f"would    {action}" in out
    conn = connect("admin")
    image = conn.image.get_image(booted.image.id)
    assert (image.status, image.visibility, image.is_protected) == ("active", "public", False)
    server = conn.compute.get_server(booted.servers[0].id)
    assert (server.status, server.is_locked) == ("ACTIVE", False)
    assert not default_log("stack-admin", INCIDENT).exists()


def test_contain_then_again_then_release(os_env: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    booted = upload_and_boot("admin", 2)
    code, out, err = cli(capsys, "contain", "--cloud", "stack-admin", booted.sha512,
                         "--incident", INCIDENT, "--reason", "default root password", "--yes")
    assert code == 0, out + err
    conn = connect("admin")
    image = conn.image.get_image(booted.image.id)
    assert image.status == "deactivated"
    assert image.visibility == "private"
    assert image.is_protected
    assert f"incident:{INCIDENT}" in image.tags
    assert image.properties[INCIDENT_KEY] == INCIDENT
    for s in booted.servers:
        server = conn.compute.get_server(s.id)
        assert server.status == "PAUSED"
        assert server.is_locked
        assert INCIDENT in server.locked_reason
        snaps = [i for i in conn.image.images(name=snapshot_name(INCIDENT, s.id))]
        assert len(snaps) == 1, "one evidence snapshot per server"
        assert snaps[0].properties[EVIDENCE_KEY] == "snapshot"
    records = log_records("stack-admin")
    assert [(r["object"]["kind"], r["action"], r["result"]) for r in records] == [
        ("image", "tag", "done"), ("image", "make-private", "done"),
        ("image", "protect", "done"), ("image", "deactivate", "done"),
        *[(k, a, "done") for _ in booted.servers
          for k, a in (("server", "snapshot"), ("server", "pause"), ("server", "lock"))],
    ]
    assert records[3]["before"] == {"status": "active"}
    assert records[3]["after"] == {"status": "deactivated"}
    for r in records:
        assert r["cloud"] == "stack-admin" and r["incident"] == INCIDENT and r["time"]

    # Again: every step is already taken; nothing is repeated (one snapshot per server).
    code, out, _ = cli(capsys, "contain", "--cloud", "stack-admin", booted.sha512,
                       "--incident", INCIDENT, "--reason", "default root password", "--yes")
    assert code == 0
    assert "nothing to do" not in out  # --yes runs, and logs the steps as already taken
    again = log_records("stack-admin")[len(records):]
    assert again and {r["result"] for r in again} == {"already"}
    for s in booted.servers:
        assert len(list(conn.image.images(name=snapshot_name(INCIDENT, s.id)))) == 1

    code, out, err = cli(capsys, "release", "--cloud", "stack-admin", "--incident", INCIDENT,
                         "--yes")
    assert code == 0, out + err
    image = conn.image.get_image(booted.image.id)
    assert (image.status, image.visibility, image.is_protected) == ("active", "public", False)
    for s in booted.servers:
        server = conn.compute.get_server(s.id)
        assert (server.status, server.is_locked) == ("ACTIVE", False)
        # the evidence stays
        assert len(list(conn.image.images(name=snapshot_name(INCIDENT, s.id)))) == 1
    released = log_records("stack-admin")[len(records) + len(again):]
    assert {r["action"] for r in released} == {"reactivate", "restore-visibility",
                                               "restore-protection", "unpause", "unlock"}
    assert {r["result"] for r in released} == {"done"}


def test_interrupted_contain_resumes(os_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    booted = upload_and_boot("admin", 1)
    provider = OpenStackProvider(Target("openstack", "stack-admin"))
    options = ContainOptions(incident=INCIDENT, reason="test")
    steps = provider.contain_steps(provider.find(ImageQuery("x", sha512=booted.sha512)), options)
    log = ActionLog(default_log("stack-admin", INCIDENT))
    # The run stopped after the image steps and the snapshot.
    first = run_steps(steps[:5], act=True, cloud="stack-admin", incident=INCIDENT,
                      image=booted.sha512, log=log)
    assert {r.result for r in first} == {"done"}
    code, out, _ = cli(capsys, "contain", "--cloud", "stack-admin", booted.sha512,
                       "--incident", INCIDENT, "--reason", "test", "--yes")
    assert code == 0, out
    second = log_records("stack-admin")[5:]
    assert [(r["action"], r["result"]) for r in second] == [
        ("tag", "already"), ("make-private", "already"), ("protect", "already"),
        ("deactivate", "already"), ("snapshot", "already"), ("pause", "done"),
        ("lock", "done")]
    server = connect("admin").compute.get_server(booted.servers[0].id)
    assert server.status == "PAUSED" and server.is_locked


def test_refused_steps_are_failures_with_the_reason(
        os_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """alice (a member of vo1, not an admin) sees the admin's public image: Glance refuses her
    changes to it with 403, which openstacksdk's deactivate reports as success; the image she
    owns in her own project she may contain."""
    theirs = upload_and_boot("admin", 0, data=b"shared-image" + os.urandom(4096))
    code, out, err = cli(capsys, "contain", "--cloud", "stack-alice", theirs.sha512,
                         "--incident", INCIDENT, "--reason", "test", "--yes")
    assert code == 1
    assert "FAILED   deactivate" in out
    assert "403" in out or "still shows it not deactivated" in out
    assert "failed or not taken" in err
    image = connect("admin").image.get_image(theirs.image.id)
    assert image.status == "active", "nothing changed on an image alice may not change"
    failed = [r for r in log_records("stack-alice") if r["result"] == "failed"]
    assert {r["action"] for r in failed} >= {"deactivate"}
    assert all(r["reason"] for r in failed)

    mine = upload_and_boot("alice", 1, visibility="private")
    # the admin finds it, and its server, in alice's project
    code, out, _ = cli(capsys, "plan", "--cloud", "stack-admin", mine.sha512)
    assert code == 0 and "1 copy of SHA-512" in out and "1 instance" in out
    code, out, err = cli(capsys, "contain", "--cloud", "stack-alice", mine.sha512,
                         "--incident", "INC-alice", "--reason", "test", "--yes")
    assert code == 0, out + err
    assert "all_tenants is for admins" in err  # she sees only her project's servers
    conn = connect("alice")
    assert conn.image.get_image(mine.image.id).status == "deactivated"
    server = conn.compute.get_server(mine.servers[0].id)
    assert server.status == "PAUSED" and server.is_locked


def test_unknown_cloud_is_a_usage_error(os_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "plan", "--cloud", "nosuchcloud", "a" * 128)
    assert code == 2
    assert "nosuchcloud" in err

