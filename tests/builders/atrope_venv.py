"""atrope 2.0.0 from PyPI in a virtual environment of its own, built once and cached.

EGI sites sync VO image lists into Glance with atrope; the site tests run atrope's own code
against a real catalogue. Its dependencies (OpenStack clients, oslo, pyOpenSSL) are not ours and
may conflict with ours, so it gets its own environment under the test cache
(``$IMAGEAUDIT_TEST_CACHE`` or ``~/.cache/imageaudit-tests``), pinned by
``tests/data/atrope/constraints.txt`` and named by a hash of that file, atrope's version and the
Python's. A lock file makes concurrent callers wait for one build; a build that did not finish
(no ``.complete`` marker) is made again. The first build reaches PyPI: tests using it are marked
``network``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.builders.debian import _locked, cache_root

ATROPE = "atrope==2.0.0"
CONSTRAINTS = Path(__file__).resolve().parents[1] / "data" / "atrope" / "constraints.txt"
# Runs inside atrope's environment: atrope's command line with a recording Glance.
SITE_SCRIPT = Path(__file__).resolve().with_name("atrope_site.py")
INSTALL_TIMEOUT = 900


@dataclass(frozen=True)
class Atrope:
    """atrope's environment: ``python`` has atrope and its dependencies installed."""

    python: Path

    def dispatch(self, config: Path, glance_state: Path, *,
                 timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``atrope --config-file CONFIG dispatch`` (fetch, verify, cache, dispatch, sync) with
        Glance kept in ``glance_state`` (see ``atrope_site.py``)."""
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        # -I: neither our PYTHONPATH nor the script's folder (which holds our modules) on sys.path
        return subprocess.run([str(self.python), "-I", str(SITE_SCRIPT), str(config),
                               str(glance_state)],
                              capture_output=True, text=True, timeout=timeout, env=env,
                              check=False, stdin=subprocess.DEVNULL)


def atrope_env(cache_dir: Path | None = None) -> Atrope:
    """atrope's environment, built on first use."""
    pins = CONSTRAINTS.read_bytes()
    key = hashlib.sha256(ATROPE.encode() + sys.version.encode() + pins).hexdigest()[:12]
    base = cache_root(cache_dir)
    venv = base / f"atrope-venv-{key}"
    python = venv / "bin" / "python"
    with _locked(base / f"atrope-venv-{key}.lock"):
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                                   "--disable-pip-version-check", "--constraint",
                                   str(CONSTRAINTS), ATROPE], capture_output=True, text=True,
                                  timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"pip could not install {ATROPE}:\n{proc.stderr[-4000:]}")
            (venv / ".complete").write_text(ATROPE + "\n")
    return Atrope(python)
