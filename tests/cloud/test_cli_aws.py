"""``imageaudit cloud`` on AWS from the command line, against moto_server: the same commands a
provider types, ``--cloud aws:@REGION``, the state read back through boto3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imageaudit.cli.main import main
from imageaudit.cloud.actionlog import default_log
from tests.cloud.conftest import AWS_REGION, SHA512, AwsWorld

CLOUD = f"aws:@{AWS_REGION}"


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["cloud", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_contain_release_by_sha512(aws_world: AwsWorld, state_home: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    w = aws_world
    code, out, _ = cli(capsys, "plan", "--cloud", CLOUD, SHA512)
    assert code == 0, out
    assert "1 copy of SHA-512" in out and "2 instances" in out
    assert "would    disable" in out and "would    snapshot" in out
    assert w.image()["State"] == "available"

    # not on a terminal and without --yes: nothing is changed, and the exit code says so
    code, out, err = cli(capsys, "contain", "--cloud", CLOUD, SHA512, "--incident", "INC-7",
                         "--reason", "root password")
    assert code == 2 and "give --yes" in err
    assert w.image()["State"] == "available"

    code, out, err = cli(capsys, "contain", "--cloud", CLOUD, SHA512, "--incident", "INC-7",
                         "--reason", "root password", "--yes")
    assert code == 0, out + err
    assert w.image()["State"] == "disabled"
    assert {w.state(w.plain), w.state(w.hibernating)} == {"stopped"}
    log = default_log(CLOUD, "INC-7")
    records = [json.loads(x) for x in log.read_text().splitlines()]
    assert records and {r["result"] for r in records} == {"done"}
    assert f"action log: {log}" in out

    code, out, err = cli(capsys, "release", "--cloud", CLOUD, "--incident", "INC-7", "--yes")
    assert code == 0, out + err
    assert w.image()["State"] == "available"
    assert {w.state(w.plain), w.state(w.hibernating)} <= {"pending", "running"}
    assert not w.protected(w.plain)


def test_release_without_a_log_is_refused(aws_world: AwsWorld, state_home: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "release", "--cloud", CLOUD, "--incident", "INC-none", "--yes")
    assert code == 2
    assert "no action log at" in err


def test_bad_arguments_are_usage_errors(state_home: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "contain", "--cloud", "aws:prod", "ami-0123456789abcdef0",
                       "--incident", "I", "--reason", "r", "--yes")
    assert code == 2 and "aws:PROFILE@REGION" in err
    code, _, err = cli(capsys, "contain", "--cloud", CLOUD, "ami-0123456789abcdef0",
                       "--incident", "-bad id", "--reason", "r", "--yes")
    assert code == 2 and "incident id" in err
