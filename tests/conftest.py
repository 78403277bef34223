"""Shared pytest options and fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/data/golden/ instead of comparing to them",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run was started with ``--update-golden``."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def shared_vms() -> object:
    """Every guestfs test image opened in ONE appliance (a launch costs ~20-40 s here).

    Yields ``{name: (GuestfsFS, image path, sha256 before)}`` for the names in
    ``tests.builders.vm.SHARED_IMAGES``; the images are closed at the end of the session.
    """
    pytest.importorskip("guestfs")
    from imageaudit.openers.guestfs import open_vms
    from tests.builders.vm import SHARED_IMAGES, STANDARD, build_disk, sha256_file

    paths = {n: build_disk(STANDARD, lay, fmt) for n, (lay, fmt) in SHARED_IMAGES.items()}
    paths.update(extra_vm_images())
    before = {n: sha256_file(p) for n, p in paths.items()}
    views = open_vms(list(paths.values()))
    try:
        yield {n: (v, paths[n], before[n]) for n, v in zip(paths, views, strict=True)}
    finally:
        for v in views:
            v.close()


def extra_vm_images() -> dict[str, Path]:
    """More drives for the shared appliance: the weak and clean examples and a real Debian root.

    Adding a drive to the one appliance costs a few seconds; a launch of its own costs 20-40 s.
    The Debian root needs the Debian mirror the first time; without it that drive is left out
    and the tests that need it skip.
    """
    from tests.builders.example_tree import clean_scenario, weak_scenario
    from tests.builders.vm import build_disk

    images = {
        "weak-qcow2": build_disk(weak_scenario(), "simple", "qcow2"),
        "clean-qcow2": build_disk(clean_scenario(), "simple", "qcow2"),
    }
    try:
        images["debian-qcow2"] = debian_qcow2()
    except Exception as exc:  # no mirror: the Debian tests skip, the others run
        DEBIAN_QCOW2_ERROR.append(f"{type(exc).__name__}: {exc}")
    return images


DEBIAN_QCOW2_ERROR: list[str] = []


def debian_qcow2() -> Path:
    """The cached Debian root as a qcow2 (one ext4 filesystem), built once and reused."""
    from imageaudit.example import build_disk as build_fs_disk
    from tests.builders.debian import debian_root
    from tests.builders.vm import cache_dir

    root = debian_root()
    out = cache_dir() / f"{root.name}.qcow2"
    if not out.exists():
        used = sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())
        build_fs_disk(root, out, size_mb=max(256, used * 2 // (1 << 20) + 128))
    return out


# --- the test OpenStack ----------------------------------------------------------------------
# Tests that use the ``openstack_stack`` fixture run last: the services start in the background
# as soon as such tests are collected, while the rest of the suite runs.

OPENSTACK_FIXTURE = "openstack_stack"
_STACK: list[object] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import os

    uses = [i for i in items if OPENSTACK_FIXTURE in getattr(i, "fixturenames", ())]
    if not uses:
        return
    chosen = set(uses)
    items[:] = [i for i in items if i not in chosen] + uses
    if config.option.collectonly or os.geteuid() != 0 or os.environ.get(
            "IMAGEAUDIT_TEST_OPENSTACK"):
        return
    from tests.cloud.openstack_stack import Stack

    stack = Stack()
    stack.start()
    _STACK.append(stack)


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.cloud.openstack_stack import Stack

    for stack in _STACK:
        assert isinstance(stack, Stack)
        stack.stop()
    _STACK.clear()


@pytest.fixture(scope="session")
def openstack_stack() -> object:
    """The running test OpenStack (:class:`tests.cloud.openstack_stack.Stack`)."""
    import os

    if os.geteuid() != 0:
        pytest.skip("the test OpenStack needs root (mount and PID namespaces, chroot)")
    external = os.environ.get("IMAGEAUDIT_TEST_OPENSTACK")
    if external:  # a stack already running (a developer's), given by its clouds.yaml
        from tests.cloud.openstack_stack import RunningStack

        return RunningStack(Path(external))
    if not _STACK:  # collected without the hook having seen it (e.g. a plugin reordered)
        from tests.cloud.openstack_stack import Stack

        stack = Stack()
        stack.start()
        _STACK.append(stack)
    stack = _STACK[0]
    stack.wait()  # type: ignore[attr-defined]
    return stack
