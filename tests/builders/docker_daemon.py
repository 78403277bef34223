"""A private Docker daemon for tests: Debian's ``dockerd`` on a socket in a temporary dir.

Started once per session with no networking (``--bridge=none --iptables=false``), the vfs
storage driver and the cgroupfs driver, so it needs neither overlayfs nor systemd. Tests that
use the :func:`docker_daemon` fixture are skipped, with the daemon's own last words as the
reason, when it cannot start here. ``scripts/bootstrap.sh --test`` installs ``docker.io``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT = 60.0


def _log_tail(log: Path, lines: int = 8) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])


def _ping(url: str) -> bool:
    import docker

    try:
        client = docker.DockerClient(base_url=url, timeout=5)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except Exception:  # a half-started daemon answers with many kinds of errors
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def docker_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``unix://`` URL of a freshly started private dockerd (skip if it cannot run here)."""
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        pytest.skip("dockerd not installed (scripts/bootstrap.sh --test installs docker.io)")
    # Unix socket paths are limited to 108 bytes: keep the base short.
    base = tmp_path_factory.mktemp("dockerd")
    sock = base / "docker.sock"
    log = base / "dockerd.log"
    argv = [
        dockerd,
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        "--storage-driver=vfs",
        "--exec-opt=native.cgroupdriver=cgroupfs",
        f"--data-root={base / 'root'}",
        f"--exec-root={base / 'exec'}",
        f"--pidfile={base / 'dockerd.pid'}",
        f"--host=unix://{sock}",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    url = f"unix://{sock}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (sock.exists() and _ping(url)):
            if proc.poll() is not None:
                pytest.skip(f"dockerd exited with {proc.returncode}: {_log_tail(log)}")
            if time.monotonic() > deadline:
                pytest.skip(f"dockerd did not answer in {START_TIMEOUT:.0f}s: {_log_tail(log)}")
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
