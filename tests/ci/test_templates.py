"""The CI templates work as written: their shell steps, read from the YAML files, run here.

Each template's scan step (and publish step) is taken from ``ci/github/action.yml`` and
``ci/gitlab/imageaudit.gitlab-ci.yml`` themselves, given its inputs the way the CI system
would (``${{ inputs.x }}`` in a GitHub step's ``env:``; GitLab ``variables:`` as environment),
and run with bash against a weak and a clean container archive. The job outcome (exit 3 for the
weak image with ``--require basic``, 0 for the clean one) and the files each job would upload
(SARIF, JUnit, HTML, markdown) are checked. The install step is skipped the way a user skips
it: ``install: none`` / ``IMAGEAUDIT_INSTALL=none`` with this tree's imageaudit on ``PATH``.
The install steps run too, as written, on a runner with only the system's programs on ``PATH``:
pip from the action's own checkout (``GITHUB_ACTION_PATH`` in a copy of this tree) or from a
git repository tagged ``v1``, their dependencies from a local wheelhouse through pip's own
environment variables; then the feeds step and the scan with what they installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
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
# The environment running the tests: imageaudit of this tree, for install: none.
VENV_BIN = Path(sys.executable).parent
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


SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


def _base_env(tmp: Path, *, installed: bool = True) -> dict[str, str]:
    """A runner's environment, a fresh home and caches; with ``installed``, imageaudit of this
    tree on PATH (the install step skipped), else only the system's programs."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": f"{VENV_BIN}:{SYSTEM_PATH}" if installed else SYSTEM_PATH,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "LANG": "C.UTF-8",
    }
    if installed and "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]  # this tree, when the tests run from one
    return env


def _bash(script: str, cwd: Path, env: dict[str, str], user: int | None = None) -> Ran:
    # Both systems run a step as a bash script with -e and pipefail.
    path = cwd.parent / f"step-{len(list(cwd.parent.glob('step-*')))}.sh"
    path.write_text(script, encoding="utf-8")
    # As another user (GitHub's runner user, not root) through setpriv, when asked.
    as_user = [] if user is None else ["setpriv", f"--reuid={user}", f"--regid={user}",
                                       "--clear-groups", "--"]
    proc = subprocess.run(
        [*as_user, "bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False,
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


@dataclass
class Job:
    """A GitHub job running the action's steps one after another, as the runner would: each
    step's outputs (``steps.ID.outputs.NAME``) and the directories it adds to ``GITHUB_PATH``
    are seen by the steps after it."""

    workspace: Path
    action_path: Path = ROOT / "ci" / "github"
    installed: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    user: int | None = None
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def runner(self) -> Path:
        return self.workspace.parent / "runner"

    def value(self, value: object, inputs: dict[str, str]) -> str:
        """Substitute ``${{ inputs.NAME }}``, ``${{ steps.ID.outputs.NAME }}`` and
        ``${{ runner.temp }}`` as GitHub does (an output never set is empty)."""

        def one(match: re.Match[str]) -> str:
            expr = match.group(1)
            if found := re.fullmatch(r"inputs\.([A-Za-z0-9_-]+)", expr):
                return inputs[found.group(1)]
            if found := re.fullmatch(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)", expr):
                return self.outputs.get(found.group(1), {}).get(found.group(2), "")
            assert expr == "runner.temp", f"an expression the test cannot evaluate: {match[0]}"
            return str(self.runner)

        return EXPRESSION.sub(one, str(value))

    def run(self, step: dict[str, Any], inputs: dict[str, str]) -> Ran:
        assert step["shell"] == "bash"
        # Inputs reach the script through env: only (no script injection through an input).
        assert "${{" not in step["run"]
        self.runner.mkdir(exist_ok=True)
        output = self.runner / f"output-{step['id']}"
        env = _base_env(self.workspace.parent, installed=self.installed)
        added = self.runner / "path"
        if added.exists():  # GITHUB_PATH: the last added comes first
            dirs = added.read_text(encoding="utf-8").splitlines()[::-1]
            env["PATH"] = ":".join([*dirs, env["PATH"]])
        env.update({
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_ACTION_PATH": str(self.action_path),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(self.runner / "summary.md"),
            "GITHUB_PATH": str(added),
            "RUNNER_TEMP": str(self.runner),
        })
        env.update({k: self.value(v, inputs) for k, v in step.get("env", {}).items()})
        env.update(self.extra_env)
        ran = _bash(step["run"], self.workspace, env, self.user)
        lines = output.read_text(encoding="utf-8").splitlines() if output.exists() else []
        self.outputs[step["id"]] = dict(line.split("=", 1) for line in lines)
        return ran


def run_github_step(step: dict[str, Any], inputs: dict[str, str], workspace: Path,
                    extra_env: dict[str, str] | None = None) -> Ran:
    """The action's ``setup`` step and then ``step``, in a new job."""
    job = Job(workspace, extra_env=extra_env or {})
    if step.get("id") != "setup":
        assert job.run(_step(_action(), "setup"), inputs).code == 0
    return job.run(step, inputs)


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
                   variables: dict[str, str], *, installed: bool = True) -> Ran:
    env = _base_env(workspace.parent, installed=installed)
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
    # Literal paths: GitLab shows expose_as links in merge requests only for those.
    assert job["artifacts"]["expose_as"] == "imageaudit report"
    assert job["artifacts"]["paths"] == ["imageaudit-report/"]
    assert job["artifacts"]["reports"] == {
        "junit": "imageaudit-report/imageaudit.junit.xml",
        "annotations": "imageaudit-report/annotations.json",
    }
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


# --- stock runners: no appliance, pip from the template's own ref, caches --------------------


def test_templates_need_no_appliance() -> None:
    # Stock runners (GitHub's ubuntu-latest, GitLab's shared runners) have no readable kernel
    # image and no /dev/kvm: nothing of libguestfs is installed, nothing is bootstrapped.
    for path in (ACTION, GITLAB):
        text = path.read_text(encoding="utf-8")
        for word in ("linux-image", "guestfs", "bootstrap", "sudo apt-get install"):
            assert word not in text, f"{path.name} mentions {word}"
    assert "linux-image" not in (ROOT / "ci" / "README.md").read_text(encoding="utf-8")
    action = _action()
    # The one package from the distribution, only when missing: the seccomp binding.
    for script in (_step(action, "install")["run"], _job_script(_gitlab(), "imageaudit")):
        (after,) = re.findall(r"apt-get install -y -q --no-install-recommends \\\n(.*)\n", script)
        assert "python3-seccomp" in after.split()
    assert action["inputs"]["install"]["default"] == "pip"
    assert action["inputs"]["pip-spec"]["default"] == ""
    assert _gitlab()["variables"]["IMAGEAUDIT_INSTALL"] == "pip"
    assert _gitlab()["variables"]["IMAGEAUDIT_REF"] == "v1"


def test_github_caches_the_environment_and_the_feeds() -> None:
    action = _action()
    caches = [s for s in action["runs"]["steps"] if s.get("uses", "").startswith("actions/cache@")]
    venv, feeds = caches
    assert venv["if"] == "inputs.install == 'pip'"
    assert venv["with"]["path"].splitlines() == ["${{ steps.setup.outputs.venv }}",
                                            "${{ steps.setup.outputs.pip-cache }}"]
    # Keyed on the content of the action's own imageaudit: @v1 never gets main's environment.
    assert "${{ steps.setup.outputs.install-hash }}" in venv["with"]["key"]
    assert feeds["if"] == "inputs.feeds != ''"
    assert feeds["with"]["key"].endswith("-${{ steps.setup.outputs.date }}")
    assert feeds["with"]["path"] == "${{ steps.setup.outputs.cache-home }}/imageaudit/feeds"
    install = _step(action, "install")
    assert install["env"]["PIP_CACHE_DIR"] == "${{ steps.setup.outputs.pip-cache }}"
    assert install["env"]["IMAGEAUDIT_CACHE_HIT"] == "${{ steps.venv-cache.outputs.cache-hit }}"


def test_gitlab_caches_pip_and_the_feeds_where_the_jobs_write_them() -> None:
    doc = _gitlab()
    caches = doc[".imageaudit-install"]["cache"]
    assert [c["paths"] for c in caches] == [[".imageaudit-cache/pip/"],
                                            [".imageaudit-cache/imageaudit/feeds/"]]
    assert "$IMAGEAUDIT_REF" in caches[0]["key"]
    script = _job_script(doc, "imageaudit")
    assert 'export XDG_CACHE_HOME="$CI_PROJECT_DIR/.imageaudit-cache"' in script
    assert 'dir="$XDG_CACHE_HOME/imageaudit/feeds"' in script


def test_github_names_are_unique_in_a_matrix_over_images(tmp_path: Path) -> None:
    action = _action()
    steps = {s["name"]: s for s in action["runs"]["steps"]}
    assert steps["Attach the reports"]["with"]["name"] == "${{ steps.setup.outputs.artifact-name }}"
    assert steps["Upload SARIF to code scanning"]["with"]["category"] == (
        "${{ steps.setup.outputs.sarif-category }}")
    matrix = [{"image": "build/debian-12.qcow2"}, {"image": "build/alma-9.qcow2"},
              {"image": "image.qcow2", "artifact": "image-amd64"},
              {"image": "image.qcow2", "artifact": "image-arm64"}]
    names = []
    for number, given in enumerate(matrix):
        (tmp_path / str(number)).mkdir()
        job = Job(_workspace(tmp_path / str(number)))
        ran = job.run(_step(action, "setup"), _inputs(action, **given))
        assert ran.code == 0, ran.stderr
        names.append((job.outputs["setup"]["artifact-name"],
                      job.outputs["setup"]["sarif-category"]))
    assert names == [
        ("imageaudit-build-debian-12.qcow2", "imageaudit-build-debian-12.qcow2"),
        ("imageaudit-build-alma-9.qcow2", "imageaudit-build-alma-9.qcow2"),
        ("imageaudit-image-amd64-image.qcow2", "imageaudit-image-amd64-image.qcow2"),
        ("imageaudit-image-arm64-image.qcow2", "imageaudit-image-arm64-image.qcow2"),
    ]
    given = _inputs(action, image="x.qcow2", artifact_name="mine", sarif_category="cat")
    (tmp_path / "given").mkdir()
    job = Job(_workspace(tmp_path / "given"))
    assert job.run(_step(action, "setup"), given).code == 0
    assert (job.outputs["setup"]["artifact-name"], job.outputs["setup"]["sarif-category"]) == (
        "mine", "cat")


# The install steps run as written: pip from the template's own ref, into a new environment,
# with the dependencies from a local wheelhouse (pip's own environment variables), then the
# feeds step and the scan with only what was installed on PATH.


@pytest.fixture(scope="module")
def offline_pip() -> dict[str, str]:
    from tests.builders.wheel import offline_pip_env, wheelhouse

    return offline_pip_env(wheelhouse())


def _vulnerable_image(tmp_path: Path) -> tuple[Path, str]:
    """A Debian container archive with a package an OSV record fixes (a file any user reads,
    its owners in its tar headers), and the ``feeds`` option of the record directory."""
    from tests.vulns.osv_data import ALL_RECORDS, BOOKWORM_TREE, write_dir

    # The clean example's accounts and services, BOOKWORM_TREE's release and packages.
    image = docker_archive({**clean_scenario(), **BOOKWORM_TREE}, tmp_path / "image.tar")
    records = write_dir(tmp_path / "osv", ALL_RECORDS)
    return image, f"--osv {records}"


def _vulnerable(report_path: Path) -> set[str]:
    report = json.loads(report_path.read_text(encoding="utf-8"))
    return {f["resource"] for f in report["findings"]
            if f["rule_id"] == "vulnerable_package_fix_available" and f["status"] == "FAIL"}


NOBODY = 65534


@pytest.fixture
def runner_home() -> Iterator[Path]:
    """A directory the steps' user owns: ``nobody`` when the tests run as root (GitHub runs
    jobs as its unprivileged ``runner`` user), else the tests' own user."""
    base = Path(tempfile.mkdtemp(prefix="imageaudit-runner-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _hand_over(base: Path) -> int | None:
    if os.getuid() != 0:
        return None
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(base)], check=True)
    return NOBODY


@pytest.mark.network
@pytest.mark.slow
def test_github_install_feeds_and_scan_steps_on_a_stock_runner(
        runner_home: Path, offline_pip: dict[str, str]) -> None:
    from tests.builders.wheel import source_copy

    tmp_path = runner_home
    action = _action()
    # The action as GitHub lays it out: the whole repository at the ref, the action inside.
    repo = source_copy(tmp_path / "actions" / "imageaudit" / "v1")
    workspace = _workspace(tmp_path)
    image, feeds = _vulnerable_image(tmp_path)
    wheels = shutil.copytree(offline_pip["PIP_FIND_LINKS"], tmp_path / "wheelhouse")
    inputs = _inputs(action, image=str(image), feeds=feeds, formats="markdown")
    (tmp_path / "runner").mkdir()
    (tmp_path / "home").mkdir()
    user = _hand_over(tmp_path)
    job = Job(workspace, action_path=repo / "ci" / "github", installed=False,
              extra_env={**offline_pip, "PIP_FIND_LINKS": str(wheels)}, user=user)
    for step_id in ("setup", "install", "feeds", "scan"):
        ran = job.run(_step(action, step_id), inputs)
        if step_id == "scan":
            break
        assert ran.code == 0, f"{step_id}: {ran.stderr}"
    assert "Traceback" not in ran.stderr
    # Blocked at basic? No: the pending security fix blocks standard, basic is reached.
    assert ran.code == 0, ran.stderr
    venv = Path(job.outputs["setup"]["venv"])
    assert venv.stat().st_uid == (os.getuid() if user is None else user)
    assert (job.runner / "path").read_text(encoding="utf-8") == f"{venv / 'bin'}\n"
    assert _vulnerable(workspace / "imageaudit-report" / "imageaudit.json")
    # The installed imageaudit is the action's own, rules included.
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import imageaudit.pipeline as p; print(p.default_rules_dir())"],
                           capture_output=True, text=True, check=True, cwd=tmp_path,
                           env={"PATH": SYSTEM_PATH})
    assert Path(where.stdout.strip()).is_relative_to(venv)

    # The next run of the job: the cached environment is used as it is, the feeds are not
    # synced again on the same day.
    assert job.run(_step(action, "setup"), inputs).code == 0
    job.outputs["venv-cache"] = {"cache-hit": "true"}
    again = job.run(_step(action, "install"), inputs)
    assert again.code == 0, again.stderr
    assert "the cached environment is this action's imageaudit" in again.stdout
    again = job.run(_step(action, "feeds"), inputs)
    assert again.code == 0, again.stderr
    assert "feeds synced today" in again.stdout


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                   cwd=cwd, check=True, capture_output=True)


@pytest.mark.network
@pytest.mark.slow
def test_gitlab_install_and_scan_on_a_shared_runner(tmp_path: Path,
                                                    offline_pip: dict[str, str]) -> None:
    from tests.builders.wheel import source_copy

    # A repository with the release tag the template installs (IMAGEAUDIT_REF: v1).
    repo = source_copy(tmp_path / "imageaudit.git")
    _git("init", "-q", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-qm", "release", cwd=repo)
    _git("tag", "v1", cwd=repo)
    workspace = _workspace(tmp_path)
    image, feeds = _vulnerable_image(tmp_path)
    doc = _gitlab()
    env = _base_env(tmp_path, installed=False)
    ran = run_gitlab_job(doc, "imageaudit", workspace, {
        **offline_pip, "PATH": env["PATH"], "IMAGEAUDIT_IMAGE": str(image),
        "IMAGEAUDIT_REPOSITORY": f"file://{repo}", "IMAGEAUDIT_FEEDS_SYNC": feeds,
    }, installed=False)
    assert ran.code == 0, ran.stderr
    assert "Traceback" not in ran.stderr
    assert ran.stdout.splitlines()[0] == "imageaudit 0.1.0"
    assert _vulnerable(workspace / "imageaudit-report" / "imageaudit.json")
    # What GitLab caches is where the job wrote it.
    for cached in doc[".imageaudit-install"]["cache"]:
        assert (workspace / cached["paths"][0]).is_dir(), cached


def test_the_templates_own_variables_are_not_read_as_options() -> None:
    """Every ``IMAGEAUDIT_<OPTION>`` variable sets that option of every command, so a template
    variable of that form must mean what the option means, or the commands the template runs
    would take it (a feeds-sync argument list read as the feeds directory)."""
    from imageaudit.cli import config
    from imageaudit.cli.main import build_parser

    read: dict[str, set[str]] = {}
    for path, parser in config._walk(build_parser()):
        for option, _action in config._options(parser):
            for depth in range(len(path) + 1):
                name = config._env_name(path[:depth], option)
                read.setdefault(name, set()).add(" ".join((*path, f"--{option}")))
    same_meaning = {"IMAGEAUDIT_REQUIRE", "IMAGEAUDIT_WAIVERS", "IMAGEAUDIT_SIGNING_KEY",
                    "IMAGEAUDIT_CATALOGUE_TOKEN"}
    for template in (ACTION, GITLAB):
        names = set(re.findall(r"\bIMAGEAUDIT_[A-Z_]+\b", template.read_text(encoding="utf-8")))
        clashes = {n: sorted(read[n]) for n in names - same_meaning if n in read}
        assert not clashes, f"{template.name}: variables read as options: {clashes}"
