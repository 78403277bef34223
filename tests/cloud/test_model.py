"""The cloud commands' own logic, without a cloud: targets, incidents, the step runner's
judgement, the action log, and what release undoes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imageaudit.cloud.actionlog import ActionLog, default_log
from imageaudit.cloud.model import (
    CloudObject,
    Record,
    State,
    Step,
    check_incident,
    parse_target,
)
from imageaudit.cloud.provider import release_pairs
from imageaudit.cloud.steps import run_steps
from imageaudit.errors import UsageError


def test_targets() -> None:
    t = parse_target("mysite")
    assert (t.kind, t.name) == ("openstack", "mysite")
    t = parse_target("aws:incident@eu-west-1")
    assert (t.kind, t.profile, t.region) == ("aws", "incident", "eu-west-1")
    t = parse_target("aws:@us-gov-west-1")
    assert (t.kind, t.profile, t.region) == ("aws", None, "us-gov-west-1")
    for bad in ("aws:incident", "aws:x@nowhere", "../etc/passwd", "", "a b", "aws:a/b@eu-west-1"):
        with pytest.raises(UsageError):
            parse_target(bad)


def test_incident_ids() -> None:
    assert check_incident("EGI-2026-12#3") == "EGI-2026-12#3"
    assert check_incident("withdrawn:3fa85f64-5717-4562-b3fc-2c963f66afa6")
    for bad in ("", "-rf", "a" * 65, "with space", "new\nline"):
        with pytest.raises(UsageError):
            check_incident(bad)


class FakeObject:
    """State of one object held in memory: enough to judge the runner, not a cloud."""

    def __init__(self) -> None:
        self.state: State = {"status": "active"}
        self.applied = 0


def step(obj: FakeObject, *, works: bool = True, raises: bool = False, gate: bool = False,
         action: str = "deactivate", oid: str = "i1") -> Step:
    def apply() -> None:
        obj.applied += 1
        if raises:
            raise RuntimeError("HTTP 409 conflict")
        if works:
            obj.state = {"status": "deactivated"}

    return Step(CloudObject("image", oid), action, "deactivate it", lambda: dict(obj.state),
                lambda s: s["status"] == "deactivated", apply, unmet="still active", gate=gate)


def test_runner_judges_on_the_state_read_back(tmp_path: Path) -> None:
    log = ActionLog(tmp_path / "log.jsonl")
    ok, silent, broken = FakeObject(), FakeObject(), FakeObject()
    plan = run_steps([step(ok)], act=False, cloud="c", incident="I", image="img", log=log)
    assert [r.result for r in plan] == ["planned"] and ok.applied == 0
    assert not log.path.exists(), "a plan writes no log"

    records = run_steps([step(ok), step(silent, works=False), step(broken, raises=True)],
                        act=True, cloud="c", incident="I", image="img", log=log)
    assert [r.result for r in records] == ["done", "failed", "failed"]
    assert records[0].before == {"status": "active"}
    assert records[0].after == {"status": "deactivated"}
    assert records[1].reason == "still active (read back: status=active)"
    assert "409" in records[2].reason
    again = run_steps([step(ok)], act=True, cloud="c", incident="I", image="img", log=log)
    assert [r.result for r in again] == ["already"] and ok.applied == 1
    lines = [json.loads(x) for x in log.path.read_text().splitlines()]
    assert [x["result"] for x in lines] == ["done", "failed", "failed", "already"]
    assert [r.result for r in log.records()] == ["done", "failed", "failed", "already"]


def test_failed_gate_skips_the_rest_of_that_object_only(tmp_path: Path) -> None:
    a, b = FakeObject(), FakeObject()
    records = run_steps(
        [step(a, works=False, gate=True, action="snapshot", oid="s1"),
         step(a, action="pause", oid="s1"),
         step(b, action="pause", oid="s2")],
        act=True, cloud="c", incident="I", image="img", log=None)
    assert [r.result for r in records] == ["failed", "skipped", "done"]
    assert "snapshot step before it failed" in records[1].reason


def test_a_damaged_log_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"not": "a record"}\n')
    with pytest.raises(UsageError, match=r"log.jsonl:1: not an action log record"):
        list(ActionLog(path).records())


def test_default_log_stays_under_the_state_dir(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    path = default_log("aws:p@eu-west-1", "withdrawn:a/../../b")
    assert path.resolve().is_relative_to(tmp_path / "imageaudit" / "cloud")
    assert path.parent.parent == tmp_path / "imageaudit" / "cloud"


def rec(oid: str, action: str, result: str = "done", incident: str = "I") -> Record:
    return Record("t", "c", incident, "img", CloudObject("server", oid), action, {}, {},
                  result)  # type: ignore[arg-type]


def test_release_undoes_done_steps_once_newest_first() -> None:
    records = [rec("s1", "snapshot"), rec("s1", "pause"), rec("s1", "lock"),
               rec("s2", "pause", "already"), rec("s3", "pause", "failed"),
               rec("s4", "lock", incident="other")]
    assert [(r.obj.id, r.action) for r in release_pairs(records, "I")] == [
        ("s1", "lock"), ("s1", "pause")]
    # after a release, nothing is left to undo; a new contain makes it undoable again
    records += [rec("s1", "unlock"), rec("s1", "unpause")]
    assert release_pairs(records, "I") == []
    records.append(rec("s1", "pause"))
    assert [(r.obj.id, r.action) for r in release_pairs(records, "I")] == [("s1", "pause")]
