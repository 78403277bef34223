"""Microsoft's SARIF Multitool from npm, installed once into the test cache.

``Sarif.Multitool validate --rule-kind "Gh;Sarif"`` checks a log against the SARIF
specification's rules and against what GitHub code scanning requires of an upload (the GH
rules); it is the check GitHub's documentation points to. The npm package is a thin launcher
around a self-contained .NET binary, one package per platform, which loads the system's ICU
(Debian 12: ``libicu72``). It is installed with ``npm install --prefix`` under the test cache
(``$IMAGEAUDIT_TEST_CACHE`` or ``~/.cache/imageaudit-tests``), pinned to :data:`VERSION`; a
lock file makes concurrent callers wait for one install, and an install that did not finish
(no ``.complete`` marker) is made again. The first install reaches the npm registry: tests
using it are marked ``network``. The binary is run directly, not through the package's
launcher, which hands its arguments to a shell that would split ``Gh;Sarif`` at the ``;``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.builders.debian import _locked, cache_root

PACKAGE = "@microsoft/sarif-multitool"
VERSION = "5.7.0"
INSTALL_TIMEOUT = 600
VALIDATE_TIMEOUT = 300
PLATFORMS = {"linux": "linux", "darwin": "darwin"}
CONFIG = Path(__file__).resolve().parents[1] / "data" / "sarif" / "multitool.xml"


def multitool(cache_dir: Path | None = None) -> Path:
    """Path of the ``Sarif.Multitool`` binary, installed on first use.

    Raises ``RuntimeError`` naming what is missing when npm is not installed or the package
    cannot be fetched (no network, registry down).
    """
    platform = PLATFORMS.get(sys.platform)
    if platform is None:
        raise RuntimeError(f"no SARIF Multitool package for platform {sys.platform}")
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: run scripts/bootstrap.sh --test "
                           "(Debian packages nodejs, npm and libicu72)")
    base = cache_root(cache_dir)
    prefix = base / f"sarif-multitool-{VERSION}"
    binary = prefix / "node_modules" / "@microsoft" / f"sarif-multitool-{platform}" / \
        "Sarif.Multitool"
    with _locked(base / f"sarif-multitool-{VERSION}.lock"):
        if not (prefix / ".complete").exists():
            shutil.rmtree(prefix, ignore_errors=True)
            prefix.mkdir(parents=True)
            env = {**os.environ, "npm_config_update_notifier": "false"}
            proc = subprocess.run(
                [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                 "--no-save", f"{PACKAGE}@{VERSION}"],
                capture_output=True, text=True, timeout=INSTALL_TIMEOUT, env=env,
                stdin=subprocess.DEVNULL, check=False)
            if proc.returncode != 0 or not binary.is_file():
                raise RuntimeError(
                    f"npm could not install {PACKAGE}@{VERSION} into {prefix} (is the npm "
                    f"registry reachable?):\n{proc.stderr[-4000:]}")
            # The package makes its binary executable in a postinstall script, which recent
            # npm versions hold back until the script is approved.
            binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
            (prefix / ".complete").write_text(f"{PACKAGE}@{VERSION}\n")
    return binary


def validate(tool: Path, logs: list[Path], out: Path) -> tuple[subprocess.CompletedProcess[str],
                                                               list[dict[str, Any]]]:
    """Run ``validate --rule-kind Gh;Sarif`` on ``logs``; the run and the problems it found.

    The default failure levels are kept (error and warning): notes are advice (snippets,
    rule ids in the ``CS2001`` style) that GitHub does not ask for; :data:`CONFIG` turns off
    the one check that fetches every URI of the log. The problems are read from the
    validator's own SARIF log written to ``out``.
    """
    out.unlink(missing_ok=True)
    proc = subprocess.run([str(tool), "validate", "--rule-kind", "Gh;Sarif", "--config",
                           str(CONFIG), "--output", str(out), *map(str, logs)],
                          capture_output=True, text=True, timeout=VALIDATE_TIMEOUT,
                          stdin=subprocess.DEVNULL, check=False)
    if not out.is_file():
        raise RuntimeError(f"Sarif.Multitool wrote no log (exit {proc.returncode}):\n"
                           f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    log = json.loads(out.read_text(encoding="utf-8-sig"))
    problems: list[dict[str, Any]] = [
        r for run in log["runs"] for r in run.get("results", [])
        if r.get("level", "warning") in ("error", "warning")
    ]
    return proc, problems
