"""Fixtures for the services: a Radicale on loopback, a migrated SQLite store."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.store import Store, migrate
from tests.support.caldav_servers import Server, start_radicale

_names = itertools.count(1)


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_radicale(tmp_path_factory.mktemp("services-radicale"))
    yield server
    server.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'calpool.db'}"
    migrate.upgrade(url)
    with Store.open(url) as opened:
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
