from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from imageaudit.engine import evaluate
from imageaudit.findings import WaiverNote
from imageaudit.model import Status
from imageaudit.rules import load_rules
from imageaudit.waivers import Waiver, WaiverError, apply_waivers, load_waivers
from tests.judge.helpers import NOW, demo_accounts, judge_registry, make_facts, rule_doc, write_rule

PW = {"type": "default_password", "params": {"passwords": ["admin", "s3cret"]}}


def _findings(tmp_path: Path):  # type: ignore[no-untyped-def]
    registry = judge_registry()
    write_rule(tmp_path, "password", rule_doc("pw", check=PW))
    return evaluate(make_facts(accounts=demo_accounts()), load_rules(tmp_path, registry), registry)


def test_load_waivers(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(
        "waivers:\n"
        "  - rule: pw\n    resource: 'b*'\n    reason: test account\n"
        "    expires: 2025-04-01\n    who: alice@example.org\n"
    )
    assert load_waivers(path) == (
        Waiver("pw", "test account", dt.date(2025, 4, 1), "alice@example.org", "b*"),
    )


def test_waiver_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text("- rule: pw\n  expires: soon\n")
    with pytest.raises(WaiverError) as info:
        load_waivers(path)
    assert info.value.errors == (
        f"{path}: waivers.0.reason: Field required",
        f"{path}: waivers.0.expires: Input should be a valid date or datetime, input is too short",
        f"{path}: waivers.0.who: Field required",
    )


def test_resource_glob_and_expiry(tmp_path: Path) -> None:
    findings = _findings(tmp_path)
    waivers = [
        Waiver("pw", "test account", dt.date(2025, 3, 1), "alice", "b?b"),  # last valid day
        Waiver("pw", "old", dt.date(2025, 2, 28), "carol", "admin"),  # expired
        Waiver("nope", "typo", dt.date(2026, 1, 1), "dave"),
        Waiver("pw", "unused", dt.date(2026, 1, 1), "erin", "zz*"),
    ]
    result, warnings = apply_waivers(findings, waivers, NOW, {"pw"})
    assert [(f.resource, f.status, f.waived) for f in result] == [
        ("admin", Status.FAIL, False),
        ("bob", Status.WAIVED, True),
    ]
    assert result[1].waiver == WaiverNote("test account", "alice", "2025-03-01", Status.FAIL)
    assert result[1].message == "User `bob` has the default password `s3cret` (/etc/shadow line 25)"
    assert warnings == [
        "Waiver for rule `pw` on `admin` by carol expired on 2025-02-28; ignored",
        "Waiver for rule `nope` by dave names a rule the rule set does not have",
        "Waiver for rule `pw` on `zz*` by erin matched no failing finding",
    ]
