"""A wheel built from this tree works once installed: rules and data ship in the package.

The wheel is built from a copy of the tree, installed with its dependencies (pinned by
``constraints.txt``) into a new virtual environment without system site packages, and its own
``imageaudit`` is run from a directory outside the tree, with no ``PYTHONPATH``: it must find
the rule set (the same tree, by digest), judge a small root directory with it (the password
lists of ``ruleset/data`` included) and report a level.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from imageaudit.rules import load_rules, tree_digest
from tests.builders.example_tree import clean_scenario, weak_scenario
from tests.builders.wheel import (
    ROOT,
    build_wheel,
    install_in_fresh_venv,
    source_copy,
    wheelhouse,
)
from tests.scenario import write_tree

pytestmark = [pytest.mark.network, pytest.mark.slow]

RULESET = ROOT / "imageaudit" / "ruleset"
# Package data the code reads at run time, beside the modules.
DATA_DIRS = ("imageaudit/ruleset", "imageaudit/schemas", "imageaudit/data",
             "imageaudit/batch/templates", "integrations/appdb/templates",
             "integrations/appdb/migrations")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the ``bin`` of a fresh environment holding it)."""
    base = tmp_path_factory.mktemp("wheel")
    wheels = wheelhouse()
    wheel = build_wheel(source_copy(base / "src"), base / "dist", wheels)
    return wheel, install_in_fresh_venv(wheel, base / "venv", wheels)


def _run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Nothing of this tree on the path: no PYTHONPATH, and run from elsewhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["HOME"] = str(cwd)
    env.pop("XDG_CACHE_HOME", None)
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False,
                          stdin=subprocess.DEVNULL)


def test_the_wheel_holds_every_data_file_of_the_tree(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for folder in DATA_DIRS:
        tree = {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
        assert tree, folder
        assert tree - names == set(), f"{folder}: files left out of the wheel"
    assert "imageaudit/ruleset/levels.yaml" in names
    assert "imageaudit/ruleset/data/weak-passwords.txt" in names


def test_the_installed_command_finds_the_shipped_rules(installed: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    _, bin_dir = installed
    where = _run(bin_dir, tmp_path, "python", "-c",
                 "import imageaudit, imageaudit.pipeline as p; "
                 "print(imageaudit.__file__); print(p.default_rules_dir())")
    assert where.returncode == 0, where.stderr
    module, rules_dir = where.stdout.splitlines()
    venv = bin_dir.parent.resolve()
    assert Path(module).resolve().is_relative_to(venv)
    assert Path(rules_dir).is_relative_to(venv)
    # The same rule set as this tree, file for file.
    assert tree_digest(Path(rules_dir)) == tree_digest(RULESET)

    listed = _run(bin_dir, tmp_path, "imageaudit", "rules", "list")
    assert listed.returncode == 0, listed.stderr
    ids = [line.split()[0] for line in listed.stdout.splitlines()[1:]]  # under the header
    assert ids == [rule.id for rule in load_rules(RULESET)]


@pytest.mark.parametrize(("name", "code", "level"), [("weak", 3, "none"), ("clean", 0, "basic")])
def test_the_installed_command_scans_and_certifies(installed: tuple[Path, Path], tmp_path: Path,
                                                   name: str, code: int, level: str) -> None:
    _, bin_dir = installed
    scenario = weak_scenario() if name == "weak" else clean_scenario()
    root = write_tree(scenario, tmp_path / "root")
    out = tmp_path / "report.json"
    scan = _run(bin_dir, tmp_path, "imageaudit", "scan", str(root), "--require", "basic",
                "--format", "json", "-o", str(out), "-q")
    assert scan.returncode == code, scan.stderr
    assert "Traceback" not in scan.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["certification"]["level"] == level
    failed = {f["rule_id"] for f in report["findings"] if f["status"] == "FAIL"}
    # The default password comes from ruleset/data/default-passwords.yaml of the wheel.
    assert ("password_default_or_weak" in failed) is (name == "weak")
    assert report["certification"]["ruleset_version"] == tree_digest(RULESET)
