"""The password checks beyond their scenarios: hostile hashes, caching, operator dictionaries."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from imageaudit.checks import default_registry
from imageaudit.checks.passwords_weak import clear_cache, verify_cached
from imageaudit.engine import evaluate_rule
from imageaudit.model import Status
from imageaudit.passwords.verify import Limits, PasswordJob
from imageaudit.rules import load_rules
from tests.rules.cases_password import (
    BASH,
    HOSTILE_SHA512,
    HOSTILE_YESCRYPT,
    STRONG,
    accounts,
    crypt,
)
from tests.rules.harness import RULES_DIR, facts_of, run_rule

RULE = "password_default_or_weak"


def test_hostile_hashes_finish_fast_with_an_explicit_skip(tmp_path: Path) -> None:
    clear_cache()
    tree = accounts(
        [
            ("mallory", 1000, BASH, HOSTILE_SHA512),
            ("eve", 1001, BASH, HOSTILE_YESCRYPT),
            ("bcrypt", 1002, BASH, "$2b$31$" + "c" * 53),
            ("admin", 1003, BASH, crypt("admin")),
        ]
    )
    facts = facts_of(tree, tmp_path / "root")
    started = time.monotonic()
    findings = run_rule(RULE, facts)
    assert time.monotonic() - started < 3.0
    assert [(f.status, f.resource, f.message) for f in findings] == [
        (
            Status.ERROR,
            "mallory",
            "Password of user `mallory` not verified: sha512crypt rounds=999999999 exceeds "
            "the cap of 100000 (/etc/shadow line 2)",
        ),
        (
            Status.ERROR,
            "eve",
            "Password of user `eve` not verified: yescrypt N=2^30 exceeds the cap of 2^16 "
            "(/etc/shadow line 3)",
        ),
        (
            Status.ERROR,
            "bcrypt",
            "Password of user `bcrypt` not verified: bcrypt cost 31 (2^31 iterations) exceeds "
            "the cap of 12 (/etc/shadow line 4)",
        ),
        (
            Status.FAIL,
            "admin",
            "User `admin` has its user name `admin` as password (/etc/shadow line 5)",
        ),
    ]
    assert findings[0].evidence.observed == "sha512crypt, rounds=999999999; skipped"


def test_verification_runs_once_per_image_and_dictionary() -> None:
    clear_cache()
    jobs = [PasswordJob("admin", crypt("admin")), PasswordJob("bob", STRONG)]
    data = RULES_DIR / "data"
    first = verify_cached(jobs, data, Limits())
    assert verify_cached(list(jobs), data, Limits()) is first
    assert [r.status for r in first] == ["match", "no_match"]
    other = verify_cached(jobs, data, Limits(total_budget_s=10.0))
    assert other is not first
    assert [(r.status, r.password) for r in other] == [("match", "admin"), ("no_match", None)]


def _operator_rules(tmp_path: Path, defaults: str | None) -> Path:
    rules = tmp_path / "rules"
    (rules / "password").mkdir(parents=True)
    shutil.copy(RULES_DIR / "password" / f"{RULE}.yaml", rules / "password")
    (rules / "data").mkdir()
    shutil.copy(RULES_DIR / "data" / "weak-passwords.txt", rules / "data")
    if defaults is not None:
        (rules / "data" / "default-passwords.yaml").write_text(defaults)
    return rules


def test_operator_rules_directory_carries_its_own_dictionary(tmp_path: Path) -> None:
    clear_cache()
    rules = _operator_rules(
        tmp_path,
        "version: 1\nentries:\n"
        '  - {user: alice, password: "site-s3cret", source: "Our site image builder 2024",'
        ' reference: "https://example.org/builder"}\n',
    )
    rule = load_rules(rules).get(RULE)
    assert rule is not None
    facts = facts_of(accounts([("alice", 1000, BASH, crypt("site-s3cret"))]), tmp_path / "root")
    (finding,) = evaluate_rule(rule, facts, default_registry())
    assert (finding.status, finding.message) == (
        Status.FAIL,
        "User `alice` has the default password `site-s3cret` of Our site image builder 2024 "
        "(/etc/shadow line 2, https://example.org/builder)",
    )


def test_missing_dictionary_is_an_error_not_a_pass(tmp_path: Path) -> None:
    clear_cache()
    rules = _operator_rules(tmp_path, None)
    rule = load_rules(rules).get(RULE)
    assert rule is not None
    facts = facts_of(accounts([("alice", 1000, BASH, STRONG)]), tmp_path / "root")
    (finding,) = evaluate_rule(rule, facts, default_registry())
    assert finding.status is Status.ERROR
    assert finding.message.startswith(
        "Could not evaluate: the password dictionary could not be loaded: "
        f"{rules / 'data' / 'default-passwords.yaml'}: cannot read"
    )
