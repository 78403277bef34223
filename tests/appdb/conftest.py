"""Fixtures: a private PostgreSQL for the session, a PKI, catalogues on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrations.appdb.catalogue import Catalogue
from integrations.appdb.server import open_catalogue
from tests.builders.pki import Pki, make_pki
from tests.builders.postgres import PgServer, PostgresUnavailable, create_database, running_postgres

_dbs = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgServer]:
    """One PostgreSQL server for the whole session (skips with the reason when it cannot run)."""
    try:
        with running_postgres() as server:
            yield server
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(params=["sqlite", "postgresql"])
def catalogue(request: pytest.FixtureRequest, tmp_path: Path) -> Catalogue:
    """A fresh, migrated catalogue on each backend."""
    if request.param == "sqlite":
        return open_catalogue(f"sqlite:///{tmp_path / 'catalogue.db'}")
    server: PgServer = request.getfixturevalue("postgres")
    return open_catalogue(create_database(server, f"catalogue_{next(_dbs)}"))


@pytest.fixture
def sqlite_catalogue(tmp_path: Path) -> Catalogue:
    return open_catalogue(f"sqlite:///{tmp_path / 'catalogue.db'}")
