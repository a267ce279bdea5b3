"""Fixtures for the HTTP hook: an ``App`` built by ``daemon.wiring.build``
from a config written to a temporary folder (SQLite, a CalDAV account that
is never contacted), with busy time written through the store as a sync
would, and the hook over it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from daemon.http.app import create_app
from daemon.http.problems import MEDIA_TYPE, PROBLEM_TYPES
from daemon.wiring import App, build
from engine.core.model import ChangeSet, Interval, RemoteEvent
from engine.services.availability import SlotService
from engine.services.status import StatusQuery
from tests.support.sites import migrated_config

# Thursday before the spring-forward change in Berlin (Sunday 2027-03-28):
# the default week of slots crosses it.
NOW = datetime(2027, 3, 25, 7, 0, tzinfo=UTC)

TOKENS = {
    "website": "website-token-from-the-environment",
    "desk": "desk-token-from-a-file",
    "reports": "reports-token-known-by-its-digest",
    "ops": "ops-token-with-admin-only",
}
TOKEN_ENV = "CALPOOL_HTTP_TEST_TOKEN"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CONFIG = f"""\
[daemon]
database = "sqlite:///calpool.db"
timezone = "Europe/Berlin"

[sync]
stale_after = "15m"

[[api.tokens]]
name = "website"
token_env = "{TOKEN_ENV}"
scopes = ["slots"]

[[api.tokens]]
name = "desk"
token_file = "desk.token"
scopes = ["slots", "book"]

[[api.tokens]]
name = "reports"
sha256 = "{digest(TOKENS["reports"])}"
scopes = ["slots"]

[[api.tokens]]
name = "ops"
sha256 = "{digest(TOKENS["ops"])}"
scopes = ["admin"]

[accounts.dav]
provider = "caldav"
url = "https://dav.invalid/dav/"

[calendars.alice]
account = "dav"
id = "alice/"
kind = "person"
timezone = "Europe/Berlin"
working_hours = {{ mon-fri = "09:00-12:00" }}

[calendars.bob]
account = "dav"
id = "bob/"
kind = "person"

[calendars.room-a]
account = "dav"
id = "rooms/a/"
kind = "room"
name = "Room A (4 seats)"
capacity = 4

[calendars.room-b]
account = "dav"
id = "rooms/b/"
kind = "room"

[calendars.room-c]
account = "dav"
id = "rooms/c/"
kind = "room"

[pools.small]
members = ["room-a", "room-b"]

[pools.large]
members = ["room-c"]

[event_types.consult]
title = "Consultation with {{attendee_name}}"
duration = "30m"
owner = "alice"
pools = ["small"]
horizon = "30d"

[event_types.team]
title = "Team meeting"
duration = "1h"
step = "30m"
owner = "alice"
with = ["bob"]
pools = ["small", "large"]
"""


@dataclass
class Site:
    """A built ``App`` and the hook over it."""

    app: App
    api: FastAPI
    client: TestClient
    clock: list[datetime]

    def get(self, url: str, token: str | None = "website", **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {TOKENS.get(token, token)}"
        return self.client.get(url, headers=headers, **kwargs)

    def busy(self, calendar: str, *spans: tuple[str, str], at: datetime | None = None) -> None:
        """Replace ``calendar``'s cached events by ``spans`` (ISO instants),
        recorded as a successful sync at ``at`` (default now)."""
        events = {
            f"ev-{n}": (RemoteEvent(source=f"ev-{n}", uid=f"uid-{n}",
                                    start=datetime.fromisoformat(start),
                                    end=datetime.fromisoformat(end)),)
            for n, (start, end) in enumerate(spans)
        }
        window = Interval(NOW - timedelta(days=1), NOW + timedelta(days=90))
        with self.app.store.unit_of_work() as uow:
            uow.events.apply_changes(calendar, ChangeSet(cursor="c", objects=events, full=True),
                                     window, at or self.clock[0])
            uow.commit()

    def synced(self, *calendars: str, at: datetime | None = None) -> None:
        for calendar in calendars:
            self.busy(calendar, at=at)

    def failed(self, calendar: str, at: datetime | None = None) -> None:
        with self.app.store.unit_of_work() as uow:
            uow.calendars.record_failure(calendar, at or self.clock[0], "503 from the server")
            uow.commit()


MakeSite = Callable[..., Site]


@pytest.fixture
def make_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeSite]:
    """Build a site; ``config`` replaces the config text, ``environ`` the
    environment the tokens are read from."""
    built: list[Site] = []
    monkeypatch.setenv(TOKEN_ENV, TOKENS["website"])

    def make(config: str = CONFIG, environ: Mapping[str, str] | None = None) -> Site:
        folder = tmp_path / f"site-{len(built)}"
        folder.mkdir()
        (folder / "desk.token").write_text(TOKENS["desk"] + "\n", encoding="utf-8")
        settings = migrated_config(folder, config)
        clock = [NOW]
        app = build(settings, clock=lambda: clock[0])
        api = create_app(app, environ=environ)
        site = Site(app, api, TestClient(api, raise_server_exceptions=False), clock)
        built.append(site)
        return site

    yield make
    for site in built:
        site.client.close()
        site.app.close()


@pytest.fixture
def site(make_site: MakeSite) -> Site:
    return make_site()


def assert_problem(response: Any, status: int, type_: str) -> dict[str, Any]:
    """The response is a documented problem document of ``type_``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == MEDIA_TYPE
    document: dict[str, Any] = response.json()
    assert document["type"] == type_
    assert type_ in PROBLEM_TYPES
    assert document["status"] == status
    assert document["title"] == PROBLEM_TYPES[type_].title
    assert isinstance(document["detail"], str) and document["detail"]
    assert response.headers["x-request-id"]
    return document


class Unreachable:
    """A store whose database does not answer (a test double)."""

    def reader(self) -> Any:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    unit_of_work = reader

    def close(self) -> None:
        pass


def unreachable_site(site: Site) -> TestClient:
    store: Any = Unreachable()
    config = site.app.config
    slots = SlotService(store, site.app.cache, calendars=config.calendars, pools=config.pools,
                        event_types=config.event_types, stale_after=config.sync.stale_after)
    status = StatusQuery(store, list(config.calendars), stale_after=config.sync.stale_after)
    api = create_app(replace(site.app, store=store, slots=slots, status=status))
    return TestClient(api, raise_server_exceptions=False)
