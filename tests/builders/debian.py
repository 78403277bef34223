"""A minimal real Debian bookworm root, built once with mmdebstrap and cached between runs.

``debian_root()`` builds ``mmdebstrap --variant=minbase`` (plus a few packages later tests
need) into a tarball under the test cache (``$IMAGEAUDIT_TEST_CACHE`` or
``~/.cache/imageaudit-tests``) and unpacks it into a directory beside it. A lock file makes
concurrent callers (pytest-xdist workers, several checkouts) wait for one build instead of
racing; a finished build is reused. The first build reaches the Debian mirror, so tests
using it are marked ``network`` and ``slow``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
VARIANT = "minbase"
EXTRA_PACKAGES: tuple[str, ...] = ("openssh-server", "passwd")
BUILD_TIMEOUT = 1800


def cache_root(cache_dir: Path | None = None) -> Path:
    """The directory holding cached test artefacts."""
    if cache_dir is not None:
        return cache_dir
    env = os.environ.get("IMAGEAUDIT_TEST_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "imageaudit-tests"


def _build_key(packages: tuple[str, ...]) -> str:
    spec = "|".join([SUITE, VARIANT, MIRROR, *sorted(packages)])
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ensure_mmdebstrap() -> str:
    found = shutil.which("mmdebstrap")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "mmdebstrap"],
        check=True,
        env=env,
    )
    found = shutil.which("mmdebstrap")
    if not found:
        raise RuntimeError("mmdebstrap is not available after installing it")
    return found


def _build_tarball(tarball: Path, packages: tuple[str, ...]) -> None:
    mmdebstrap = _ensure_mmdebstrap()
    partial = tarball.with_name(tarball.name + ".partial")
    partial.unlink(missing_ok=True)
    cmd = [
        mmdebstrap,
        f"--variant={VARIANT}",
        f"--include={','.join(packages)}",
        "--format=tar",
        SUITE,
        str(partial),
        MIRROR,
    ]
    subprocess.run(cmd, check=True, timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL)
    partial.rename(tarball)


def _unpack(tarball: Path, target: Path) -> None:
    # Our own tarball from mmdebstrap, trusted; the host tar keeps owners and modes. Device
    # nodes are left out: they are not needed and mknod may be refused in a container.
    partial = target.with_name(target.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    subprocess.run(
        ["tar", "--numeric-owner", "-xpf", str(tarball), "-C", str(partial), "--exclude=./dev/*"],
        check=True,
        timeout=BUILD_TIMEOUT,
    )
    partial.rename(target)


def debian_root(
    cache_dir: Path | None = None,
    packages: tuple[str, ...] = EXTRA_PACKAGES,
    flavour: str = VARIANT,
) -> Path:
    """Path of an unpacked minimal Debian bookworm root, building and caching it if needed.

    ``packages`` are installed on top of minbase (mmdebstrap leaves Recommends out);
    ``flavour`` names the root in the cache beside the hash of the package list.
    """
    base = cache_root(cache_dir)
    name = f"debian-{SUITE}-{flavour}-{_build_key(packages)}"
    tarball = base / f"{name}.tar"
    target = base / name
    with _locked(base / f"{name}.lock"):
        if not target.is_dir():
            if not tarball.is_file():
                _build_tarball(tarball, packages)
            _unpack(tarball, target)
    return target


@pytest.fixture(scope="session")
def debian_root_dir() -> Path:
    """The cached Debian bookworm root (built on first use; needs the Debian mirror)."""
    return debian_root()
