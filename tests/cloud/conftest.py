"""Real clouds on loopback for the cloud tests: moto_server for AWS (one per session, reset
before each test)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

AWS_REGION = "eu-west-1"
MOTO_START_SECONDS = 60.0


@dataclass(frozen=True)
class MotoServer:
    """A moto_server on 127.0.0.1 whose requests can be recorded (moto's recorder), to check
    what a client asked when moto keeps no trace of it (StopInstances' Hibernate)."""

    url: str

    def post(self, path: str, body: bytes = b"") -> bytes:
        # text/plain: moto reads reset-auth's count from the raw body, which a form type hides
        request = urllib.request.Request(self.url + path, method="POST", data=body,
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return bytes(answer.read())

    def reset(self) -> None:
        self.post("/moto-api/reset-auth", b"inf")
        self.post("/moto-api/reset")
        self.post("/moto-api/recorder/reset-recording")
        self.post("/moto-api/recorder/start-recording")

    def requests(self) -> list[dict[str, list[str]]]:
        """The EC2 query requests received since the last reset: {parameter: [values]} each,
        ``Action`` among them."""
        with urllib.request.urlopen(self.url + "/moto-api/recorder/download-recording",
                                    timeout=10) as answer:
            lines = answer.read().decode().splitlines()
        out = []
        for line in lines:
            entry = json.loads(line)
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode()
            out.append(parse_qs(body))
        return out

    def actions(self) -> list[str]:
        return [r["Action"][0] for r in self.requests() if "Action" in r]

    @contextmanager
    def iam_enforced(self) -> Iterator[None]:
        """Every request authenticated and authorised by moto's IAM (users and policies made
        in it before), as AWS does; off again afterwards."""
        self.post("/moto-api/reset-auth", b"0")
        try:
            yield
        finally:
            self.post("/moto-api/reset-auth", b"inf")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto_server from this Python's environment, with AMI validation on and no default AMIs
    (moto would otherwise launch instances from AMIs that do not exist)."""
    program = Path(sys.executable).parent / "moto_server"
    if not program.exists():
        pytest.skip(f"moto_server is not installed beside {sys.executable} (pip install "
                    "'moto[server]')")
    work = tmp_path_factory.mktemp("moto")
    port = _free_port()
    env = {**os.environ, "MOTO_ENABLE_AMI_VALIDATION": "true",
           "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
           "MOTO_RECORDER_FILEPATH": str(work / "recording.jsonl")}
    log = (work / "moto.log").open("wb")
    proc = subprocess.Popen([str(program), "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=work)
    server = MotoServer(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + MOTO_START_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"moto_server exited ({proc.returncode}): "
                            f"{(work / 'moto.log').read_text()[-2000:]}")
            try:
                server.post("/moto-api/reset")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not answer on port {port} in "
                                f"{MOTO_START_SECONDS:.0f} s")
                time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def aws_moto(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch,
             tmp_path: Path) -> MotoServer:
    """A reset moto_server that boto3 reaches through ``AWS_ENDPOINT_URL``, with fake
    credentials and no profile or configuration file of the user's."""
    moto_server.reset()
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN",
                 "AWS_ENDPOINT_URL_EC2", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config-none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials-none"))
    return moto_server


SHA512 = "5e" * 64
CATALOGUE_ID = "egi-example-debian-12"


@dataclass(frozen=True)
class AwsWorld:
    """An account holding a withdrawn image as an AMI (tagged as an endorser imports it) with
    two instances launched from it, and an unrelated AMI with an instance of its own that
    containment must leave alone."""

    ec2: Any
    account: str
    ami: str
    plain: str  # one EBS root volume, no hibernation
    hibernating: str  # hibernation configured, a root and a data volume
    bystander_ami: str
    bystander: str

    def image(self, ami: str | None = None) -> dict[str, Any]:
        got = self.ec2.describe_images(ImageIds=[ami or self.ami], IncludeDisabled=True)
        return dict(got["Images"][0])

    def instance(self, instance_id: str) -> dict[str, Any]:
        got = self.ec2.describe_instances(InstanceIds=[instance_id])
        return dict(got["Reservations"][0]["Instances"][0])

    def state(self, instance_id: str) -> str:
        return str(self.instance(instance_id)["State"]["Name"])

    def protected(self, instance_id: str) -> bool:
        got = self.ec2.describe_instance_attribute(InstanceId=instance_id,
                                                   Attribute="disableApiTermination")
        return bool(got["DisableApiTermination"]["Value"])

    def volumes(self, instance_id: str) -> list[str]:
        mappings = self.instance(instance_id)["BlockDeviceMappings"]
        return sorted(m["Ebs"]["VolumeId"] for m in mappings if "Ebs" in m)

    def evidence(self, incident: str) -> dict[str, dict[str, str]]:
        """Snapshot id → its tags, for every snapshot tagged with ``incident``."""
        got = self.ec2.describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": "tag:imageaudit:incident", "Values": [incident]}])
        return {s["SnapshotId"]: {"volume": s["VolumeId"], **{t["Key"]: t["Value"]
                                                              for t in s.get("Tags", [])}}
                for s in got["Snapshots"]}


def register_ami(ec2: Any, name: str, tags: dict[str, str]) -> str:
    """An AMI as moto accepts one: registered from a snapshot of a volume."""
    volume = ec2.create_volume(AvailabilityZone=f"{AWS_REGION}a", Size=8)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume, Description=f"{name} root")["SnapshotId"]
    ami = ec2.register_image(Name=name, RootDeviceName="/dev/sda1", BlockDeviceMappings=[
        {"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snapshot}}])["ImageId"]
    if tags:
        ec2.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return str(ami)


def launch(ec2: Any, ami: str, name: str, **extra: Any) -> str:
    got = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                            TagSpecifications=[{"ResourceType": "instance",
                                                "Tags": [{"Key": "Name", "Value": name}]}],
                            **extra)
    return str(got["Instances"][0]["InstanceId"])


@pytest.fixture
def aws_world(aws_moto: MotoServer) -> AwsWorld:
    import boto3

    ec2 = boto3.client("ec2", region_name=AWS_REGION)
    ami = register_ami(ec2, "withdrawn-debian-12",
                       {"imageaudit:sha512": SHA512, "imageaudit:catalogue-id": CATALOGUE_ID})
    plain = launch(ec2, ami, "web-1")
    hibernating = launch(
        ec2, ami, "db-1", HibernationOptions={"Configured": True},
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                              "Ebs": {"VolumeSize": 8, "Encrypted": True}},
                             {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 4}}])
    bystander_ami = register_ami(ec2, "unrelated", {"imageaudit:sha512": "7a" * 64})
    bystander = launch(ec2, bystander_ami, "other-1")
    account = ec2.describe_images(ImageIds=[ami])["Images"][0]["OwnerId"]
    aws_moto.post("/moto-api/recorder/reset-recording")
    return AwsWorld(ec2, account, ami, plain, hibernating, bystander_ami, bystander)
