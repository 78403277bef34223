"""Every rule's pass and fail scenarios (registered by the ``cases_*`` modules)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import tests.rules as cases_pkg
from imageaudit.model import Status
from tests.rules.harness import CASES, Case, check_case, rules

for _mod in pkgutil.iter_modules(cases_pkg.__path__):
    if _mod.name.startswith("cases_"):
        importlib.import_module(f"tests.rules.{_mod.name}")


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_rule_case(c: Case, tmp_path: Path) -> None:
    check_case(c, tmp_path / "root")


def test_every_rule_has_a_pass_and_a_fail_scenario() -> None:
    needed = {Status.PASS, Status.FAIL}
    have: dict[str, set[Status]] = {}
    for c in CASES:
        have.setdefault(c.rule_id, set()).add(c.expect)
    missing = [
        f"{r.id}: missing {', '.join(s.value for s in needed - have.get(r.id, set()))}"
        for r in rules()
        if not needed <= have.get(r.id, set())
    ]
    assert not missing, "rules without both scenarios:\n" + "\n".join(missing)


def test_every_case_names_a_known_rule() -> None:
    known = {r.id for r in rules()}
    assert not [c.id for c in CASES if c.rule_id not in known]
