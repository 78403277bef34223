"""The SARIF of an ordinary scan is what GitHub code scanning accepts.

GitHub refuses a whole upload for one result without a location, so every result must have
one, and each rule must carry the help GitHub shows beside an alert. The scan is the weak
example, through the real command line, once as a root directory named by its absolute path
and once as a qcow2 image named by a path relative to where the scan ran (as in CI); both logs
are checked by Microsoft's SARIF Multitool with GitHub's rules, which must find no error and
no warning.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.builders.example_tree import weak_scenario
from tests.builders.sarif_multitool import multitool, validate
from tests.builders.vm import build_disk
from tests.scenario import write_tree

REPO = Path(__file__).resolve().parents[2]
NO_FILE = ("vulnerable_package_fix_available", "security_updates_pending", "updates_pending")


def scan(target: Path | str, out: Path, cwd: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "imageaudit", "scan", str(target), "--format",
                           "sarif", "-o", str(out)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=cwd,
                          check=False)
    assert done.returncode == 0, done.stderr  # no level is required
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sarif")


@pytest.fixture(scope="module")
def root_sarif(work: Path) -> tuple[Path, dict[str, Any]]:
    root = Path(write_tree(weak_scenario(), work / "weak-root"))
    out = work / "root.sarif"
    return out, scan(root, out, work)


@pytest.fixture(scope="module")
def image_sarif(work: Path) -> tuple[Path, dict[str, Any]]:
    """The weak example's cached qcow2, named ``build/weak.qcow2`` from the scan's directory."""
    (work / "build").mkdir()
    # a copy: the opener refuses a symbolic link as the image
    shutil.copyfile(build_disk(weak_scenario(), "simple", "qcow2"), work / "build" / "weak.qcow2")
    out = work / "image.sarif"
    return out, scan("build/weak.qcow2", out, work)


def results(sarif: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = sarif["runs"][0]["results"]
    return found


def physical_location(result: dict[str, Any]) -> dict[str, Any]:
    location: dict[str, Any] = result["locations"][0]["physicalLocation"]
    return location


def test_every_result_has_a_location(root_sarif: tuple[Path, dict[str, Any]],
                                     image_sarif: tuple[Path, dict[str, Any]]) -> None:
    for _, sarif in (root_sarif, image_sarif):
        for result in results(sarif):
            physical = physical_location(result)
            assert physical["artifactLocation"]["uri"], result
            assert physical["region"]["startLine"] >= 1, result


def test_a_finding_in_a_file_points_into_the_image(
    root_sarif: tuple[Path, dict[str, Any]], image_sarif: tuple[Path, dict[str, Any]], work: Path
) -> None:
    for _, sarif in (root_sarif, image_sarif):
        shadow = next(r for r in results(sarif) if r["ruleId"] == "permission_shadow_readable")
        in_shadow = {"uri": "etc/shadow", "uriBaseId": "IMAGEROOT"}
        assert physical_location(shadow)["artifactLocation"] == in_shadow
        empty = next(r for r in results(sarif) if r["ruleId"] == "password_empty")
        assert physical_location(empty) == {"artifactLocation": in_shadow,
                                            "region": {"startLine": 6}}
    bases = root_sarif[1]["runs"][0]["originalUriBaseIds"]
    assert bases["IMAGEROOT"]["uri"] == (work / "weak-root").as_uri() + "/"
    bases = image_sarif[1]["runs"][0]["originalUriBaseIds"]
    assert "uri" not in bases["IMAGEROOT"]
    assert bases["IMAGEROOT"]["description"]["text"] == (
        "the root file system inside build/weak.qcow2")


@pytest.mark.parametrize("rule_id", NO_FILE)
def test_a_finding_without_a_file_points_at_the_image(
    root_sarif: tuple[Path, dict[str, Any]], image_sarif: tuple[Path, dict[str, Any]],
    work: Path, rule_id: str
) -> None:
    in_root = next(r for r in results(root_sarif[1]) if r["ruleId"] == rule_id)
    assert in_root["kind"] == "open"
    assert physical_location(in_root) == {
        "artifactLocation": {"uri": (work / "weak-root").as_uri()}, "region": {"startLine": 1}}
    in_image = next(r for r in results(image_sarif[1]) if r["ruleId"] == rule_id)
    assert physical_location(in_image) == {
        "artifactLocation": {"uri": "build/weak.qcow2", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 1}}


def test_fingerprints_follow_the_object_not_the_image(
    root_sarif: tuple[Path, dict[str, Any]], image_sarif: tuple[Path, dict[str, Any]]
) -> None:
    def prints(sarif: dict[str, Any]) -> dict[tuple[str, str, str], str]:
        return {(r["ruleId"], r["properties"]["resource"] or "", r["message"]["text"]):
                r["partialFingerprints"]["imageaudit/v1"] for r in results(sarif)}

    in_root, in_image = prints(root_sarif[1]), prints(image_sarif[1])
    assert len(set(in_root.values())) == len(in_root)  # one alert per result
    common = in_root.keys() & in_image.keys()
    assert {k[0] for k in common} >= {"password_empty", "permission_shadow_readable",
                                      *NO_FILE}
    assert {k: in_root[k] for k in common} == {k: in_image[k] for k in common}
    sha = image_sarif[1]["runs"][0]["properties"]["image"]["sha512"]
    assert sha and not any(sha[:16] in p for p in in_image.values())


def test_rules_carry_githubs_help(root_sarif: tuple[Path, dict[str, Any]]) -> None:
    driver = root_sarif[1]["runs"][0]["tool"]["driver"]
    assert driver["informationUri"] == "https://github.com/imageaudit/imageaudit"
    assert driver["semanticVersion"] == driver["version"]
    rules = {r["id"]: r for r in driver["rules"]}
    empty = rules["password_empty"]
    assert empty["name"] == "PasswordEmpty"
    markdown = empty["help"]["markdown"]
    assert "**Why it matters.**" in markdown and "**How to fix it.**" in markdown
    assert "`passwd -l NAME`" in markdown
    for rule in rules.values():
        assert rule["help"]["text"] and rule["help"]["markdown"], rule["id"]
        assert rule["name"] != rule["id"]
        assert rule["properties"]["tags"][0] == "security"
        urls = [u for ref in rule["properties"]["references"]
                for u in re.findall(r"https?://\S+", ref)]
        if urls:
            assert rule["helpUri"] == urls[0]
            assert f"<{urls[0]}>" in rule["help"]["markdown"]


@pytest.fixture(scope="module")
def tool() -> Path:
    try:
        return multitool()
    except RuntimeError as exc:  # a clear failure, not a skip: the check is the point
        pytest.fail(str(exc))


@pytest.mark.network
@pytest.mark.slow
def test_githubs_rules_find_nothing(tool: Path, work: Path,
                                    root_sarif: tuple[Path, dict[str, Any]],
                                    image_sarif: tuple[Path, dict[str, Any]]) -> None:
    proc, problems = validate(tool, [root_sarif[0], image_sarif[0]], work / "validation.sarif")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 files scanned" in proc.stdout, proc.stdout
    assert problems == [], proc.stdout


@pytest.mark.network
@pytest.mark.slow
def test_the_validator_refuses_a_result_without_location(
    tool: Path, work: Path, root_sarif: tuple[Path, dict[str, Any]]
) -> None:
    """What GitHub refused before: a result without ``locations`` fails GH1015 and GH1017."""
    sarif = json.loads(root_sarif[0].read_text(encoding="utf-8"))
    bare = next(r for r in results(sarif) if r["ruleId"] == "vulnerable_package_fix_available")
    del bare["locations"]
    broken = work / "no-location.sarif"
    broken.write_text(json.dumps(sarif), encoding="utf-8")
    _, problems = validate(tool, [broken], work / "no-location.validation.sarif")
    assert {(p["ruleId"], p["level"]) for p in problems} >= {("GH1015", "error"),
                                                             ("GH1017", "error")}
