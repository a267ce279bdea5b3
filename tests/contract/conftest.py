"""Fixtures of the connector contract suite.

Each case gets a :class:`Harness`: a connector under test, a fresh calendar
of it, and a :class:`ServerDriver` that edits that calendar directly on the
provider (behind the connector's back), the way a person with another client
would.  Cases speak iCalendar to the driver; a driver of a provider that
stores JSON (the Google and Graph fakes) translates.

Parametrization: CalDAV on Radicale and on Xandikos, each with
``sync_method`` ``sync-collection`` and ``etag``.  Servers start once per
session on loopback.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.caldav import CalDAVAccount, CalDAVConnector, RetryPolicy, SyncMethod
from engine.ports import CalendarConnector, CalendarRef
from tests.contract.calendar_data import MALFORMED_ICS, WINDOW, ZONE
from tests.contract.harness import Harness
from tests.support.caldav_servers import Server, free_port, start_radicale, start_xandikos

FAST = RetryPolicy(attempts=1, initial_wait=0.01, max_wait=0.05)
_names = itertools.count(1)


class CalDAVDriver:
    """Raw HTTP PUT/DELETE of iCalendar text into the collection."""

    def __init__(self, server: Server, calendar_url: str, account_url: str) -> None:
        self._server = server
        self._url = calendar_url
        self._account_url = account_url

    def _href(self, name: str) -> str:
        return f"{self._url}{name}.ics"

    def put(self, name: str, ics: str) -> str:
        status, _, body = self._server.request(
            "PUT", self._href(name), ics.encode(), {"Content-Type": "text/calendar"}
        )
        assert status in (201, 204), f"PUT {name}: {status} {body[:300]!r}"
        return self._href(name).removeprefix(self._server.url.rstrip("/"))

    def delete(self, name: str) -> None:
        status, _, _ = self._server.request("DELETE", self._href(name))
        assert status in (200, 204), f"DELETE {name}: {status}"

    def put_malformed(self, name: str) -> str:
        return self.put(name, MALFORMED_ICS.format(uid=name))

    def foreign_cursor(self) -> str:
        other = self._server.make_calendar(f"other-{next(_names)}")
        # Content of its own, or an empty calendar's token could equal ours
        # (Xandikos' tokens name git trees, which are content-addressed).
        ics = MALFORMED_ICS.replace("Nowhere/Atlantis", "Europe/Berlin").format(uid=other)
        self._server.request(
            "PUT", f"{other}own.ics", ics.encode(), {"Content-Type": "text/calendar"}
        )
        connector = CalDAVConnector(
            CalDAVAccount(url=self._account_url, sync_method=SyncMethod.SYNC_COLLECTION)
        )
        calendar = CalendarRef(other.removeprefix(self._account_url), ZONE)
        cursor = connector.list_window(calendar, WINDOW).cursor
        connector.close()
        return cursor


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with start_radicale(tmp_path_factory.mktemp("radicale")) as server:
        yield server


@pytest.fixture(scope="session")
def radicale_with_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("radicale-auth")
    with start_radicale(tmp, users={"calpool": "right-password"}) as server:
        yield server


@pytest.fixture(scope="session")
def xandikos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with start_xandikos(tmp_path_factory.mktemp("xandikos")) as server:
        yield server


CALDAV_VARIANTS = [
    pytest.param((server, method), id=f"{server}-{method.value}")
    for server in ("radicale", "xandikos")
    for method in (SyncMethod.SYNC_COLLECTION, SyncMethod.ETAG)
]


@pytest.fixture(params=CALDAV_VARIANTS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    server_name, method = request.param
    server: Server = request.getfixturevalue(server_name)
    name = f"cal-{next(_names)}"
    calendar_url = server.make_calendar(name)
    account = CalDAVAccount(url=server.home, sync_method=method, timeout=10, retry=FAST)
    connector = CalDAVConnector(account)

    def unauthorized() -> CalendarConnector:
        auth_server: Server = request.getfixturevalue("radicale_with_auth")
        auth_server.make_calendar(name)
        return CalDAVConnector(
            CalDAVAccount(
                url=auth_server.home,
                username="calpool",
                password="wrong-password",
                sync_method=method,
                retry=FAST,
            )
        )

    def unreachable() -> CalendarConnector:
        dead = f"http://127.0.0.1:{free_port()}/dav/"
        return CalDAVConnector(CalDAVAccount(url=dead, sync_method=method, timeout=2, retry=FAST))

    yield Harness(
        connector=connector,
        calendar=CalendarRef(f"{name}/", ZONE),
        driver=CalDAVDriver(server, calendar_url, server.home),
        label=f"{server_name}-{method.value}",
        unauthorized=unauthorized if server_name == "radicale" else None,
        unreachable=unreachable,
    )
    connector.close()
