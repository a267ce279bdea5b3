"""CalDAV connector features beyond the contract, against real servers:
TLS with an account CA file, ``auto`` sync, the server's free-busy report."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme

from connectors.caldav import CalDAVAccount, CalDAVConnector, RetryPolicy, SyncMethod
from engine.core.model import Interval, RemoteEvent
from engine.errors import PermanentError
from engine.ports import CalendarRef
from tests.support.caldav_servers import Server, start_radicale, start_xandikos

WINDOW = Interval(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
FAST = RetryPolicy(attempts=1)


def ics(uid: str, start: str, end: str) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


@pytest.fixture(scope="module")
def tls_radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp / "chain.pem"))
    cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    with start_radicale(tmp, tls=(tmp / "chain.pem", tmp / "key.pem", tmp / "ca.pem")) as server:
        yield server


@pytest.fixture(scope="module", params=["radicale", "xandikos"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    start = start_radicale if request.param == "radicale" else start_xandikos
    with start(tmp_path_factory.mktemp(request.param)) as running:
        yield running


def test_ca_file_is_honoured(tls_radicale: Server) -> None:
    tls_radicale.make_calendar("tls")
    status, _, _ = tls_radicale.request(
        "PUT", f"{tls_radicale.home}tls/a.ics", ics("a", "20270302T100000Z", "20270302T110000Z")
    )
    assert status == 201
    calendar = CalendarRef("tls/")

    trusted = CalDAVConnector(
        CalDAVAccount(url=tls_radicale.home, ca_file=tls_radicale.ca_file, retry=FAST)
    )
    assert len(trusted.list_window(calendar, WINDOW).objects) == 1

    untrusted = CalDAVConnector(CalDAVAccount(url=tls_radicale.home, retry=FAST))
    with pytest.raises(PermanentError, match=r"SSL|certificate"):
        untrusted.list_window(calendar, WINDOW)


def test_auto_uses_sync_collection_where_offered(server: Server) -> None:
    server.make_calendar("auto")
    connector = CalDAVConnector(CalDAVAccount(url=server.home, sync_method=SyncMethod.AUTO))
    cursor = connector.list_window(CalendarRef("auto/"), WINDOW).cursor
    assert cursor.startswith("sc2:")


def test_server_free_busy_report_agrees_on_plain_events(server: Server) -> None:
    url = server.make_calendar("report")
    server.request("PUT", f"{url}a.ics", ics("a", "20270302T100000Z", "20270302T110000Z"))
    server.request("PUT", f"{url}b.ics", ics("b", "20270302T103000Z", "20270302T120000Z"))
    server.request("PUT", f"{url}c.ics", ics("c", "20270305T080000Z", "20270305T083000Z"))
    calendar = CalendarRef("report/")
    by_report = CalDAVConnector(CalDAVAccount(url=server.home, server_free_busy=True))
    by_query = CalDAVConnector(CalDAVAccount(url=server.home))

    expected = (
        Interval(datetime(2027, 3, 2, 10, tzinfo=UTC), datetime(2027, 3, 2, 12, tzinfo=UTC)),
        Interval(datetime(2027, 3, 5, 8, tzinfo=UTC), datetime(2027, 3, 5, 8, 30, tzinfo=UTC)),
    )
    assert by_report.free_busy([calendar], WINDOW).of("report/") == expected
    assert by_query.free_busy([calendar], WINDOW).of("report/") == expected


def zoned_ics(uid: str, offset: str) -> bytes:
    """An event at 09:00 in a zone named "Office", whose VTIMEZONE says ``offset``."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\n"
        "BEGIN:VTIMEZONE\r\nTZID:Office\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\n"
        f"TZOFFSETFROM:{offset}\r\nTZOFFSETTO:{offset}\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20270101T000000Z\r\n"
        "DTSTART;TZID=Office:20270302T090000\r\nDTEND;TZID=Office:20270302T100000\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def test_one_tzid_with_two_vtimezones_and_an_edit_while_the_connector_lives(
    server: Server,
) -> None:
    """Issue 21: icalendar cached the first VTIMEZONE of a non-IANA TZID for
    the process, so a second object (or an edited one) was read in its rules."""
    url = server.make_calendar("zones")
    server.request("PUT", f"{url}east.ics", zoned_ics("east", "+1300"))
    server.request("PUT", f"{url}west.ics", zoned_ics("west", "-0500"))
    calendar = CalendarRef("zones/")
    connector = CalDAVConnector(CalDAVAccount(url=server.home, retry=FAST))

    def starts(objects: Mapping[str, tuple[RemoteEvent, ...]]) -> dict[str, datetime]:
        return {e.uid: e.start for instances in objects.values() for e in instances}

    listing = connector.list_window(calendar, WINDOW)
    assert starts(listing.objects) == {
        "east": datetime(2027, 3, 1, 20, tzinfo=UTC),
        "west": datetime(2027, 3, 2, 14, tzinfo=UTC),
    }
    server.request("PUT", f"{url}east.ics", zoned_ics("east", "+0100"))
    changes = connector.changes_since(calendar, listing.cursor, WINDOW)
    assert starts(changes.objects) == {"east": datetime(2027, 3, 2, 8, tzinfo=UTC)}


@pytest.mark.parametrize("method", [SyncMethod.SYNC_COLLECTION, SyncMethod.ETAG])
def test_one_propfind_tells_which_of_many_calendars_changed(
    server: Server, method: SyncMethod
) -> None:
    """``current_cursors`` reads every sibling calendar's sync token (or ctag)
    in one depth-1 PROPFIND of their parent, and names exactly the
    unchanged ones."""
    names = [f"probe-{method.value}-{n}" for n in range(4)]
    for n, name in enumerate(names):
        server.make_calendar(name)
        status, _, _ = server.request("PUT", f"{server.home}{name}/e.ics",
                                      ics("e", f"2027030{n + 1}T100000Z",
                                          f"2027030{n + 1}T110000Z"))
        assert status == 201
    seen: list[str] = []
    connector = CalDAVConnector(CalDAVAccount(url=server.home, sync_method=method, retry=FAST),
                                observe=seen.append)
    calendars = [CalendarRef(f"{name}/") for name in names]
    cursors = {calendar: connector.list_window(calendar, WINDOW).cursor
               for calendar in calendars}
    status, _, _ = server.request("PUT", f"{server.home}{names[1]}/e.ics",
                                  ics("e", "20270310T100000Z", "20270310T110000Z"))
    assert status in (201, 204)
    status, _, _ = server.request("DELETE", f"{server.home}{names[2]}/e.ics")
    assert status in (200, 204)
    seen.clear()

    current = connector.current_cursors(cursors)

    assert current == {calendars[0].id, calendars[3].id}
    assert len(seen) == 1  # one request for all four
    for calendar in calendars:
        changes = connector.changes_since(calendar, cursors[calendar], WINDOW)
        assert bool(changes.objects) == (calendar.id not in current)
