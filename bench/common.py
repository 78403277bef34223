"""Shared by the benchmarks: the cached Debian images, timed CLI runs, and small statistics.

The Debian bookworm root comes from ``tests.builders.debian`` (mmdebstrap, cached under
``$IMAGEAUDIT_TEST_CACHE`` or ``~/.cache/imageaudit-tests``); the qcow2 made from it is the
same file the test suite uses (``<cache>/vm/<root name>.qcow2``), so either builds it once
for both. The container image is a ``docker save`` archive with the mmdebstrap tarball as
its one layer, cached beside it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make ``tests.builders`` importable
    sys.path.insert(0, str(REPO))

# The test suite's builder, so that both use (and build once) the same qcow2.
from tests.conftest import debian_qcow2 as debian_qcow2  # noqa: E402 (re-exported)

IMAGEAUDIT = REPO / ".venv" / "bin" / "imageaudit"
# The environment our guestfs opener launches with on this kind of machine: the same for
# virt-inspector, so that both pay the same appliance launch.
GUESTFS_ENV = {"LIBGUESTFS_BACKEND_SETTINGS": "force_tcg", "IMAGEAUDIT_GUESTFS_TCG": "1"}
RUN_TIMEOUT = 1800


def debian_docker_archive() -> Path:
    """The same Debian root as a one-layer ``docker save`` archive (built on first use)."""
    from tests.builders.container import Layer, docker_archive
    from tests.builders.debian import cache_root, debian_root

    root = debian_root()  # also guarantees the mmdebstrap tarball beside it
    tarball = cache_root() / f"{root.name}.tar"
    out = cache_root() / f"{root.name}.docker.tar"
    if not out.exists():
        part = out.with_name(out.name + ".part")
        docker_archive([Layer(raw=tarball.read_bytes())], part, tag="debian-bench:bookworm")
        part.replace(out)
    return out


@dataclass(frozen=True, slots=True)
class Run:
    """One timed command: wall seconds, exit code, and what it printed."""

    seconds: float
    returncode: int
    stdout: str
    stderr: str


def run(cmd: Sequence[str | Path], env: Mapping[str, str] | None = None,
        ok: Sequence[int] = (0,)) -> Run:
    """Run ``cmd`` and time it; an exit code outside ``ok`` stops the benchmark."""
    full_env = {**os.environ, **(env or {})}
    start = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], env=full_env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n"
                         f"{proc.stderr[-2000:]}")
    return Run(seconds, proc.returncode, proc.stdout, proc.stderr)


def facts_timings(result: Run) -> dict[str, float]:
    """The per-phase ``timings`` of ``imageaudit facts --format json`` output."""
    data: dict[str, Any] = json.loads(result.stdout)
    return {k: float(v) for k, v in data.get("timings", {}).items()}


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def median_timings(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Median of each phase over runs (phases missing from a run are left out of it)."""
    keys: list[str] = []
    for r in runs:
        keys.extend(k for k in r if k not in keys)
    return {k: median([r[k] for r in runs if k in r]) for k in keys}


def machine() -> str:
    """A one-line description of where the figures were taken."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, libguestfs under TCG (force_tcg), load average {load}"
