"""The store suite runs every test once on SQLite and once on PostgreSQL.

Each test gets an empty database at the head revision: on SQLite a copy of a
file migrated once per session; on PostgreSQL a shared database emptied with
TRUNCATE (``store``), or, for tests that change the schema, a clone of a
database migrated once per session (``db_url``).  PostgreSQL comes from
``tests/support/postgres.py``: missing binaries skip those tests locally and
fail them in CI.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.store import Store, migrate
from engine.store.schema import metadata
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
    """A database of its own at the head revision, empty of data (the test
    may change its schema)."""
    if backend == "sqlite":
        path = tmp_path / "calpool.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database(template=request.getfixturevalue("postgres_template"))
    yield url
    server.drop_database(database_name(url))


@pytest.fixture(scope="session")
def postgres_shared(request: pytest.FixtureRequest) -> str:
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(
        "calpool_shared", template=request.getfixturevalue("postgres_template")
    )


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database at the head revision with no rows, for tests that leave the
    schema alone: on PostgreSQL one shared database emptied before each test
    (a TRUNCATE is far cheaper than cloning a database)."""
    if backend == "sqlite":
        path = tmp_path / "calpool.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_shared")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    names = ", ".join(table.name for table in metadata.sorted_tables)
    with server.connect(database_name(url)) as connection:
        connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE".encode())
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url)
    yield opened
    opened.close()


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], Store]]:
    """Open further stores on the same database (another process's view)."""
    opened: list[Store] = []

    def factory() -> Store:
        opened.append(Store.open(store_url))
        return opened[-1]

    yield factory
    for each in opened:
        each.close()
