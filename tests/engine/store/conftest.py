"""The store suite runs every test once on SQLite and once on PostgreSQL.

Each test gets a fresh database: on SQLite a copy of a file migrated once per
session, on PostgreSQL a clone (``CREATE DATABASE … TEMPLATE``) of a database
migrated once per session.  PostgreSQL comes from ``tests/support/postgres.py``:
missing binaries skip those tests locally and fail them in CI.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.store import Store, migrate
from tests.support.postgres import (  # noqa: F401 - fixtures used by name
    PostgresServer,
    database_name,
    postgres_server,
)

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "calpool.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template(request: pytest.FixtureRequest) -> str:
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database("calpool_template")
    migrate.upgrade(url)
    return database_name(url)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An unmigrated database of the backend under test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(database_name(url))


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database at the head revision, empty of data."""
    if backend == "sqlite":
        path = tmp_path / "calpool.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database(template=request.getfixturevalue("postgres_template"))
    yield url
    server.drop_database(database_name(url))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    yield opened
    opened.close()


@pytest.fixture
def open_store(db_url: str) -> Iterator[Callable[[], Store]]:
    """Open further stores on the same database (another process's view)."""
    opened: list[Store] = []

    def factory() -> Store:
        opened.append(Store.open(db_url))
        return opened[-1]

    yield factory
    for each in opened:
        each.close()
