"""Fixtures for the services: an in-memory calendar provider (fresh per
test; see :mod:`tests.engine.services.memory_calendars`) and a migrated
SQLite store.

The Radicale helpers below (``fresh_calendar``, ``event_ics``,
``put_event``, ``delete_event`` on a :class:`Server`) no longer serve the
service tests; they stay because ``tests/daemon`` imports them from here.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.memory import MemoryProvider
from engine.store import Store, migrate
from tests.support.caldav_servers import Server

_names = itertools.count(1)


@pytest.fixture
def provider() -> MemoryProvider:
    return MemoryProvider()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head, for each test to copy: running the
    migrations costs more than most service tests themselves."""
    path = tmp_path_factory.mktemp("services-schema") / "calpool.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def store(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Store]:
    path = tmp_path / "calpool.db"
    # The migration's engine is disposed, so the file alone is the database.
    shutil.copyfile(migrated_sqlite, path)
    with Store.open(f"sqlite:///{path}") as opened:
        yield opened


def fresh_calendar(server: Server, stem: str) -> str:
    """A new empty calendar on ``server``; returns its id relative to ``home``."""
    name = f"{stem}-{next(_names)}"
    server.make_calendar(name)
    return f"{name}/"


def event_ics(uid: str, start: datetime, end: datetime, *, extra: str = "") -> str:
    """A minimal VEVENT in UTC; ``extra`` lines go inside the VEVENT."""

    def stamp(value: datetime) -> str:
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    body = f"{extra.strip()}\n" if extra.strip() else ""
    return (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//calpool tests//EN\nBEGIN:VEVENT\n"
        f"UID:{uid}\nDTSTAMP:20260101T000000Z\nDTSTART:{stamp(start)}\nDTEND:{stamp(end)}\n"
        f"SUMMARY:{uid}\n{body}END:VEVENT\nEND:VCALENDAR\n"
    ).replace("\n", "\r\n")


def put_event(server: Server, calendar_id: str, name: str, ics: str) -> None:
    status, _, body = server.request(
        "PUT", f"{server.home}{calendar_id}{name}.ics", ics.encode(),
        {"Content-Type": "text/calendar"},
    )
    assert status in (201, 204), (status, body[:200])


def delete_event(server: Server, calendar_id: str, name: str) -> None:
    status, _, _ = server.request("DELETE", f"{server.home}{calendar_id}{name}.ics")
    assert status in (200, 204), status
