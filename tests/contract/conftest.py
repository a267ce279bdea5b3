"""Fixtures of the connector contract suite.

Each case gets a :class:`Harness`: a connector under test, a fresh calendar
of it, and a :class:`ProviderSide` driver that edits that calendar directly
on the provider (behind the connector's back), the way a person with another
client would.  Cases speak :class:`EventSpec` to the driver, which
translates: the CalDAV driver renders iCalendar, the memory driver builds
memory events.

Parametrization: CalDAV on every server of :data:`CALDAV_SERVERS`, each
with ``sync_method`` ``sync-collection`` and ``etag`` (servers start once per
session on loopback); and the in-memory connector, on a fresh provider per
case.  Cyrus runs in both of its layouts (:class:`~tests.support.cyrus.
Layout`): without its Debian packages those parameters skip naming them
(under ``CI=true`` they fail).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.caldav import CalDAVAccount, CalDAVConnector, RetryPolicy, SyncMethod
from connectors.google import GoogleAccount, GoogleConnector
from connectors.google import RetryPolicy as GoogleRetryPolicy
from connectors.memory import MemoryConnector, MemoryProvider
from engine.ports import CalendarConnector, CalendarRef
from tests.contract.calendar_data import ROOM_MAILBOX, WINDOW, ZONE, EventSpec, When, single
from tests.contract.google_driver import GoogleDriver
from tests.contract.graph_driver import graph_harness, started_fake
from tests.contract.harness import Capability, Harness
from tests.contract.ical_text import MALFORMED_ICS, render
from tests.contract.memory_driver import MemoryDriver
from tests.fakes.google_calendar import GoogleCalendarFake, RoomAnswer
from tests.fakes.graph import GraphFake
from tests.support.caldav_servers import Server, free_port, start_radicale, start_xandikos
from tests.support.cyrus import (
    ContractCalendar,
    CyrusServer,
    Layout,
    cyrus_contract_calendar,
    require_cyrus,
    start_cyrus,
)

FAST = RetryPolicy(attempts=1, initial_wait=0.01, max_wait=0.05)
_names = itertools.count(1)


class CalDAVDriver:
    """Raw HTTP PUT/DELETE of iCalendar text into the collection, one
    ``<uid>.ics`` per event, with ``server``'s credentials; ``account`` is
    calpool's account of the case (for the foreign cursor)."""

    def __init__(
        self,
        server: Server,
        calendar_url: str,
        account: CalDAVAccount,
        *,
        method: SyncMethod,
        forget_tokens: Callable[[], None] | None = None,
        no_cursor_check: str = "",
    ) -> None:
        self._server = server
        self._url = calendar_url
        self._account = account
        self._method = method
        self._forget_tokens = forget_tokens
        self._specs: dict[str, EventSpec] = {}  # what was put, for move()
        self.unsupported: dict[Capability, str] = {
            Capability.PUSH_DELIVERY: "CalDAV has no push channels (the daemon polls)",
            Capability.ROOM_DECLINE: "CalDAV rooms get their copy written; none is invited",
            Capability.INVITATIONS: "calpool relies on no server-side scheduling (RFC 6638)",
        }
        if no_cursor_check:
            self.unsupported[Capability.CURSOR_CHECK] = no_cursor_check
        if method is SyncMethod.ETAG:
            self.unsupported[Capability.EXPIRE_CURSOR] = "an etag cursor carries its own state"
        elif forget_tokens is None:
            # Xandikos' tokens name git commits, which it keeps.
            self.unsupported[Capability.EXPIRE_CURSOR] = (
                f"the suite has no way to make {server.kind} forget its sync tokens"
            )

    def _href(self, name: str) -> str:
        return f"{self._url}{name}.ics"

    def _put_text(self, name: str, ics: str) -> str:
        status, _, body = self._server.request(
            "PUT", self._href(name), ics.encode(), {"Content-Type": "text/calendar"}
        )
        assert status in (201, 204), f"PUT {name}: {status} {body[:300]!r}"
        return self._href(name).removeprefix(self._server.url.rstrip("/"))

    def put(self, event: EventSpec) -> str:
        self._specs[event.uid] = event
        return self._put_text(event.uid, render(event))

    def move(self, uid: str, start: When, end: When) -> str:
        spec = self._specs[uid]
        assert spec.recurrence is None, f"{uid} is a series; put it anew instead"
        return self.put(replace(spec, start=start, end=end))

    def delete(self, uid: str) -> None:
        status, _, _ = self._server.request("DELETE", self._href(uid))
        assert status in (200, 204), f"DELETE {uid}: {status}"

    def put_unreadable(self, uid: str) -> str:
        return self._put_text(uid, MALFORMED_ICS.format(uid=uid))

    def expire_cursor(self) -> None:
        assert self._forget_tokens is not None, "unsupported: the case should have skipped"
        self._forget_tokens()

    def decline_as_room(self, source: str, email: str) -> None:
        raise AssertionError("unsupported: the case should have skipped")

    def pushes(self, address: str) -> list[tuple[Mapping[str, str], bytes]]:
        return []  # CalDAV delivers nothing

    def foreign_cursor(self) -> str:
        other = self._server.make_calendar(f"other-{next(_names)}")
        # Content of its own, or an empty calendar's token could equal ours
        # (Xandikos' tokens name git trees, which are content-addressed).
        ics = MALFORMED_ICS.replace("Nowhere/Atlantis", "Europe/Berlin").format(uid=other)
        self._server.request(
            "PUT", f"{other}own.ics", ics.encode(), {"Content-Type": "text/calendar"}
        )
        # calpool's account of the case (its login, on Cyrus), asked for a token.
        connector = CalDAVConnector(replace(self._account, sync_method=SyncMethod.SYNC_COLLECTION))
        # Where raw requests went; on Cyrus' shared layout that is the
        # shared location in calpool's home, which calpool may name too.
        calendar = CalendarRef(other.removeprefix(self._account.url), ZONE)
        cursor = connector.list_window(calendar, WINDOW).cursor
        connector.close()
        return cursor


def radicale_forgets_tokens(server: Server, calendar_url: str) -> Callable[[], None]:
    """Radicale keeps one file per issued sync token in the collection's
    ``.Radicale.cache/sync-token`` and forgets those older than
    ``max_sync_token_age``; removing the folder forgets them all now."""

    def forget() -> None:
        # start_radicale keeps its storage beside its log (tests/support/caldav_servers.py).
        collections = server.log_path.parent / "collections" / "collection-root"
        path = calendar_url.removeprefix(server.url).strip("/")
        tokens = collections / path / ".Radicale.cache" / "sync-token"
        assert tokens.is_dir(), f"no sync tokens at {tokens}"
        shutil.rmtree(tokens)

    return forget


def cyrus_forgets_tokens(case: ContractCalendar) -> Callable[[], None]:
    """Cyrus refuses a sync token older than the last deletion it purged
    from the mailbox: delete an object of its own, then purge."""

    def forget() -> None:
        href = f"{case.url}forget-tokens.ics"
        ics = render(single("forget-tokens")).encode()
        status, _, _ = case.driver.request("PUT", href, ics, {"Content-Type": "text/calendar"})
        assert status in (201, 204), f"PUT {href}: {status}"
        status, _, _ = case.driver.request("DELETE", href)
        assert status in (200, 204), f"DELETE {href}: {status}"
        case.driver.purge_deleted(case.owner)

    return forget


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


@pytest.fixture(scope="session")
def cyrus_one_owner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CyrusServer]:
    require_cyrus()
    with start_cyrus(tmp_path_factory.mktemp("cyrus-one-owner"), layout=Layout.ONE_OWNER) as server:
        yield server


@pytest.fixture(scope="session")
def cyrus_shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CyrusServer]:
    require_cyrus()
    with start_cyrus(tmp_path_factory.mktemp("cyrus-shared"), layout=Layout.SHARED) as server:
        yield server


# The CalDAV servers of the suite: each names its session fixture above.
CALDAV_SERVERS = ["radicale", "xandikos", "cyrus_one_owner", "cyrus_shared"]

CALDAV_VARIANTS = [
    pytest.param((server, method), id=f"{server}-{method.value}")
    for server in CALDAV_SERVERS
    for method in (SyncMethod.SYNC_COLLECTION, SyncMethod.ETAG)
]
MEMORY = "memory"
GOOGLE = "google"
MICROSOFT = "microsoft"


@pytest.fixture(scope="session")
def graph_fake() -> Iterator[GraphFake]:
    """The Microsoft Graph fake of the session; each case gets a mailbox of its own."""
    fake = started_fake(ROOM_MAILBOX)
    yield fake
    fake.stop()


@pytest.fixture(params=[*CALDAV_VARIANTS, pytest.param((MEMORY, None), id=MEMORY),
                        pytest.param((GOOGLE, None), id=GOOGLE),
                        pytest.param((MICROSOFT, None), id=MICROSOFT)])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    server_name, method = request.param
    if server_name == MEMORY:
        yield memory_harness()
        return
    if server_name == GOOGLE:
        yield from google_harness(request.getfixturevalue("google_fake"))
        return
    if server_name == MICROSOFT:
        graph_case = graph_harness(request.getfixturevalue("graph_fake"), zone=ZONE)
        yield graph_case
        close = getattr(graph_case.connector, "close", None)
        if callable(close):
            close()
        return
    server: Server = request.getfixturevalue(server_name)
    name = f"cal-{next(_names)}"
    unauthorized: Callable[[], CalendarConnector] | None = None
    forget_tokens: Callable[[], None] | None = None
    no_cursor_check = ""
    driver_server = server
    if isinstance(server, CyrusServer):
        # One owner: a login of the case's own (the suite reuses UIDs across
        # cases, and Cyrus keeps a UID in one calendar of a login); shared:
        # a user of its own whose calendar calpool names by the owner's path.
        case = cyrus_contract_calendar(server, name, sync_method=method, timeout=10, retry=FAST)
        calendar_url, calendar_id, account = case.url, case.calendar_id, case.account
        driver_server = case.driver
        forget_tokens = cyrus_forgets_tokens(case)
        if server.layout is Layout.SHARED:
            # Measured: the depth-1 PROPFIND of the login's home lists only
            # its own calendars, not those shared with it (reached below it
            # as <owner>.<name>/ all the same), so none is found current.
            no_cursor_check = "Cyrus lists no calendar shared with the login below its home"

        def refused_by_cyrus() -> CalendarConnector:
            # The case's own login and calendar, with a password Cyrus refuses.
            return CalDAVConnector(replace(account, password="wrong-password"))

        unauthorized = refused_by_cyrus
    else:
        calendar_url = server.make_calendar(name)
        calendar_id = f"{name}/"
        account = CalDAVAccount(url=server.home, sync_method=method, timeout=10, retry=FAST)
    if server_name == "radicale":
        forget_tokens = radicale_forgets_tokens(server, calendar_url)

        def refused_by_radicale() -> CalendarConnector:
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

        unauthorized = refused_by_radicale
    connector = CalDAVConnector(account)

    def unreachable() -> CalendarConnector:
        dead = f"http://127.0.0.1:{free_port()}/dav/"
        return CalDAVConnector(CalDAVAccount(url=dead, sync_method=method, timeout=2, retry=FAST))

    yield Harness(
        connector=connector,
        calendar=CalendarRef(calendar_id, ZONE),
        driver=CalDAVDriver(
            driver_server, calendar_url, account, method=method, forget_tokens=forget_tokens,
            no_cursor_check=no_cursor_check,
        ),
        label=f"{server_name}-{method.value}",
        unauthorized=unauthorized,
        unreachable=unreachable,
        now=lambda: datetime.now(UTC),
    )
    connector.close()


def memory_harness() -> Harness:
    """The in-memory connector on a fresh provider of its own."""
    provider = MemoryProvider(accounts=("calpool",))
    calendar = CalendarRef(f"cal-{next(_names)}", ZONE)
    provider.add_calendar(calendar.id)

    def unreachable() -> CalendarConnector:
        down = MemoryProvider()
        down.reachable = False
        return MemoryConnector(down)

    return Harness(
        connector=MemoryConnector(provider),
        calendar=calendar,
        driver=MemoryDriver(provider, calendar),
        label=MEMORY,
        # An account the provider does not know: its credentials are refused.
        unauthorized=lambda: MemoryConnector(provider, account="intruder"),
        unreachable=unreachable,
        now=lambda: datetime.now(UTC),
    )


@pytest.fixture(scope="session")
def google_fake() -> Iterator[GoogleCalendarFake]:
    with GoogleCalendarFake() as fake:
        fake.delegate(GOOGLE_ADMIN)
        # Silent: it answers only when a case makes it (Capability.ROOM_DECLINE).
        fake.add_room(ROOM_MAILBOX, name="Spree", answer=RoomAnswer.SILENT)
        yield fake


GOOGLE_ADMIN = "calpool-admin@acme.test"
GOOGLE_FAST = GoogleRetryPolicy(attempts=1, initial_wait=0.01, max_wait=0.05)


def google_harness(fake: GoogleCalendarFake) -> Iterator[Harness]:
    """The Google connector on a fresh calendar of the fake, acting as the
    calendar's owner (its ``subject``); the account's subject reads
    free/busy."""
    owner = f"owner-{next(_names)}@acme.test"
    fake.add_calendar(owner, timezone=ZONE)
    fake.delegate(owner)
    calendar = CalendarRef(owner, ZONE, owner)
    info = fake.service_account_info(client_email="calpool@acme-proj.iam.gserviceaccount.com")
    account = GoogleAccount(service_account_info=info, subject=GOOGLE_ADMIN,
                            api_url=fake.api_url, timeout=10, retry=GOOGLE_FAST)
    connector = GoogleConnector(account)

    def refused() -> CalendarConnector:
        # The same service account signing with a key Google does not hold.
        return GoogleConnector(replace(account, service_account_info={
            **info, "private_key": _other_private_key()}))

    def unreachable() -> CalendarConnector:
        dead = f"http://127.0.0.1:{free_port()}/"
        return GoogleConnector(replace(account, api_url=dead, timeout=2, service_account_info={
            **info, "token_uri": f"{dead}token"}))

    yield Harness(
        connector=connector,
        calendar=calendar,
        driver=GoogleDriver(fake, calendar, connector),
        label=GOOGLE,
        unauthorized=refused,
        unreachable=unreachable,
        now=fake.clock,
    )
    connector.close()


def _other_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
