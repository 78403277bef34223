"""A real, clean Debian bookworm minbase root judged with every shipped rule.

The malware, persistence, integrity, token-pattern and daemon-exposure rules read files a
stock distribution is full of (cron jobs, init scripts, PAM stacks, package checksums,
configuration with ``password`` in it). On a clean root they must find nothing: a security
team stops reading a tool that cries wolf. What fails here is what a minbase root really has
(host keys baked in, sshd's password logins); what cannot be evaluated is what needs a feed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imageaudit.engine import scan_facts
from imageaudit.facts import collect_facts
from imageaudit.findings import Report
from imageaudit.model import Status
from imageaudit.openers.directory import DirectoryFS
from imageaudit.pipeline import Judge, ScanOptions
from tests.builders.debian import debian_root_dir  # noqa: F401 - pytest fixture

# What a minbase root with openssh-server really carries.
EXPECTED_FAILS = {"secret_ssh_host_keys", "ssh_password_authentication"}
# No advisory or update feed is given here.
EXPECTED_ERRORS = {"security_updates_pending", "updates_pending",
                   "vulnerable_package_fix_available"}


@pytest.fixture(scope="module")
def debian_report(debian_root_dir: Path) -> Report:  # noqa: F811
    judge = Judge.load(ScanOptions())
    with DirectoryFS(debian_root_dir) as fs:
        facts = collect_facts(fs)
    assert not [e for e in facts.errors if e.incomplete], facts.errors
    return scan_facts(facts, judge.rules, judge.levels)


def _rules_with(report: Report, status: Status) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in report.findings:
        if f.status is status:
            found.setdefault(f.rule_id, []).append(f"{f.resource}: {f.message}")
    return found


@pytest.mark.network
@pytest.mark.slow
def test_a_clean_debian_root_fails_only_what_it_really_carries(debian_report: Report) -> None:
    fails = _rules_with(debian_report, Status.FAIL)
    unexpected = {rule: where for rule, where in fails.items() if rule not in EXPECTED_FAILS}
    assert not unexpected, f"false alarms on a clean Debian root: {unexpected}"
    assert set(fails) == EXPECTED_FAILS


@pytest.mark.network
@pytest.mark.slow
def test_a_clean_debian_root_is_fully_evaluated(debian_report: Report) -> None:
    errors = _rules_with(debian_report, Status.ERROR)
    assert set(errors) == EXPECTED_ERRORS, errors


@pytest.mark.network
@pytest.mark.slow
def test_every_malware_rule_is_judged_on_a_clean_debian_root(debian_report: Report) -> None:
    judged = {(f.rule_id, f.status) for f in debian_report.findings if f.category == "malware"}
    assert judged, "no malware rule was judged"
    assert not {rule for rule, status in judged if status in (Status.FAIL, Status.ERROR)}
