"""imageaudit built as a wheel and installed the way users install it, away from this tree.

:func:`source_copy` copies the files a build reads (``pyproject.toml``, the packages, the
README, the constraints) to a fresh directory, so that no ``build/`` left in this tree by an
earlier build can slip a deleted file into the wheel. :func:`wheelhouse` holds every dependency
of the project (and the build backend) as wheels, pinned by ``constraints.txt``, made once per
constraints, dependency list and Python under the test cache (``$IMAGEAUDIT_TEST_CACHE`` or
``~/.cache/imageaudit-tests``); after that, building and installing need no network. The first
build reaches PyPI: tests using it are marked ``network``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.builders.debian import _locked, cache_root

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"
# What setuptools reads to build the wheel (the README is the long description).
SOURCE_FILES = ("pyproject.toml", "README.md", "constraints.txt")
SOURCE_DIRS = ("imageaudit", "integrations", "ci")
BACKEND = ("setuptools>=77", "wheel")
PIP_TIMEOUT = 900
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".mypy_cache")


def _pip(*args: str, env: dict[str, str] | None = None) -> None:
    # Without PYTHONPATH: a tree on it would count as imageaudit already installed.
    clean = {k: v for k, v in (os.environ if env is None else env).items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          timeout=PIP_TIMEOUT, stdin=subprocess.DEVNULL, check=False,
                          env=clean)
    if proc.returncode != 0:
        raise RuntimeError(f"pip {' '.join(args)} failed:\n{proc.stderr[-4000:]}")


def offline_pip_env(wheels: Path) -> dict[str, str]:
    """pip's environment variables for installing from ``wheels`` only (no index)."""
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_NO_COMPILE": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def source_copy(dest: Path) -> Path:
    """The build's inputs from this tree, copied to ``dest`` (returned)."""
    dest.mkdir(parents=True)
    for name in SOURCE_FILES:
        shutil.copy2(ROOT / name, dest / name)
    for name in SOURCE_DIRS:
        shutil.copytree(ROOT / name, dest / name, ignore=_IGNORED, symlinks=True)
    return dest


def wheelhouse(cache_dir: Path | None = None) -> Path:
    """Every dependency of imageaudit and its build backend as wheels, built on first use."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    spec = "\n".join([sys.version, *BACKEND, *project["dependencies"],
                      CONSTRAINTS.read_text(encoding="utf-8")])
    key = hashlib.sha256(spec.encode()).hexdigest()[:12]
    base = cache_root(cache_dir)
    house = base / f"wheelhouse-{key}"
    with _locked(base / f"wheelhouse-{key}.lock"):
        if not (house / ".complete").exists():
            shutil.rmtree(house, ignore_errors=True)
            work = base / f"wheelhouse-{key}.src"
            shutil.rmtree(work, ignore_errors=True)
            _pip("wheel", "--quiet", "--constraint", str(CONSTRAINTS), "--wheel-dir", str(house),
                 str(source_copy(work)), *BACKEND)
            shutil.rmtree(work)
            for own in house.glob("imageaudit-*.whl"):
                own.unlink()  # the project itself is built from the tree by each test
            (house / ".complete").write_text(spec)
    return house


def build_wheel(source: Path, out: Path, wheels: Path) -> Path:
    """``pip wheel --no-deps`` of ``source`` (its backend from ``wheels``, offline)."""
    env = {**os.environ, **offline_pip_env(wheels)}
    env.pop("PIP_CONSTRAINT", None)
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(source), env=env)
    (built,) = out.glob("imageaudit-*.whl")
    return built


def install_in_fresh_venv(wheel: Path, venv: Path, wheels: Path) -> Path:
    """A new virtual environment (no system site packages, no pip of its own) holding only
    ``wheel`` and its dependencies, resolved against ``constraints.txt``; its ``bin``."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=300, stdin=subprocess.DEVNULL, capture_output=True)
    env = {**os.environ, **offline_pip_env(wheels)}
    _pip("--python", str(venv / "bin" / "python"), "install", "--quiet", "--constraint",
         str(CONSTRAINTS), str(wheel), env=env)
    return venv / "bin"
