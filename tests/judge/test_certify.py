from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from imageaudit.certify import LevelsError, load_levels, required_rules
from imageaudit.engine import scan_facts
from imageaudit.findings import LevelResult
from imageaudit.identity import ImageIdentity, identify_image
from imageaudit.model import Status
from imageaudit.rules import load_rules
from imageaudit.waivers import Waiver
from tests.judge.helpers import NOW, demo_accounts, judge_registry, make_facts, rule_doc, write_rule

REPO_LEVELS = Path(__file__).resolve().parents[2] / "imageaudit" / "ruleset" / "levels.yaml"
PW = {"type": "default_password", "params": {"passwords": ["admin"]}}


def _tree(tmp_path: Path) -> Path:
    write_rule(tmp_path, "password", rule_doc("crit_fail", check=PW))
    write_rule(tmp_path, "ssh", rule_doc("high_error", severity="high", check={"type": "explodes"}))
    write_rule(
        tmp_path, "hygiene", rule_doc("hyg_low", category="hygiene", severity="low", check=PW)
    )
    write_rule(
        tmp_path, "ssh", rule_doc("info_named", severity="info", check=PW, levels=["standard"])
    )
    return tmp_path


def _scan(tmp_path: Path, waivers: tuple[Waiver, ...] = ()):  # type: ignore[no-untyped-def]
    registry = judge_registry()
    rules = load_rules(_tree(tmp_path / "rules"), registry)
    return scan_facts(
        make_facts(accounts=demo_accounts()),
        rules,
        load_levels(REPO_LEVELS),
        waivers,
        ImageIdentity("demo.qcow2", "ab" * 64, 1234),
        registry=registry,
        now=NOW,
        tool_version="9.9",
    )


def test_levels_inherit_and_rules_name_their_level(tmp_path: Path) -> None:
    registry = judge_registry()
    rules = load_rules(_tree(tmp_path), registry)
    report = _scan(tmp_path / "scan")
    assert required_rules(load_levels(REPO_LEVELS), report.rules) == {
        "basic": ("crit_fail",),
        "standard": ("crit_fail", "high_error", "info_named"),
        "hardened": ("crit_fail", "high_error", "hyg_low", "info_named"),
    }
    assert len(rules) == 4


def test_fail_and_error_block_levels(tmp_path: Path) -> None:
    cert = _scan(tmp_path).certification
    assert cert.level == "none"
    assert cert.levels == (
        LevelResult("basic", cert.levels[0].description, False, ("crit_fail",), ()),
        LevelResult(
            "standard",
            cert.levels[1].description,
            False,
            ("crit_fail", "high_error", "info_named"),
            ("high_error",),
        ),
        LevelResult(
            "hardened",
            cert.levels[2].description,
            False,
            ("crit_fail", "high_error", "hyg_low", "info_named"),
            ("high_error",),
        ),
    )
    assert (cert.issued, cert.expires) == ("2025-03-01T12:00:00Z", "2025-03-31T12:00:00Z")
    assert (cert.image_sha512, cert.image_size, cert.tool_version) == ("ab" * 64, 1234, "9.9")
    assert cert.ruleset_version.startswith("sha256:")
    assert cert.levels_version.startswith("sha256:")


def test_waivers_lift_blocks_and_error_blocks_until_waived(tmp_path: Path) -> None:
    until = dt.date(2025, 6, 1)
    waivers = (
        Waiver("crit_fail", "lab image", until, "alice", resource="admin"),
        Waiver("info_named", "known", until, "alice"),
    )
    report = _scan(tmp_path, waivers)
    cert = report.certification
    assert cert.level == "basic"
    assert [(lv.name, lv.granted, lv.blocking) for lv in cert.levels] == [
        ("basic", True, ()),
        ("standard", False, ("high_error",)),
        ("hardened", False, ("high_error", "hyg_low")),
    ]
    report = _scan(
        tmp_path / "2", (*waivers, Waiver("high_error", "checked by hand", until, "bob"))
    )
    assert report.certification.level == "standard"
    statuses = {r.id: r.status for r in report.rules}
    assert statuses == {
        "crit_fail": Status.WAIVED,
        "high_error": Status.WAIVED,
        "hyg_low": Status.FAIL,
        "info_named": Status.WAIVED,
    }


def test_validity_override(tmp_path: Path) -> None:
    registry = judge_registry()
    rules = load_rules(_tree(tmp_path), registry)
    report = scan_facts(
        make_facts(accounts=demo_accounts()),
        rules,
        load_levels(REPO_LEVELS),
        registry=registry,
        now=NOW,
        validity_days=7,
    )
    assert report.certification.expires == "2025-03-08T12:00:00Z"
    assert report.image.sha512 is None


def test_levels_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "levels.yaml"
    path.write_text(
        "version: 1\nlevels:\n  - name: none\n  - name: a\n    blocked_by: {severities: [bad]}\n"
    )
    with pytest.raises(LevelsError) as info:
        load_levels(path)
    assert info.value.errors == (
        f"{path}: levels.1.blocked_by.severities.0: "
        "Input should be 'critical', 'high', 'moderate', 'low' or 'info'",
    )
    path.write_text("version: 1\nlevels:\n  - name: none\n  - name: a\n  - name: a\n")
    with pytest.raises(LevelsError) as info:
        load_levels(path)
    assert info.value.errors == (
        f"{path}: level name 'none' is reserved for 'below the first level'",
        f"{path}: duplicate level 'a'",
    )


def test_unknown_level_names_are_warnings(tmp_path: Path) -> None:
    registry = judge_registry()
    write_rule(tmp_path / "r", "a", rule_doc("odd", levels=["gold"]))
    report = scan_facts(
        make_facts(),
        load_rules(tmp_path / "r", registry),
        load_levels(REPO_LEVELS),
        registry=registry,
        now=NOW,
    )
    assert report.warnings == (
        "Rule `odd` names level `gold`, which the levels file does not define",
    )


def test_identity_streams_sha512(tmp_path: Path) -> None:
    import hashlib

    data = b"x" * (3 * 1024 * 1024 + 5)
    (tmp_path / "img.raw").write_bytes(data)
    ident = identify_image(tmp_path / "img.raw", source="img.raw")
    assert ident == ImageIdentity("img.raw", hashlib.sha512(data).hexdigest(), len(data))
    assert identify_image(tmp_path) == ImageIdentity(str(tmp_path))
