"""Pass and fail scenarios for every rule, in one format.

Each ``tests/rules/cases_<area>.py`` module calls :func:`case` at import time::

    case("ssh_permit_root_login", Status.FAIL, {"/etc/ssh/sshd_config": "PermitRootLogin yes\\n",
                                              "/usr/sbin/sshd": ""},
         resources={"PermitRootLogin"},
         message="sshd allows root to log in (PermitRootLogin yes, /etc/ssh/sshd_config line 1)")

``tests/rules/test_rule_cases.py`` writes each tree, opens it as a directory, collects the
facts, evaluates the one rule and checks the outcome; a meta-test fails for any rule in
``rules/`` without at least one PASS and one FAIL case.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from imageaudit.checks import default_registry
from imageaudit.engine import evaluate_rule, rule_status
from imageaudit.facts import Facts, collect_facts
from imageaudit.findings import Finding
from imageaudit.model import Severity, Status
from imageaudit.openers.directory import DirectoryFS
from imageaudit.rules import RuleSet, load_rules
from tests.scenario import Scenario, write_tree

RULES_DIR = Path(__file__).resolve().parents[2] / "imageaudit" / "ruleset"


@dataclass(frozen=True)
class Case:
    rule_id: str
    expect: Status
    tree: Scenario
    # Exact set of resources of the FAIL (or ERROR) findings, when given.
    resources: frozenset[str] | None = None
    # Exact message of one of the failing findings, when given.
    message: str | None = None
    # Exact severity of every failing finding, when given (checks may escalate).
    severity: Severity | None = None
    name: str = ""
    kind: str = field(default="directory")
    # Adds what the pipeline attaches after collection (feed matches: ``facts.vulnerabilities``).
    attach: Callable[[Facts], Facts] | None = None

    @property
    def id(self) -> str:
        return f"{self.rule_id}-{self.expect.value.lower()}{'-' + self.name if self.name else ''}"


CASES: list[Case] = []


def case(
    rule_id: str,
    expect: Status,
    tree: Scenario,
    *,
    resources: set[str] | None = None,
    message: str | None = None,
    severity: Severity | None = None,
    name: str = "",
    kind: str = "directory",
    attach: Callable[[Facts], Facts] | None = None,
) -> None:
    """Register a scenario: ``tree`` must give ``expect`` for ``rule_id``."""
    CASES.append(
        Case(
            rule_id=rule_id,
            expect=expect,
            tree=tree,
            resources=frozenset(resources) if resources is not None else None,
            message=message,
            severity=severity,
            name=name,
            kind=kind,
            attach=attach,
        )
    )


_RULES: RuleSet | None = None


def rules() -> RuleSet:
    global _RULES
    if _RULES is None:
        _RULES = load_rules(RULES_DIR)
    return _RULES


def facts_of(tree: Scenario, root: Path) -> Facts:
    write_tree(tree, root)
    with DirectoryFS(root) as fs:
        return collect_facts(fs)


def run_rule(rule_id: str, facts: Facts) -> list[Finding]:
    rule = rules().get(rule_id)
    assert rule is not None, f"no rule {rule_id} in {RULES_DIR}"
    return evaluate_rule(rule, facts, default_registry())


def check_case(c: Case, root: Path) -> None:
    facts = facts_of(c.tree, root)
    if c.kind != facts.image.kind:
        # The tree is opened as a directory; ``kind`` lets vm-only or container-only rules
        # be judged on the same tiny trees.
        facts = dataclasses.replace(facts, image=dataclasses.replace(facts.image, kind=c.kind))
    if c.attach is not None:
        facts = c.attach(facts)
    findings = run_rule(c.rule_id, facts)
    status = rule_status(findings)
    detail = "\n".join(f"  {f.status.value} {f.resource}: {f.message}" for f in findings)
    assert status is c.expect, f"{c.id}: expected {c.expect.value}, got {status.value}\n{detail}"
    bad = [f for f in findings if f.status in (Status.FAIL, Status.ERROR)]
    if c.resources is not None:
        assert {f.resource for f in bad} == set(c.resources), detail
    if c.message is not None:
        assert c.message in [f.message for f in bad], detail
    if c.severity is not None:
        assert {f.severity for f in bad} == {c.severity}, detail
