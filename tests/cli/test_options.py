"""Narrowing, tailoring and gating a scan, and where option values come from, through the real
command line on the built-in examples written as root directories.

A rule left out is not evaluated: it is an ERROR at its highest severity, so the level it guards
is not granted, and the certification's ``scope`` says what was left out. Findings under
skipped paths are dropped and counted. ``--severity`` narrows what the outputs show, never what
is judged. The narrowed reports still validate against the report schema and are accepted by
the catalogue's recomputation of the level.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from imageaudit.report.json_report import report_schema
from integrations.appdb.schemas import ReportDoc
from integrations.appdb.verify import check_level, known_levels
from tests.builders.example_tree import clean_scenario, weak_scenario
from tests.scenario import write_tree

REPO = Path(__file__).resolve().parents[2]


def imageaudit(*args: str | Path, cwd: Path = REPO,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("IMAGEAUDIT_") or k in ("IMAGEAUDIT_TRIVY",)}
    return subprocess.run([sys.executable, "-m", "imageaudit", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**base, "PYTHONPATH": str(REPO), **(env or {})})


@pytest.fixture(scope="module")
def clean_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(write_tree(clean_scenario(), tmp_path_factory.mktemp("clean") / "root"))


@pytest.fixture(scope="module")
def weak_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(write_tree(weak_scenario(), tmp_path_factory.mktemp("weak") / "root"))


@pytest.fixture(scope="module")
def all_rules() -> list[dict[str, Any]]:
    done = imageaudit("rules", "list", "--format", "json")
    assert done.returncode == 0, done.stderr
    rules: list[dict[str, Any]] = json.loads(done.stdout)
    return rules


def scan_json(root: Path, out: Path, *extra: str | Path, code: int = 0) -> dict[str, Any]:
    done = imageaudit("scan", root, "-q", "--format", "json", "-o", out, *extra)
    assert done.returncode == code, done.stderr
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(report_schema()).validate(data)
    # The catalogue takes the report in (a root directory has no SHA-512: one is lent here).
    bound = json.loads(json.dumps(data))
    bound["certification"]["image_sha512"] = bound["image"]["sha512"] = "ab" * 64
    taken = ReportDoc.model_validate(bound).certification.model_extra or {}
    assert taken.get("scope") == data["certification"].get("scope")
    check_level(data, known_levels())  # and recomputes the same certification
    return data


def levels_of(report: dict[str, Any]) -> dict[str, tuple[bool, list[str], list[str]]]:
    return {lv["name"]: (lv["granted"], lv["blocking"], lv["unevaluated"])
            for lv in report["certification"]["levels"]}


@pytest.fixture(scope="module")
def clean_full(clean_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scan_json(clean_root, tmp_path_factory.mktemp("full") / "r.json")


@pytest.fixture(scope="module")
def weak_full(weak_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scan_json(weak_root, tmp_path_factory.mktemp("wfull") / "r.json")


def test_the_clean_example_reaches_basic_unnarrowed(clean_full: dict[str, Any]) -> None:
    assert clean_full["certification"]["level"] == "basic"
    assert "scope" not in clean_full["certification"]


def test_a_left_out_rule_blocks_the_level_its_findings_could_block(
        clean_root: Path, tmp_path: Path) -> None:
    # password_empty is a high rule whose findings can be critical: left out, it blocks basic.
    report = scan_json(clean_root, tmp_path / "r.json", "--skip-rule", "password_empty",
                       "--require", "basic", code=3)
    cert = report["certification"]
    assert cert["level"] == "none"
    assert levels_of(report)["basic"] == (False, ["password_empty"], ["password_empty"])
    assert cert["scope"] == {"skipped_rules": ["password_empty"], "skipped_dirs": [],
                             "skipped_files": [], "dropped_findings": 0, "tailoring": None}
    [finding] = [f for f in report["findings"] if f["rule_id"] == "password_empty"]
    assert (finding["status"], finding["severity"]) == ("ERROR", "critical")
    assert finding["message"] == (
        "Not evaluated: the rule was left out of this scan by its rule selection; no level "
        "the rule guards is granted without it")


def test_a_left_out_rule_no_level_needs_keeps_the_level_and_is_recorded(
        clean_root: Path, clean_full: dict[str, Any], tmp_path: Path) -> None:
    report = scan_json(clean_root, tmp_path / "r.json", "--skip-rule", "permission_unknown_owner",
                       "--require", "basic")
    assert levels_of(report) == levels_of(clean_full)
    assert report["certification"]["scope"]["skipped_rules"] == ["permission_unknown_owner"]


def test_a_waiver_does_not_cover_a_left_out_rule(clean_root: Path, tmp_path: Path) -> None:
    (tmp_path / "waivers.yaml").write_text(
        "waivers:\n  - rule: password_empty\n    reason: test\n    expires: 2099-12-31\n"
        "    who: builder@example.org\n", encoding="utf-8")
    report = scan_json(clean_root, tmp_path / "r.json", "--skip-rule", "password_empty",
                       "--waivers", tmp_path / "waivers.yaml")
    assert levels_of(report)["basic"] == (False, ["password_empty"], ["password_empty"])


def test_strict_does_not_count_left_out_rules_as_unevaluated(clean_root: Path) -> None:
    # Without feeds, the package and vulnerability rules are the clean example's only ERRORs.
    assert imageaudit("scan", clean_root, "-q", "--strict").returncode == 1
    done = imageaudit("scan", clean_root, "-q", "--strict", "--skip-category",
                      "package,vulnerability")
    assert done.returncode == 0, done.stderr


def test_category_selection_leaves_every_other_rule_out(
        clean_root: Path, all_rules: list[dict[str, Any]], tmp_path: Path) -> None:
    report = scan_json(clean_root, tmp_path / "r.json", "--category", "ssh,password",
                       "--skip-rule", "ssh_weak_kex")
    kept = {r["id"] for r in all_rules if r["category"] in ("ssh", "password")} - {"ssh_weak_kex"}
    assert set(report["certification"]["scope"]["skipped_rules"]) == \
        {r["id"] for r in all_rules} - kept
    evaluated = {f["rule_id"] for f in report["findings"]
                 if not f["message"].startswith("Not evaluated: the rule was left out")}
    assert evaluated == kept
    assert report["certification"]["level"] == "none"  # critical rules were left out


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--skip-rule", "password_emtpy", "--rule/--skip-rule: no rule 'password_emtpy' in "),
    ("--rule", "nope", "--rule/--skip-rule: no rule 'nope' in "),
    ("--category", "sshh", "--category/--skip-category: unknown category 'sshh' (categories: "),
    ("--skip-dirs", "/", "--skip-dirs: '/' would skip the whole image"),
    ("--skip-dirs", "*", "--skip-dirs: '*' would skip the whole image"),
])
def test_an_unknown_rule_category_or_whole_image_skip_is_a_usage_error(
        clean_root: Path, option: str, value: str, message: str) -> None:
    done = imageaudit("scan", clean_root, "-q", option, value)
    assert done.returncode == 2
    assert done.stderr.startswith(f"imageaudit: error: {message}"), done.stderr


def test_skipped_paths_drop_their_findings_and_are_recorded(
        weak_root: Path, weak_full: dict[str, Any], tmp_path: Path) -> None:
    report = scan_json(weak_root, tmp_path / "r.json", "--skip-dirs", "/root,etc/ssh/",
                       "--skip-files", "*.conf", "--skip-files", "/etc/cron.daily/*")

    def skipped(path: str | None) -> bool:
        return bool(path) and (
            str(path).startswith(("/root/", "/etc/ssh/", "/etc/cron.daily/"))
            or str(path).endswith(".conf"))

    dropped = [f for f in weak_full["findings"] if skipped(f["evidence"]["path"])]
    assert dropped  # the weak example has findings there (shadow keys, sshd, cron dropper)
    assert not [f for f in report["findings"] if skipped(f["evidence"]["path"])]
    assert report["certification"]["scope"] == {
        "skipped_rules": [], "skipped_dirs": ["/root", "/etc/ssh"],
        "skipped_files": ["*.conf", "/etc/cron.daily/*"], "dropped_findings": len(dropped),
        "tailoring": None}
    # A rule whose every finding was dropped says so instead of passing.
    [cron] = [f for f in report["findings"] if f["rule_id"] == "malware_cron_dropper"]
    assert cron["status"] == "NOT_APPLICABLE"
    assert cron["message"].startswith("Not applicable: all ")
    assert cron["message"].endswith(" of its findings were under skipped paths")


def test_the_summary_says_what_was_left_out_skipped_and_tailored(
        clean_root: Path, tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(TAILORING, encoding="utf-8")
    done = imageaudit("scan", clean_root, "--skip-rule", "hygiene_logs,hygiene_machine_id",
                      "--skip-dirs", "/var/log", "--tailoring", tmp_path / "t.yaml")
    assert done.returncode == 0, done.stderr
    digest = hashlib.sha256((tmp_path / "t.yaml").read_bytes()).hexdigest()
    lines = done.stdout.splitlines()  # the text report, on stdout
    start = lines.index("  not evaluated (left out): hygiene_logs, hygiene_machine_id")
    assert lines[start + 1] == "  skipped paths: /var/log (0 findings dropped)"
    assert lines[start + 2] == f"  rules tailored: sha256:{digest}"


def test_severity_narrows_the_outputs_not_the_judgement(
        weak_root: Path, weak_full: dict[str, Any], tmp_path: Path) -> None:
    done = imageaudit("scan", weak_root, "--severity", "critical", "--format", "json", "-o",
                      tmp_path / "r.json", "--format", "sarif", "-o", tmp_path / "r.sarif",
                      "--format", "text", "-o", tmp_path / "r.txt")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["findings"] == weak_full["findings"]  # the JSON report is the whole record
    sarif = json.loads((tmp_path / "r.sarif").read_text(encoding="utf-8"))
    shown = {r["ruleId"] for r in sarif["runs"][0]["results"]}
    critical = {f["rule_id"] for f in weak_full["findings"]
                if f["severity"] == "critical" and f["status"] == "FAIL"}
    assert shown == critical
    text = (tmp_path / "r.txt").read_text(encoding="utf-8")
    assert " HIGH (" not in text and " CRITICAL (" in text
    assert text.splitlines()[-1] == ("warning: Only critical findings are shown (--severity); "
                                     f"the level is judged on all {len(report['findings'])} "
                                     "findings")
    assert text.splitlines()[0].startswith("Level: NONE")
    # the summary lists only critical findings; the levels still name every blocking rule
    assert not re.search(r"FAIL +ssh_permit_root_login ", done.stderr)  # a high finding
    assert re.search(r"FAIL +password_default_or_weak ", done.stderr)
    assert "blocked by: " in done.stderr and "ssh_permit_root_login" in done.stderr


def test_medium_is_moderate_and_an_unknown_severity_is_refused(weak_root: Path) -> None:
    done = imageaudit("scan", weak_root, "--severity", "LOW,bogus")
    assert done.returncode == 2
    assert "argument --severity: unknown severity 'bogus' (severities: critical, high, " \
        "moderate, low, info)" in done.stderr


def test_fail_on_gates_on_failing_or_unevaluated_findings(clean_root: Path) -> None:
    # The clean example has no critical finding; without feeds, high rules are unevaluated.
    assert imageaudit("scan", clean_root, "-q", "--fail-on", "critical").returncode == 0
    assert imageaudit("scan", clean_root, "-q", "--fail-on", "HIGH").returncode == 3
    assert imageaudit("scan", clean_root, "-q", "--fail-on", "medium").returncode == 3
    # a left-out critical rule is not a finding of the image
    assert imageaudit("scan", clean_root, "-q", "--fail-on", "critical", "--skip-rule",
                      "password_empty").returncode == 0


TAILORING = """\
version: 1
rules:
  updates_pending:
    severity: low
  ssh_weak_ciphers:
    params:
      weak: [aes256-ctr]
"""


def test_tailoring_changes_severities_and_parameters_and_is_recorded(
        clean_root: Path, clean_full: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "tailoring.yaml"
    path.write_text(TAILORING, encoding="utf-8")
    report = scan_json(clean_root, tmp_path / "r.json", "--tailoring", path)
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert report["certification"]["scope"]["tailoring"] == digest
    assert "updates_pending" in levels_of(clean_full)["hardened"][1]
    assert "updates_pending" not in levels_of(report)["hardened"][1]  # low: no level needs it
    rules = {r["id"]: r for r in report["rules"]}
    assert rules["updates_pending"]["severity"] == "low"
    assert report["certification"]["ruleset_version"] == \
        clean_full["certification"]["ruleset_version"]


@pytest.mark.parametrize(("text", "message"), [
    ("version: 1\nrules:\n  ssh_weak_ciphers:\n    params:\n      weakk: [x]\n",
     "{path}: rules.ssh_weak_ciphers.params.weakk: the sshd_weak_algorithms check of rule "
     "ssh_weak_ciphers has no parameter 'weakk' (parameters: "),
    ("version: 1\nrules:\n  ssh_weak_ciphers:\n    params:\n      weak: 3\n",
     "{path}: rules.ssh_weak_ciphers.params.weak: "),
    ("version: 1\nrules:\n  nope: {}\n", "{path}: rules.nope: no rule 'nope' in "),
    ("version: 1\nrules:\n  updates_pending:\n    severity: huge\n",
     "{path}: rules.updates_pending.severity: Input should be 'critical', "),
    ("version: 1\nrules:\n  updates_pending:\n    levels: [basic]\n",
     "{path}: rules.updates_pending.levels: Extra inputs are not permitted"),
    ("rules: [\n", "{path}: cannot read the tailoring file: invalid YAML at line 2"),
])
def test_a_bad_tailoring_file_names_the_file_rule_and_key(
        clean_root: Path, tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tailoring.yaml"
    path.write_text(text, encoding="utf-8")
    done = imageaudit("scan", clean_root, "-q", "--tailoring", path)
    assert done.returncode == 2
    assert done.stderr.startswith("imageaudit: error: " + message.format(path=path)), done.stderr


def test_rules_list_and_show_as_json(all_rules: list[dict[str, Any]]) -> None:
    by_id = {r["id"]: r for r in all_rules}
    assert len(by_id) == len(all_rules) > 50
    empty = by_id["password_empty"]
    assert (empty["severity"], empty["severities"], empty["category"]) == \
        ("high", ["critical", "high"], "password")
    done = imageaudit("rules", "show", "ssh_weak_ciphers", "--format", "json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown == by_id["ssh_weak_ciphers"]
    assert shown["check"]["type"] == "sshd_weak_algorithms"
    assert "3des-cbc" in shown["check"]["params"]["weak"]


def test_levels_lists_the_rules_that_block_each(all_rules: list[dict[str, Any]]) -> None:
    done = imageaudit("levels", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    levels = {lv["name"]: lv for lv in data["levels"]}
    assert list(levels) == ["basic", "standard", "hardened"]
    assert levels["hardened"]["blocked_by"] == {"severities": ["moderate"],
                                                "categories": ["hygiene"], "rules": []}

    def needs(sev: set[str], cats: set[str], names: set[str]) -> list[str]:
        return sorted(r["id"] for r in all_rules if r["severity"] in sev
                      or r["category"] in cats or names & set(r["levels"]))

    assert levels["basic"]["rules"] == needs({"critical"}, set(), {"basic"})
    assert levels["standard"]["rules"] == needs({"critical", "high"}, set(),
                                                {"basic", "standard"})
    assert levels["hardened"]["rules"] == needs({"critical", "high", "moderate"}, {"hygiene"},
                                                {"basic", "standard", "hardened"})
    text = imageaudit("levels")
    assert text.returncode == 0
    assert text.stdout.splitlines()[1] == "  blocked by: severities critical"


def listed(done: subprocess.CompletedProcess[str]) -> set[str]:
    assert done.returncode == 0, done.stderr
    return {r["category"] for r in json.loads(done.stdout)}


def test_config_file_environment_and_command_line_in_that_order(tmp_path: Path) -> None:
    (tmp_path / "imageaudit.yaml").write_text(
        "format: json\nrules:\n  list:\n    category: ssh\n", encoding="utf-8")
    assert listed(imageaudit("rules", "list", cwd=tmp_path)) == {"ssh"}
    env = {"IMAGEAUDIT_CATEGORY": "export"}
    assert listed(imageaudit("rules", "list", cwd=tmp_path, env=env)) == {"export"}
    env["IMAGEAUDIT_RULES_LIST_CATEGORY"] = "secret"
    assert listed(imageaudit("rules", "list", cwd=tmp_path, env=env)) == {"secret"}
    assert listed(imageaudit("rules", "list", "--category", "malware", cwd=tmp_path,
                             env=env)) == {"malware"}
    # --config and $IMAGEAUDIT_CONFIG name another file; the current directory's is not read
    other = tmp_path / "other.yaml"
    other.write_text("format: json\ncategory: hygiene\n", encoding="utf-8")
    assert listed(imageaudit("--config", other, "rules", "list", cwd=tmp_path)) == {"hygiene"}
    assert listed(imageaudit("rules", "list", f"--config={other}", cwd=tmp_path)) == {"hygiene"}
    assert listed(imageaudit("rules", "list", cwd=tmp_path,
                             env={"IMAGEAUDIT_CONFIG": str(other)})) == {"hygiene"}


def test_environment_sets_repeatable_and_on_off_options(clean_root: Path, tmp_path: Path) -> None:
    env = {"IMAGEAUDIT_SKIP_RULE": "password_empty,permission_unknown_owner",
           "IMAGEAUDIT_SCAN_REQUIRE": "basic", "IMAGEAUDIT_QUIET": "yes"}
    done = imageaudit("scan", clean_root, "--format", "json", "-o", tmp_path / "r.json", env=env)
    assert done.returncode == 3, done.stderr
    assert done.stderr == ""
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["certification"]["scope"]["skipped_rules"] == \
        ["password_empty", "permission_unknown_owner"]
    # the command line replaces, not extends, a repeatable option from the environment
    done = imageaudit("scan", clean_root, "--format", "json", "-o", tmp_path / "r.json",
                      "--skip-rule", "permission_unknown_owner", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["certification"]["scope"]["skipped_rules"] == ["permission_unknown_owner"]


@pytest.mark.parametrize(("config", "env", "message"), [
    ("scan:\n  requir: basic\n", {},
     "{path}: unknown key scan.requir: no option --requir of command 'scan'"),
    ("colour: true\n", {}, "{path}: unknown key colour: no option --colour of any command"),
    ("scna:\n  require: basic\n", {},
     "{path}: key scna: no command 'scna' (a section names a command)"),
    ("- require\n", {}, "{path}: a configuration file holds one mapping of option names"),
    ("rules:\n  list:\n    format: xml\n", {},
     "{path}: key rules.list.format: --format: invalid choice: 'xml'"),
    ("", {"IMAGEAUDIT_RULES_LIST_FORMAT": "xml"},
     "environment variable IMAGEAUDIT_RULES_LIST_FORMAT: --format: invalid choice: 'xml'"),
])
def test_a_bad_configuration_is_a_usage_error_naming_where(
        tmp_path: Path, config: str, env: dict[str, str], message: str) -> None:
    path = tmp_path / "imageaudit.yaml"
    path.write_text(config, encoding="utf-8")
    done = imageaudit("rules", "list", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr.startswith("imageaudit: error: " + message.format(path=path)), done.stderr


def test_a_bad_on_off_value_names_the_variable(clean_root: Path) -> None:
    done = imageaudit("scan", clean_root, env={"IMAGEAUDIT_QUIET": "maybe"})
    assert done.returncode == 2
    assert done.stderr == ("imageaudit: error: environment variable IMAGEAUDIT_QUIET: 'maybe' "
                           "is not true or false\n")


def test_the_trivy_binary_variable_is_not_the_trivy_option(clean_root: Path) -> None:
    done = imageaudit("rules", "list", env={"IMAGEAUDIT_TRIVY": "/nonexistent/trivy"})
    assert done.returncode == 0, done.stderr
