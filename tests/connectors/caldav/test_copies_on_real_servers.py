"""Booking copies on real servers (issue 20): Radicale, Xandikos and Cyrus
in both layouts (one owner for all calendars; one owner per calendar shared
to calpool's login), and sync in every mode on each.

What Cyrus made visible: one UID may live in one calendar of a login only,
a shared calendar named by its owner's path answers 301, a PUT with an
ORGANIZER answers without an ETag, and a 404 comes as an HTML page that the
caldav library used to log with a traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from connectors.caldav import CalDAVAccount, CalDAVConnector, RetryPolicy, SyncMethod
from connectors.caldav.account import booking_uid, copy_uid
from engine.core.model import Attendee, Interval
from engine.errors import AuthFailed, Conflict, NotFound
from engine.ports import CalendarRef, EventDraft
from tests.support.caldav_servers import Server, start_radicale, start_xandikos
from tests.support.cyrus import CyrusServer, Layout, require_cyrus, start_cyrus

WINDOW = Interval(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
START = datetime(2027, 3, 2, 9, tzinfo=UTC)
FAST = RetryPolicy(attempts=1)
ZONE = "Europe/Berlin"
CALENDAR = {"Content-Type": "text/calendar; charset=utf-8"}
_names = count(1)

SERVERS = ["radicale", "xandikos", "cyrus-one-owner", "cyrus-shared"]


@dataclass
class Place:
    """A server as these tests use it: fresh calendars, and calpool's
    account and calendar ids for them."""

    server: Server
    make: Callable[[str], str]  # name → URL raw requests work at
    calendar_id: Callable[[str], str]
    account: Callable[..., CalDAVAccount]

    def calendar(self, stem: str) -> tuple[str, CalendarRef]:
        name = f"{stem}-{next(_names)}"
        url = self.make(name)
        return url, CalendarRef(self.calendar_id(name), ZONE)

    def connector(self, **settings: object) -> CalDAVConnector:
        return CalDAVConnector(self.account(retry=FAST, **settings))


def _plain(server: Server) -> Place:
    return Place(
        server,
        server.make_calendar,
        lambda name: f"{name}/",
        lambda **settings: CalDAVAccount(url=server.home, **settings),
    )


def _cyrus(server: CyrusServer) -> Place:
    return Place(server, server.make_calendar, server.calendar_id, server.account)


@pytest.fixture(scope="module", params=SERVERS)
def place(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Place]:
    kind: str = request.param
    tmp = tmp_path_factory.mktemp(kind)
    if kind.startswith("cyrus"):
        require_cyrus()
        layout = Layout.ONE_OWNER if kind == "cyrus-one-owner" else Layout.SHARED
        with start_cyrus(tmp, layout=layout) as cyrus:
            yield _cyrus(cyrus)
        return
    start = start_radicale if kind == "radicale" else start_xandikos
    with start(tmp) as server:
        yield _plain(server)


def draft(
    booking_id: str, *, organizer_copy: bool, sequence: int = 0, hours: int = 0
) -> EventDraft:
    return EventDraft(
        booking_id=booking_id,
        title="Panel",
        start=START + timedelta(hours=hours),
        end=START + timedelta(hours=hours + 1),
        location="Room A",
        organizer=Attendee("Alice", "alice@example.org", calendar="alice"),
        attendees=(Attendee("Customer", "c@example.org"),),
        rooms=(Attendee("Room A", "", calendar="room a"),),
        sequence=sequence,
        organizer_copy=organizer_copy,
    )


def raw_uids(place: Place, url: str) -> list[str]:
    """The UIDs in a calendar by a raw calendar-query REPORT."""
    query = (
        b'<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        b'<d:prop><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR">'
        b'<c:comp-filter name="VEVENT"/></c:comp-filter></c:filter></c:calendar-query>'
    )
    status, _, body = place.server.request(
        "REPORT", url, query, {"Depth": "1", "Content-Type": "application/xml"}
    )
    assert status == 207, (status, body[:300])
    return sorted(re.findall(r"^UID:(\S+?)\r?$", body.decode().replace("&#13;", ""), re.M))


def old_scheme_ics(booking_id: str) -> bytes:
    """A copy as calpool wrote it before issue 20: the owner's UID in
    every calendar."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calpool//calpool//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{booking_uid(booking_id)}\r\nDTSTAMP:20270101T000000Z\r\n"
        "DTSTART:20270302T090000Z\r\nDTEND:20270302T100000Z\r\nSUMMARY:Panel\r\n"
        "SEQUENCE:0\r\nORGANIZER;CN=Alice:mailto:alice@example.org\r\n"
        "ATTENDEE;CN=Room A;CUTYPE=RESOURCE;ROLE=NON-PARTICIPANT;PARTSTAT=ACCEPTED:"
        "urn:calpool:Room A\r\n"
        f"X-CALPOOL-BOOKING:{booking_id}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


@pytest.mark.parametrize("method", list(SyncMethod), ids=lambda m: m.value)
def test_sync_follows_changes_in_every_mode(place: Place, method: SyncMethod) -> None:
    url, ref = place.calendar("sync")
    # UIDs of this calendar only: Cyrus refuses a UID another calendar of
    # the login holds, and every case here makes a calendar of its own.
    first, second = f"a-{ref.id.strip('/').replace('/', '-')}", f"b-{next(_names)}"

    def put(name: str, uid: str) -> None:
        ics = old_scheme_ics("x").replace(b"X-CALPOOL-BOOKING:x\r\n", b"")
        ics = ics.replace(booking_uid("x").encode(), uid.encode())
        status, _, body = place.server.request("PUT", f"{url}{name}.ics", ics, CALENDAR)
        assert status == 201, body

    put("a", first)
    connector = place.connector(sync_method=method)
    listing = connector.list_window(ref, WINDOW)
    assert [e.uid for events in listing.objects.values() for e in events] == [first]
    assert listing.cursor.startswith("et1:" if method is SyncMethod.ETAG else "sc2:")

    put("b", second)
    assert place.server.request("DELETE", f"{url}a.ics")[0] in (200, 204)
    changes = connector.changes_since(ref, listing.cursor, WINDOW)
    seen = {
        href.rsplit("/", 1)[1]: [e.uid for e in events] for href, events in changes.objects.items()
    }
    assert seen == {"a.ics": [], "b.ics": [second]}
    connector.close()


def test_each_copy_gets_its_own_uid_and_every_copy_its_booking(place: Place) -> None:
    owner_url, owner = place.calendar("alice")
    room_url, room = place.calendar("room")
    connector = place.connector()

    written_owner = connector.create_event(owner, draft("b1", organizer_copy=True))
    written_room = connector.create_event(room, draft("b1", organizer_copy=False))
    # A retry (a crash after the write) finds the earlier write, no second event.
    again = connector.create_event(room, draft("b1", organizer_copy=False))

    assert written_owner.uid == booking_uid("b1")
    assert written_room.uid == copy_uid("b1", room.id) != written_owner.uid
    assert again == written_room
    assert raw_uids(place, owner_url) == [booking_uid("b1")]
    assert raw_uids(place, room_url) == [copy_uid("b1", room.id)]
    for ref in (owner, room):
        [events] = connector.list_window(ref, WINDOW).objects.values()
        assert [e.booking_id for e in events] == ["b1"]
    connector.close()


def test_moving_to_another_room_logs_no_traceback(
    place: Place, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression (issue 20): the update that finds nothing in the new room
    (If-Match 412), and a GET answered by an HTML 404, logged caldav's
    "Expected some valid XML" with an lxml traceback."""
    _, room = place.calendar("new-room")
    connector = place.connector()
    caplog.set_level(logging.DEBUG)
    moved = draft("b2", organizer_copy=False, sequence=1)
    with pytest.raises(NotFound):
        connector.update_event(room, moved)
    with pytest.raises(NotFound):
        connector.update_event(room, moved, etag='"an-etag-of-long-ago"')
    written = connector.create_event(room, moved)
    assert written.uid == copy_uid("b2", room.id)
    noisy = [r for r in caplog.records if r.exc_info or "Expected some valid XML" in r.getMessage()]
    assert noisy == []
    connector.close()


def test_a_copy_written_the_old_way_is_recognised_moved_and_cancelled(place: Place) -> None:
    """Upgrade (issue 20): before, every copy had the owner's UID.  Such a
    copy is still calpool's in sync, a move keeps its UID (Cyrus and
    Radicale refuse a PUT that changes the UID at a href), a cancel
    removes it."""
    room_url, room = place.calendar("old-room")
    status, _, body = place.server.request(
        "PUT", f"{room_url}calpool-b3.ics", old_scheme_ics("b3"), CALENDAR
    )
    assert status == 201, body
    connector = place.connector()

    [events] = connector.list_window(room, WINDOW).objects.values()
    assert [e.booking_id for e in events] == ["b3"]
    moved = connector.update_event(room, draft("b3", organizer_copy=False, sequence=1, hours=2))
    assert raw_uids(place, room_url) == [moved.uid]
    [events] = connector.list_window(room, WINDOW).objects.values()
    assert [(e.booking_id, e.start) for e in events] == [("b3", START + timedelta(hours=2))]

    connector.delete_event(room, "b3")
    assert raw_uids(place, room_url) == []
    assert connector.list_window(room, WINDOW).objects == {}
    connector.close()


def test_one_uid_twice_in_a_login_is_a_conflict_not_an_auth_failure(place: Place) -> None:
    """Regression (issue 20): Cyrus's 403 unique-scheduling-object-resource
    surfaced as AuthorizationError → AuthFailed."""
    if place.server.kind != "cyrus" or place.server.layout is not Layout.ONE_OWNER:  # type: ignore[attr-defined]
        pytest.skip("only Cyrus refuses one UID in two calendars, and only of one login")
    _, first = place.calendar("first")
    _, second = place.calendar("second")
    connector = place.connector()
    connector.create_event(first, draft("b4", organizer_copy=True))
    with pytest.raises(Conflict, match=r"C:unique-scheduling-object-resource"):
        connector.create_event(second, draft("b4", organizer_copy=True))
    connector.close()


def test_a_put_without_etag_costs_one_counted_get(place: Place) -> None:
    _, owner = place.calendar("etagless")
    connector = place.connector()
    written = connector.create_event(owner, draft("b5", organizer_copy=True))
    assert written.etag
    # Cyrus answers a PUT with an ORGANIZER with a Schedule-Tag only.
    expected = 1 if place.server.kind == "cyrus" else 0
    assert connector.etag_reads_after_put == expected
    connector.close()


def test_a_fresh_connector_writes_to_a_redirecting_calendar_where_it_lives(place: Place) -> None:
    """Regression (issue 20): Cyrus answers the owner's path of a shared
    calendar with a 301; a PUT there is a bare 403."""
    url, ref = place.calendar("fresh")
    connector = place.connector()  # has not listed the calendar: nothing learnt yet
    written = connector.create_event(ref, draft("b6", organizer_copy=False))
    assert written.source.startswith(url.removeprefix(place.server.url.rstrip("/")))
    assert raw_uids(place, url) == [copy_uid("b6", ref.id)]
    fresh = place.connector()
    fresh.delete_event(ref, "b6")
    assert raw_uids(place, url) == []
    connector.close()
    fresh.close()


def test_real_authorization_failures_stay_auth_failed_on_cyrus(place: Place) -> None:
    """Without a precondition body a 401/403 is about the login; with
    D:need-privileges (a calendar not shared to calpool) too.  Errors about
    a redirected calendar name both URLs."""
    if place.server.kind != "cyrus":
        pytest.skip("Radicale's and Xandikos' suites here run without authentication")
    _, ref = place.calendar("guarded")
    wrong = CalDAVConnector(
        CalDAVAccount(url=place.server.home, username="calpool", password="wrong", retry=FAST)
    )
    with pytest.raises(AuthFailed):
        wrong.list_window(ref, WINDOW)
    cyrus: CyrusServer = place.server  # type: ignore[assignment]
    if cyrus.layout is Layout.SHARED:
        cyrus.add_owner("not-shared")
        private = CalendarRef(cyrus.calendar_id("not-shared"), ZONE)
        connector = place.connector()
        with pytest.raises(AuthFailed, match="need-privileges") as caught:
            connector.create_event(private, draft("b7", organizer_copy=False))
        assert "/user/not-shared/Default/" in str(caught.value)
        assert "/user/calpool/not-shared.Default/" in str(caught.value)
        connector.close()
    wrong.close()
