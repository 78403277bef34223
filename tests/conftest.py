"""Shared pytest options and fixtures."""

from __future__ import annotations

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
    before = {n: sha256_file(p) for n, p in paths.items()}
    views = open_vms(list(paths.values()))
    try:
        yield {n: (v, paths[n], before[n]) for n, v in zip(paths, views, strict=True)}
    finally:
        for v in views:
            v.close()
