from __future__ import annotations

from pathlib import Path
from typing import Any

from imageaudit.checks import CheckResult, MissingPolicy, NotApplicable
from imageaudit.engine import evaluate
from imageaudit.facts.os import OSFacts, OSValue
from imageaudit.findings import Finding
from imageaudit.model import CollectorError, Evidence, Source, Status
from imageaudit.rules import load_rules
from tests.judge.helpers import (
    JUDGE_RULES,
    NoParams,
    demo_accounts,
    demo_facts,
    judge_registry,
    make_facts,
    rule_doc,
    write_rule,
)


def _by_rule(findings: list[Finding]) -> dict[str, list[tuple[Status, str]]]:
    out: dict[str, list[tuple[Status, str]]] = {}
    for f in findings:
        out.setdefault(f.rule_id, []).append((f.status, f.message))
    return out


def test_judge_tree_over_demo_facts() -> None:
    registry = judge_registry(builtins=True)
    rules = load_rules(JUDGE_RULES, registry)
    findings = evaluate(demo_facts(), rules, registry)
    assert _by_rule(findings) == {
        "container_only": [
            (
                Status.NOT_APPLICABLE,
                "Not applicable: the rule is for container images, this is a `vm` image",
            )
        ],
        "crashing_check": [
            (
                Status.ERROR,
                "Could not evaluate: check `explodes` failed: "
                "ValueError: unexpected byte 0xff in /etc/shadow",
            )
        ],
        "image_read_completely": [
            (
                Status.FAIL,
                "Collector `files` could not read everything (/var/log/huge.log): "
                "read only the first 1048576 of 2000000 bytes",
            )
        ],
        "password_default": [
            (Status.FAIL, "User `admin` has the default password `admin` (/etc/shadow line 23)"),
            (
                Status.FAIL,
                "User `operator` has the default password `<script>alert(1)</script>` "
                "(/etc/shadow line 24)",
            ),
        ],
        "rhel_only": [
            (
                Status.NOT_APPLICABLE,
                "Not applicable: the rule is for rhel systems, this image runs `debian`",
            )
        ],
        "ssh_all_good": [(Status.PASS, "Passed: A rule that passes")],
    }
    admin = findings[[f.resource for f in findings].index("admin")]
    assert admin.evidence == Evidence("/etc/shadow", 23, "admin", "no default")
    assert admin.remediation == "Lock the account or set a unique password at first boot."
    assert admin.references == ("https://example.org/defaults", "EGI image policy")


def _one_rule(tmp_path: Path, **overrides: object) -> list[Finding]:
    registry = judge_registry()
    write_rule(tmp_path, "a", rule_doc("r", **overrides))
    return evaluate(
        make_facts(errors=(CollectorError("accounts", "shadow unreadable"),)),
        load_rules(tmp_path, registry),
        registry,
    )


def test_missing_fact_follows_the_check_default(tmp_path: Path) -> None:
    check = {"type": "default_password", "params": {"passwords": ["x"]}}
    [finding] = _one_rule(tmp_path, check=check)
    assert (finding.status, finding.message) == (
        Status.ERROR,
        "Could not evaluate: the `accounts` facts are missing (shadow unreadable)",
    )
    assert finding.evidence == Evidence(observed="shadow unreadable", expected="accounts facts")


def test_missing_fact_follows_the_rule_override(tmp_path: Path) -> None:
    check = {"type": "default_password", "params": {"passwords": ["x"]}}
    expected = {
        "pass": (Status.PASS, "Passes without evidence"),
        "fail": (Status.FAIL, "Fails without evidence"),
        "not_applicable": (Status.NOT_APPLICABLE, "Not applicable"),
        "error": (Status.ERROR, "Could not evaluate"),
    }
    for policy, (status, prefix) in expected.items():
        [finding] = _one_rule(tmp_path / policy, check=check, missing=policy)
        assert finding.status is status
        assert finding.message == f"{prefix}: the `accounts` facts are missing (shadow unreadable)"


def test_missing_fact_raised_inside_a_check(tmp_path: Path) -> None:
    [finding] = _one_rule(tmp_path, check={"type": "needs_deeper"})
    assert (finding.status, finding.message) == (
        Status.NOT_APPLICABLE,
        "Not applicable: the `files` facts are missing (the walk was cut short)",
    )


def test_not_applicable_raised_inside_a_check(tmp_path: Path) -> None:
    registry = judge_registry()

    @registry.check_type("not_here", params_model=NoParams, missing=MissingPolicy.ERROR)
    def not_here(facts: Any, params: NoParams, rule: Any) -> list[CheckResult]:
        """Raises NotApplicable, as the sshd checks do without sshd. Missing fact: n/a."""
        raise NotApplicable("Not applicable: the image has no sshd")

    write_rule(tmp_path, "a", rule_doc("r", check={"type": "not_here"}))
    [finding] = evaluate(make_facts(), load_rules(tmp_path, registry), registry)
    assert (finding.status, finding.message) == (
        Status.NOT_APPLICABLE,
        "Not applicable: the image has no sshd",
    )
    assert finding.evidence == Evidence()


def test_a_check_returning_garbage_is_an_error(tmp_path: Path) -> None:
    [finding] = _one_rule(tmp_path, check={"type": "bad_return"})
    assert (finding.status, finding.message) == (
        Status.ERROR,
        "Could not evaluate: check `bad_return` returned something other than a list of "
        "PASS/FAIL/ERROR/NOT_APPLICABLE results",
    )


def test_os_applicability_without_os_facts_uses_missing(tmp_path: Path) -> None:
    [finding] = _one_rule(tmp_path, applies_to={"os_families": ["debian"]})
    assert (finding.status, finding.message) == (
        Status.ERROR,
        "Could not evaluate: the `os` facts are missing (the rule depends on the OS family)",
    )


def test_os_applicability_matches_family(tmp_path: Path) -> None:
    registry = judge_registry()
    write_rule(tmp_path, "a", rule_doc("r", applies_to={"os_families": ["debian"]}))
    src = Source("/etc/os-release", 1)
    ubuntu = OSFacts(kind="vm", id=OSValue("ubuntu", src), id_like=OSValue("debian", src))
    facts = make_facts(os=ubuntu, accounts=demo_accounts())
    [finding] = evaluate(facts, load_rules(tmp_path, registry), registry)
    assert finding.status is Status.PASS
    alpine = OSFacts(kind="vm", id=OSValue("alpine", src))
    facts = make_facts(os=alpine, accounts=demo_accounts())
    [finding] = evaluate(facts, load_rules(tmp_path, registry), registry)
    assert (finding.status, finding.message) == (
        Status.NOT_APPLICABLE,
        "Not applicable: the rule is for debian systems, this image runs `alpine`",
    )


def test_control_characters_from_the_image_are_made_visible(tmp_path: Path) -> None:
    from tests.judge.helpers import Account, AccountsStandIn

    registry = judge_registry()
    check = {"type": "default_password", "params": {"passwords": ["pw"]}}
    write_rule(tmp_path, "a", rule_doc("r", check=check))
    name = "ev\x1b[31mil\udcff"
    facts = make_facts(accounts=AccountsStandIn((Account(name, "pw", "/etc/shadow", 1),)))
    [finding] = evaluate(facts, load_rules(tmp_path, registry), registry)
    assert (
        finding.message
        == "User `ev\\x1b[31mil\\xff` has the default password `pw` (/etc/shadow line 1)"
    )
    assert finding.resource == "ev\\x1b[31mil\\xff"
