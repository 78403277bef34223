from __future__ import annotations

from pathlib import Path

import pytest

from imageaudit.checks import MissingPolicy
from imageaudit.findings import Category
from imageaudit.model import Severity
from imageaudit.rules import RuleSetError, load_rules, validate_rules
from tests.judge.helpers import DefaultPasswordParams, judge_registry, rule_doc, write_rule

REPO_RULES = Path(__file__).resolve().parents[2] / "imageaudit" / "ruleset"


def test_valid_rule_loads_with_typed_params(tmp_path: Path) -> None:
    write_rule(
        tmp_path,
        "password",
        rule_doc(
            "password_default",
            check={"type": "default_password", "params": {"passwords": ["admin"]}},
            applies_to={"image_kinds": ["vm"]},
            levels=["basic"],
            missing="fail",
        ),
    )
    (tmp_path / "levels.yaml").write_text("not: a rule\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.yaml").write_text("- not a rule\n")
    ruleset = load_rules(tmp_path, judge_registry())
    rule = ruleset.rules[0]
    assert [r.id for r in ruleset] == ["password_default"]
    assert rule.params == DefaultPasswordParams(passwords=["admin"])
    assert rule.category is Category.PASSWORD
    assert rule.severity is Severity.CRITICAL
    assert rule.applies_to.image_kinds == ("vm",)
    assert rule.levels == ("basic",)
    assert rule.missing is MissingPolicy.FAIL
    assert ruleset.version.startswith("sha256:") and len(ruleset.version) == 71


def test_every_error_is_listed_with_its_file(tmp_path: Path) -> None:
    mismatch = write_rule(tmp_path, "a", rule_doc("right_id"), name="wrong_name")
    dup1 = write_rule(tmp_path, "a", rule_doc("twice"))
    dup2 = write_rule(tmp_path, "b", rule_doc("twice"))
    unknown = write_rule(tmp_path, "b", rule_doc("unknown_type", check={"type": "nope"}))
    bad_params = write_rule(
        tmp_path,
        "c",
        rule_doc("bad_params", check={"type": "default_password", "params": {"pw": ["x"]}}),
    )
    bad_field = write_rule(tmp_path, "c", rule_doc("bad_field", severity="urgent", extra=1))
    not_yaml = tmp_path / "c" / "broken.yaml"
    not_yaml.write_text("id: [unclosed\n")
    yml = tmp_path / "c" / "old.yml"
    yml.write_text("id: old\n")
    errors = validate_rules(tmp_path, judge_registry())
    assert errors == [
        f"{mismatch}: id 'right_id' does not match the file name 'wrong_name'",
        f"{dup2}: duplicate rule id 'twice' (also {dup1})",
        f"{unknown}: check.type: unknown check type 'nope' (known: always_pass, bad_return, "
        "default_password, explodes, needs_deeper)",
        f"{bad_field}: severity: Input should be 'critical', 'high', 'moderate', 'low' or 'info'",
        f"{bad_field}: extra: Extra inputs are not permitted",
        f"{bad_params}: check.params.passwords: Field required",
        f"{bad_params}: check.params.pw: Extra inputs are not permitted",
        f"{not_yaml}: cannot read the rule: invalid YAML at line 2, column 1: "
        "expected ',' or ']', but got '<stream end>'",
        f"{yml}: rule files end in .yaml",
    ]
    with pytest.raises(RuleSetError) as info:
        load_rules(tmp_path, judge_registry())
    assert list(info.value.errors) == errors


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    assert validate_rules(tmp_path / "nowhere") == [
        f"{tmp_path / 'nowhere'}: not a directory of rules"
    ]


def test_ruleset_version_changes_with_any_file(tmp_path: Path) -> None:
    write_rule(tmp_path, "a", rule_doc("one"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "defaults.txt").write_text("admin\n")
    before = load_rules(tmp_path, judge_registry()).version
    assert load_rules(tmp_path, judge_registry()).version == before
    (tmp_path / "data" / "defaults.txt").write_text("admin\nroot\n")
    assert load_rules(tmp_path, judge_registry()).version != before


def test_repository_rules_tree_loads() -> None:
    """Every rule file shipped in rules/ loads with the built-in check types."""
    assert validate_rules(REPO_RULES) == []
