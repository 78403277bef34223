"""The CI templates work as written: their shell steps, read from the YAML files, run here.

Each template's scan step (and publish step) is taken from ``ci/github/action.yml`` and
``ci/gitlab/imageaudit.gitlab-ci.yml`` themselves, given its inputs the way the CI system
would (``${{ inputs.x }}`` in a GitHub step's ``env:``; GitLab ``variables:`` as environment),
and run with bash against a weak and a clean container archive. The job outcome (exit 3 for the
weak image with ``--require basic``, 0 for the clean one) and the files each job would upload
(SARIF, JUnit, HTML, markdown) are checked. The install step is skipped the way a user skips
it: ``install: none`` / ``IMAGEAUDIT_INSTALL=none`` with ``.venv/bin`` on ``PATH``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from imageaudit.identity import sha512_file
from imageaudit.signing import generate_keypair, load_private_key
from tests.builders.container import docker_archive
from tests.builders.example_tree import clean_scenario, weak_scenario
from tests.clitext import diagnostics

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "ci" / "github" / "action.yml"
GITLAB = ROOT / "ci" / "gitlab" / "imageaudit.gitlab-ci.yml"
VENV_BIN = ROOT / ".venv" / "bin"
SARIF_SCHEMA = ROOT / "tests" / "data" / "schemas" / "sarif-2.1.0.json"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
UPLOADED = ("imageaudit.sarif", "imageaudit.junit.xml", "imageaudit.html", "imageaudit.md",
            "imageaudit.json")
# What the weak example must be blocked by, in every report format.
WEAK_RULE = "password_default_or_weak"


@dataclass(frozen=True)
class Ran:
    """One shell step run the way the CI system would run it."""

    code: int
    stdout: str
    stderr: str
    workspace: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("ci-images")
    return {
        "weak": docker_archive(weak_scenario(), base / "weak.tar"),
        "clean": docker_archive(clean_scenario(), base / "clean.tar"),
    }


def _base_env(tmp: Path) -> dict[str, str]:
    # A runner's environment: imageaudit on PATH (install skipped), a fresh home and caches.
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "LANG": "C.UTF-8",
    }


def _bash(script: str, cwd: Path, env: dict[str, str]) -> Ran:
    # Both systems run a step as a bash script with -e and pipefail.
    path = cwd.parent / f"step-{len(list(cwd.parent.glob('step-*')))}.sh"
    path.write_text(script, encoding="utf-8")
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr, cwd, env)


# --- GitHub ---------------------------------------------------------------------------------


def _action() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    return doc


def _step(action: dict[str, Any], step_id: str) -> dict[str, Any]:
    steps = [s for s in action["runs"]["steps"] if s.get("id") == step_id]
    assert len(steps) == 1, f"one step with id {step_id!r}"
    step: dict[str, Any] = steps[0]
    return step


def _inputs(action: dict[str, Any], **given: str) -> dict[str, str]:
    values = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    for key, value in given.items():
        name = key.replace("_", "-")
        assert name in values, f"the action has no input {name!r}"
        values[name] = value
    missing = [n for n, spec in action["inputs"].items() if spec.get("required") and not values[n]]
    assert not missing, f"required inputs not given: {missing}"
    return values


def _github_value(value: object, inputs: dict[str, str]) -> str:
    """Substitute ``${{ inputs.NAME }}`` as GitHub does; other expressions are not expected."""

    def one(match: re.Match[str]) -> str:
        found = re.fullmatch(r"inputs\.([A-Za-z0-9_-]+)", match.group(1))
        assert found, f"a shell step's env uses an expression the test cannot evaluate: {match[0]}"
        return inputs[found.group(1)]

    return EXPRESSION.sub(one, str(value))


def run_github_step(step: dict[str, Any], inputs: dict[str, str], workspace: Path,
                    extra_env: dict[str, str] | None = None) -> Ran:
    assert step["shell"] == "bash"
    # Inputs reach the script through env: only (no script injection through an input).
    assert "${{" not in step["run"]
    runner = workspace.parent / "runner"
    runner.mkdir(exist_ok=True)
    env = _base_env(workspace.parent)
    env.update({
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(runner / "output"),
        "GITHUB_STEP_SUMMARY": str(runner / "summary.md"),
        "GITHUB_PATH": str(runner / "path"),
        "RUNNER_TEMP": str(runner),
    })
    env.update({k: _github_value(v, inputs) for k, v in step.get("env", {}).items()})
    env.update(extra_env or {})
    return _bash(step["run"], workspace, env)


def _outputs(ran: Ran) -> dict[str, str]:
    path = Path(ran.env["GITHUB_OUTPUT"])
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines)


def _workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    return workspace


def test_github_steps_around_the_scan_run_whatever_its_outcome() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    steps = {s["name"]: s for s in action["runs"]["steps"]}
    install = _step(action, "install")
    assert install["if"] == "inputs.install != 'none'"
    sarif = steps["Upload SARIF to code scanning"]
    assert sarif["uses"].startswith("github/codeql-action/upload-sarif@")
    assert sarif["if"].startswith("always() && ")
    assert sarif["with"]["sarif_file"] == "${{ inputs.output-dir }}/imageaudit.sarif"
    attach = steps["Attach the reports"]
    assert attach["uses"].startswith("actions/upload-artifact@")
    assert attach["if"].startswith("always() && ")
    assert attach["with"]["path"] == "${{ inputs.output-dir }}/"
    publish = _step(action, "publish")
    assert "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)" in (
        publish["if"]
    )
    assert "inputs.catalogue-url != ''" in publish["if"]
    assert "IMAGEAUDIT_CATALOGUE_TOKEN" in publish["env"]


@pytest.mark.parametrize(("name", "code", "level"), [("weak", 3, "none"), ("clean", 0, "basic")])
def test_github_scan_step(images: dict[str, Path], tmp_path: Path, name: str, code: int,
                          level: str) -> None:
    action = _action()
    workspace = _workspace(tmp_path)
    inputs = _inputs(action, image=str(images[name]), require="basic", install="none")
    ran = run_github_step(_step(action, "scan"), inputs, workspace)

    assert ran.code == code, ran.stderr
    assert "Traceback" not in ran.stderr
    assert _outputs(ran) == {"exit-code": str(code)}
    out = workspace / inputs["output-dir"]
    assert sorted(p.name for p in out.iterdir()) == sorted(UPLOADED)
    check_reports(out, name, level)
    summary = Path(ran.env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert summary == (out / "imageaudit.md").read_text(encoding="utf-8")
    if code == 3:
        assert ran.stdout.splitlines()[-1] == (
            f"::error::imageaudit: {images[name]} does not reach level basic "
            f"(see the job summary and imageaudit-report/imageaudit.html)"
        )
    else:
        assert ran.stdout.splitlines()[-1] == f"imageaudit: {images[name]} reaches level basic"


def test_github_scan_step_with_an_artifact_and_waivers(images: dict[str, Path],
                                                       tmp_path: Path) -> None:
    action = _action()
    workspace = _workspace(tmp_path)
    (workspace / "dl").mkdir()
    (workspace / "dl" / "image.tar").write_bytes(images["clean"].read_bytes())
    (workspace / "waivers.yaml").write_text("waivers: []\n", encoding="utf-8")
    inputs = _inputs(action, image="image.tar", artifact="built-image", artifact_path="dl",
                     require="basic", install="none", waivers="waivers.yaml",
                     formats="junit markdown", output_dir="reports")
    ran = run_github_step(_step(action, "scan"), inputs, workspace)
    assert ran.code == 0, ran.stderr
    assert sorted(p.name for p in (workspace / "reports").iterdir()) == [
        "imageaudit.json", "imageaudit.junit.xml", "imageaudit.md",
    ]


def test_github_scan_step_usage_error_is_exit_2(tmp_path: Path) -> None:
    action = _action()
    workspace = _workspace(tmp_path)
    inputs = _inputs(action, image="missing.qcow2", install="none")
    ran = run_github_step(_step(action, "scan"), inputs, workspace)
    assert ran.code == 2
    assert diagnostics(ran.stderr)[0] == (
        "imageaudit: error: missing.qcow2: no such file or directory"
    )
    assert _outputs(ran) == {"exit-code": "2"}


# --- GitLab ---------------------------------------------------------------------------------


def _gitlab() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(GITLAB.read_text(encoding="utf-8"))
    return doc


def _job_script(doc: dict[str, Any], name: str) -> str:
    """before_script (from ``extends``) and script, as the runner joins them in one shell."""
    job = doc[name]
    parent = doc[job["extends"]] if "extends" in job else {}
    lines = [*job.get("before_script", parent.get("before_script", [])), *job["script"]]
    return "\n".join(lines) + "\n"


def run_gitlab_job(doc: dict[str, Any], name: str, workspace: Path,
                   variables: dict[str, str]) -> Ran:
    env = _base_env(workspace.parent)
    env.update({
        "CI": "true",
        "CI_JOB_URL": "https://gitlab.example.org/group/project/-/jobs/42",
        "CI_DEFAULT_BRANCH": "main",
        "CI_COMMIT_BRANCH": "main",
        "CI_PROJECT_DIR": str(workspace),
    })
    env.update({k: str(v) for k, v in doc["variables"].items()})
    env.update({k: str(v) for k, v in doc[name].get("variables", {}).items()})
    env.update(variables)
    return _bash(_job_script(doc, name), workspace, env)


def test_gitlab_job_keeps_reports_whatever_the_outcome() -> None:
    doc = _gitlab()
    job = doc["imageaudit"]
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["paths"] == ["$IMAGEAUDIT_OUT/"]
    assert job["artifacts"]["reports"]["junit"] == "$IMAGEAUDIT_OUT/imageaudit.junit.xml"
    publish = doc["imageaudit-publish"]
    assert publish["rules"] == [{
        "if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $IMAGEAUDIT_CATALOGUE_URL",
        "when": "always",
    }]
    assert publish["needs"] == [{"job": "imageaudit", "artifacts": True}]


@pytest.mark.parametrize(("name", "code", "level"), [("weak", 3, "none"), ("clean", 0, "basic")])
def test_gitlab_scan_job(images: dict[str, Path], tmp_path: Path, name: str, code: int,
                         level: str) -> None:
    doc = _gitlab()
    workspace = _workspace(tmp_path)
    ran = run_gitlab_job(doc, "imageaudit", workspace, {
        "IMAGEAUDIT_IMAGE": str(images[name]), "IMAGEAUDIT_INSTALL": "none",
    })
    assert ran.code == code, ran.stderr
    assert "Traceback" not in ran.stderr
    artifacts = doc["imageaudit"]["artifacts"]
    paths = [_gitlab_path(p, ran.env) for p in artifacts["paths"]]
    assert paths == [workspace / "imageaudit-report"]
    junit = _gitlab_path(artifacts["reports"]["junit"], ran.env)
    annotations = _gitlab_path(artifacts["reports"]["annotations"], ran.env)
    assert junit.is_file()
    assert json.loads(annotations.read_text(encoding="utf-8")) == {"imageaudit": [{
        "external_link": {
            "label": "imageaudit HTML report",
            "url": "https://gitlab.example.org/group/project/-/jobs/42/artifacts/file/"
                   "imageaudit-report/imageaudit.html",
        },
    }]}
    assert sorted(p.name for p in paths[0].iterdir()) == sorted([*UPLOADED, "annotations.json"])
    check_reports(paths[0], name, level)
    # The markdown summary is in the log, inside a collapsible section.
    markdown = (paths[0] / "imageaudit.md").read_text(encoding="utf-8")
    assert markdown.strip() in ran.stdout
    assert "section_start:" in ran.stdout


def _gitlab_path(value: str, env: dict[str, str]) -> Path:
    expanded = re.sub(r"\$(\w+)", lambda m: env[m.group(1)], value)
    return Path(env["CI_PROJECT_DIR"]) / expanded.rstrip("/")


# --- publish steps --------------------------------------------------------------------------


def _has_publish_command() -> bool:
    proc = subprocess.run([str(VENV_BIN / "imageaudit"), "publish", "--help"],
                          capture_output=True, text=True, check=False)
    return proc.returncode == 0


@pytest.fixture
def catalogue(images: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Any:
    if not _has_publish_command():
        pytest.skip("imageaudit publish is not wired into the command line yet")
    from tests.publish.stub_catalogue import CatalogueState, StubCatalogue

    state = CatalogueState(images={sha512_file(images["clean"])[0]}, tokens={"s3cret": "auditor"})
    key_dir = tmp_path_factory.mktemp("auditor-key")
    generate_keypair(key_dir / "auditor.key", key_dir / "auditor.key.pub")
    state.public_key = load_private_key(key_dir / "auditor.key").public_key()
    server = StubCatalogue(state).start()
    server.key_file = key_dir / "auditor.key"
    yield server
    server.stop()


def test_publish_steps_send_the_report(images: dict[str, Path], tmp_path: Path,
                                       catalogue: Any) -> None:
    workspace = _workspace(tmp_path)
    action = _action()
    inputs = _inputs(action, image=str(images["clean"]), install="none",
                     catalogue_url=catalogue.url, catalogue_token="s3cret",
                     signing_key=catalogue.key_file.read_text(encoding="ascii"))
    assert run_github_step(_step(action, "scan"), inputs, workspace).code == 0
    ran = run_github_step(_step(action, "publish"), inputs, workspace)
    assert ran.code == 0, ran.stderr
    assert "Traceback" not in ran.stderr
    assert len(catalogue.state.stored) == 1

    doc = _gitlab()
    ran = run_gitlab_job(doc, "imageaudit-publish", workspace, {
        "IMAGEAUDIT_INSTALL": "none", "IMAGEAUDIT_CATALOGUE_URL": catalogue.url,
        "IMAGEAUDIT_CATALOGUE_TOKEN": "s3cret", "IMAGEAUDIT_SIGNING_KEY": str(catalogue.key_file),
    })
    assert ran.code == 0, ran.stderr
    assert len(catalogue.state.stored) == 1  # the same report: stored once


def test_gitlab_publish_without_a_report_is_exit_2(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    ran = run_gitlab_job(_gitlab(), "imageaudit-publish", workspace, {
        "IMAGEAUDIT_INSTALL": "none", "IMAGEAUDIT_CATALOGUE_URL": "http://127.0.0.1:9",
    })
    assert ran.code == 2
    assert ran.stderr.splitlines() == [
        "imageaudit: no report to publish (the scan could not run; see the imageaudit job)"
    ]


# --- the files each job uploads -------------------------------------------------------------


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_reports(out: Path, name: str, level: str) -> None:
    """SARIF valid against the 2.1.0 schema, JUnit XML, HTML, markdown, for the right image."""
    report = json.loads((out / "imageaudit.json").read_text(encoding="utf-8"))
    assert report["certification"]["level"] == level
    failed = {f["rule_id"] for f in report["findings"] if f["status"] == "FAIL"}
    assert (WEAK_RULE in failed) is (name == "weak")

    sarif = json.loads((out / "imageaudit.sarif").read_text(encoding="utf-8"))
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text(encoding="utf-8")))
    assert sarif["version"] == "2.1.0"
    sarif_rules = {r["ruleId"] for run in sarif["runs"] for r in run["results"]
                   if r["kind"] == "fail"}
    assert (WEAK_RULE in sarif_rules) is (name == "weak")

    junit = ET.parse(out / "imageaudit.junit.xml").getroot()
    cases = {c.get("name"): c for c in junit.iter("testcase")}
    assert WEAK_RULE in cases
    assert (cases[WEAK_RULE].find("failure") is not None) is (name == "weak")

    html = (out / "imageaudit.html").read_text(encoding="utf-8")
    assert html.lower().startswith("<!doctype html>")
    parser = _Html()
    parser.feed(html)
    parser.close()
    assert {"html", "head", "body"} <= set(parser.tags)
    assert "script" not in parser.tags  # a self-contained, inert report

    markdown = (out / "imageaudit.md").read_text(encoding="utf-8")
    source = report["image"]["source"]
    assert markdown.splitlines()[0] == f"## imageaudit: `{source}` certified **{level}**"


def test_template_files_are_the_ones_documented() -> None:
    guide = (ROOT / "ci" / "README.md").read_text(encoding="utf-8")
    for path in ("ci/github/action.yml", "ci/gitlab/imageaudit.gitlab-ci.yml"):
        assert path in guide
    assert os.access(VENV_BIN / "imageaudit", os.X_OK)
