"""Fixtures: the results store on SQLite and on a private PostgreSQL (skipped, with the reason,
when PostgreSQL cannot run here)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageaudit.store import ResultsStore
from tests.builders.postgres import (
    PgServer,
    PostgresUnavailable,
    create_database,
    running_postgres,
)

_dbs = itertools.count()


@pytest.fixture(scope="session")
def results_postgres() -> Iterator[PgServer]:
    try:
        with running_postgres() as server:
            yield server
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ResultsStore]:
    """A fresh results store on each back end."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'results.db'}"
    else:
        server: PgServer = request.getfixturevalue("results_postgres")
        url = create_database(server, f"results_{next(_dbs)}")
    with ResultsStore.open(url) as s:
        yield s
