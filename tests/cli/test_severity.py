"""A finding has one severity, wherever it is read: ``rules list``/``rules show``, the scan's
JSON and text, and the SARIF of the same scan.

Checks may raise a finding above its rule's own severity (an empty password that something
accepts today is critical, the rule says high); ``rules list`` says so, the rule's severity in
the report and in SARIF is the raised one, and each SARIF result carries its finding's own.
Driven through the real command line on the weak example as a root directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from imageaudit.report.sarif import LEVEL, SECURITY_SEVERITY
from tests.builders.example_tree import weak_scenario
from tests.clitext import diagnostics
from tests.scenario import write_tree

REPO = Path(__file__).resolve().parents[2]
# GitHub's code-scanning bands for security-severity.
BANDS = {"critical": (9.0, 10.0), "high": (7.0, 8.9), "moderate": (4.0, 6.9), "low": (0.1, 3.9)}
WAIVERS = """\
waivers:
  - rule: password_empty
    reason: test account of the build
    expires: 2099-12-31
    who: builder@example.org
"""


def imageaudit(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "imageaudit", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO)


@pytest.fixture(scope="module")
def weak_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(write_tree(weak_scenario(), tmp_path_factory.mktemp("weak") / "root"))


def scan(root: Path, fmt: str, out: Path, *extra: str | Path) -> dict[str, Any]:
    done = imageaudit("scan", root, "--format", fmt, "-o", out, *extra)
    assert done.returncode == 0, done.stderr  # no level is required
    assert diagnostics(done.stderr)[0].startswith("Level: NONE"), done.stderr
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module", params=["plain", "waived"])
def reports(request: pytest.FixtureRequest, weak_root: Path,
            tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON report and the SARIF log of the same scan, without and with a waiver."""
    out = tmp_path_factory.mktemp(request.param)
    extra: tuple[str | Path, ...] = ()
    if request.param == "waived":
        (out / "waivers.yaml").write_text(WAIVERS, encoding="utf-8")
        extra = ("--waivers", out / "waivers.yaml")
    return (scan(weak_root, "json", out / "report.json", *extra),
            scan(weak_root, "sarif", out / "report.sarif", *extra))


def sarif_rule(sarif: dict[str, Any], rule_id: str) -> dict[str, Any]:
    rules: list[dict[str, Any]] = sarif["runs"][0]["tool"]["driver"]["rules"]
    return next(r for r in rules if r["id"] == rule_id)


def test_rules_list_says_when_a_finding_is_raised() -> None:
    done = imageaudit("rules", "list")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert re.split(r" {2,}", header.strip()) == ["Rule", "Severity", "Category", "Title"]
    # a pipe gets one row a line, columns apart by two spaces or more, no box characters
    cells = {cols[0]: cols[1:] for cols in (re.split(r" {2,}", row.strip()) for row in rows)}
    assert cells["password_empty"] == [
        "high (up to critical)", "password", "No account that can log in has an empty password"]
    assert cells["ssh_permit_empty_passwords"][0] == "high (up to critical)"
    assert cells["export_samba_guest"][:2] == ["moderate (up to critical)", "export"]
    # a rule that is never raised shows its severity alone
    assert cells["password_extra_uid0"][0] == "high"


def test_a_listing_into_a_pipe_closed_early_stops_without_a_traceback() -> None:
    # More than a pipe buffer of JSON, so that the writer meets the closed pipe.
    proc = subprocess.Popen([sys.executable, "-m", "imageaudit", "rules", "list", "--format",
                             "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(64).startswith(b"[")
    proc.stdout.close()  # as `| head` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_rules_list_filters_by_every_severity_a_finding_can_have() -> None:
    critical = imageaudit("rules", "list", "--severity", "critical").stdout.split()
    high = imageaudit("rules", "list", "--severity", "high").stdout.split()
    assert "password_empty" in critical and "password_empty" in high
    assert "password_extra_uid0" in high and "password_extra_uid0" not in critical


def test_rules_show_names_the_condition() -> None:
    done = imageaudit("rules", "show", "password_empty")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "password_empty  [high (up to critical), password]"
    assert lines[2] == ("  severity:    high (critical when something accepts the empty "
                        "password today)")
    show = imageaudit("rules", "show", "ssh_permit_empty_passwords").stdout.splitlines()
    assert show[2] == ("  severity:    high (critical when an account with a login shell has "
                       "an empty password (for `PermitEmptyPasswords`))")


@pytest.mark.parametrize(("rule_id", "resource"), [
    ("password_empty", "guest"),
    ("ssh_permit_empty_passwords", "PermitEmptyPasswords"),
    ("export_samba_guest", "public"),
])
def test_raised_finding_reads_critical_everywhere(
    reports: tuple[dict[str, Any], dict[str, Any]], rule_id: str, resource: str
) -> None:
    report, sarif = reports
    finding = next(f for f in report["findings"]
                   if f["rule_id"] == rule_id and f["resource"] == resource)
    assert finding["severity"] == "critical"
    outcome = next(r for r in report["rules"] if r["id"] == rule_id)
    assert outcome["severity"] == "critical"
    rule = sarif_rule(sarif, rule_id)
    assert rule["properties"]["severity"] == "critical"
    assert rule["properties"]["security-severity"] == "9.5"
    assert rule["defaultConfiguration"]["level"] == "error"
    result = next(r for r in sarif["runs"][0]["results"]
                  if r["ruleId"] == rule_id and r["properties"]["resource"] == resource)
    assert result["level"] == "error"
    assert result["properties"]["severity"] == "critical"
    assert result["properties"]["security-severity"] == "9.5"
    assert result["properties"]["status"] == finding["status"]


def test_every_result_has_its_findings_severity(
    reports: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    report, sarif = reports
    shown = {(f["rule_id"], f["resource"], f["message"]): f["severity"]
             for f in report["findings"] if f["status"] in ("FAIL", "ERROR", "WAIVED")}
    results = sarif["runs"][0]["results"]
    assert {(r["ruleId"], r["properties"]["resource"], r["message"]["text"]):
            r["properties"]["severity"] for r in results} == shown
    for result in results:
        severity = result["properties"]["severity"]
        assert result["properties"]["security-severity"] == SECURITY_SEVERITY[severity]
        if result["kind"] == "fail":
            assert result["level"] == LEVEL[severity]
    for outcome in report["rules"]:
        rule = sarif_rule(sarif, outcome["id"])
        assert rule["properties"]["severity"] == outcome["severity"], outcome["id"]
        # GitHub ranks every alert of a rule by the rule's score: never below its worst result
        ranks = [SECURITY_SEVERITY[r["properties"]["severity"]] for r in results
                 if r["ruleId"] == outcome["id"]]
        assert float(rule["properties"]["security-severity"]) >= max(map(float, ranks),
                                                                     default=0.0)


def test_waived_finding_keeps_its_raised_severity(
    reports: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    report, sarif = reports
    finding = next(f for f in report["findings"] if f["rule_id"] == "password_empty")
    expected = "WAIVED" if finding["waived"] else "FAIL"
    assert finding["status"] == expected
    assert sarif_rule(sarif, "password_empty")["properties"]["security-severity"] == "9.5"


def test_security_severity_in_githubs_bands() -> None:
    for severity, (low, high) in BANDS.items():
        assert low <= float(SECURITY_SEVERITY[severity]) <= high, severity  # type: ignore[index]
