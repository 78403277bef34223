"""Fixtures of the batch tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.batch.registry_server import Registry, RegistryUnavailable, registry_server


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A real registry (distribution 2.8.2) on 127.0.0.1 for the session. One that cannot run
    fails the tests that need it, saying how to install it: it is never skipped."""
    failure = None
    try:
        with registry_server(tmp_path_factory.mktemp("registry")) as registry:
            yield registry
    except RegistryUnavailable as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
