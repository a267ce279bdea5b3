"""How CalendarSync picks and keeps its way of following changes, with a
small in-memory stand-in for the DAV session."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from connectors.caldav.account import SyncMethod
from connectors.caldav.dav import Member, SyncAnswer, SyncUnsupported
from connectors.caldav.sync import CalendarSync, decode_etag_cursor, encode_etag_cursor
from engine.core.model import Interval
from engine.errors import CursorExpired

WINDOW = Interval(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
URL = "http://h/c/"


def ics(uid: str, day: int) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTART:202703{day:02d}T100000Z\r\nDTEND:202703{day:02d}T110000Z\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


class EtagOnlyServer:
    """A collection without sync-collection: members are href → (etag, data)."""

    def __init__(self) -> None:
        self.members: dict[str, tuple[str, str]] = {}
        self.ctag_value = "1"
        self.etag_listings = 0

    def store(self, href: str, data: str) -> None:
        old = self.members.get(href, ("0", ""))[0]
        self.members[href] = (str(int(old) + 1), data)
        self.ctag_value = str(int(self.ctag_value) + 1)

    def remove(self, href: str) -> None:
        del self.members[href]
        self.ctag_value = str(int(self.ctag_value) + 1)

    def sync_collection(self, url: str, token: str) -> SyncAnswer:
        raise SyncUnsupported("no sync-collection here")

    def ctag(self, url: str) -> str:
        return self.ctag_value

    def etags(self, url: str) -> tuple[str, tuple[Member, ...]]:
        self.etag_listings += 1
        return self.ctag_value, tuple(Member(h, e) for h, (e, _) in self.members.items())

    def multiget(self, url: str, hrefs: Iterable[str]) -> dict[str, Member]:
        return {h: Member(h, *self.members[h]) for h in hrefs if h in self.members}


def sync_over(server: EtagOnlyServer, method: SyncMethod) -> CalendarSync:
    return CalendarSync(server, URL, zone="UTC", method=method, calendar_id="c/")  # type: ignore[arg-type]


def test_auto_falls_back_to_etags_and_follows_changes() -> None:
    server = EtagOnlyServer()
    server.store("/c/a.ics", ics("a", 2))
    server.store("/c/b.ics", ics("b", 3))
    listing, method = sync_over(server, SyncMethod.AUTO).list_window(WINDOW)
    assert method is SyncMethod.ETAG
    assert listing.cursor.startswith("et1:") and set(listing.objects) == {"/c/a.ics", "/c/b.ics"}

    server.store("/c/a.ics", ics("a", 9))
    server.remove("/c/b.ics")
    server.store("/c/c.ics", ics("c", 4))
    changes = sync_over(server, SyncMethod.AUTO).changes_since(listing.cursor, WINDOW)

    assert {h: [e.start.day for e in v] for h, v in changes.objects.items()} == {
        "/c/a.ics": [9],
        "/c/b.ics": [],
        "/c/c.ics": [4],
    }
    _, etags = decode_etag_cursor(changes.cursor)
    assert etags == {"/c/a.ics": "2", "/c/c.ics": "1"}


def test_unchanged_ctag_costs_no_listing() -> None:
    server = EtagOnlyServer()
    server.store("/c/a.ics", ics("a", 2))
    listing, _ = sync_over(server, SyncMethod.ETAG).list_window(WINDOW)
    before = server.etag_listings
    changes = sync_over(server, SyncMethod.ETAG).changes_since(listing.cursor, WINDOW)
    assert dict(changes.objects) == {} and changes.cursor == listing.cursor
    assert server.etag_listings == before


def test_forcing_sync_collection_on_such_a_server_fails() -> None:
    with pytest.raises(SyncUnsupported):
        sync_over(EtagOnlyServer(), SyncMethod.SYNC_COLLECTION).list_window(WINDOW)


@pytest.mark.parametrize(
    ("method", "cursor"),
    [(SyncMethod.ETAG, "sc1:token"), (SyncMethod.SYNC_COLLECTION, encode_etag_cursor("1", {}))],
)
def test_a_cursor_of_the_other_method_expires(method: SyncMethod, cursor: str) -> None:
    with pytest.raises(CursorExpired) as caught:
        sync_over(EtagOnlyServer(), method).changes_since(cursor, WINDOW)
    assert caught.value.cursor == cursor


def test_etag_cursor_round_trips() -> None:
    etags = {f"/c/{i}.ics": f'"{i}"' for i in range(500)}
    cursor = encode_etag_cursor("ctag-1", etags)
    assert decode_etag_cursor(cursor) == ("ctag-1", etags)
    assert len(cursor) < 8000  # compressed: fits a text column comfortably


class SyncingServer(EtagOnlyServer):
    """A collection with sync-collection whose tokens name no collection
    (as Cyrus's: ``data:,<uidvalidity>-<modseq>``, equal for calendars made
    in the same second)."""

    def sync_collection(self, url: str, token: str) -> SyncAnswer:
        return SyncAnswer((), (), "data:,1796230377-6")


def test_a_sync_token_is_bound_to_its_calendar() -> None:
    """Regression (issue 20, Cyrus): another calendar's token was taken."""
    server = SyncingServer()
    listing, _ = sync_over(server, SyncMethod.SYNC_COLLECTION).list_window(WINDOW)
    assert listing.cursor.startswith("sc2:")
    other = CalendarSync(server, URL, zone="UTC", method=SyncMethod.AUTO, calendar_id="other/")  # type: ignore[arg-type]
    with pytest.raises(CursorExpired):
        other.changes_since(listing.cursor, WINDOW)


def test_a_sync_cursor_written_before_the_binding_is_still_followed() -> None:
    changes = sync_over(SyncingServer(), SyncMethod.AUTO).changes_since("sc1:data:,1-1", WINDOW)
    assert changes.cursor.startswith("sc2:") and changes.cursor.endswith(":data:,1796230377-6")


def test_unreadable_objects_are_named_in_listings_and_changes() -> None:
    """Issue 21: a skipped object used to be visible only in a debug log."""
    server = EtagOnlyServer()
    server.store("/c/good.ics", ics("good", 2))
    server.store("/c/bad.ics", ics("bad", 3).replace("DTSTART:", "X-START:"))
    sync = sync_over(server, SyncMethod.ETAG)
    listing = sync.list_window(WINDOW)[0]
    assert set(listing.objects) == {"/c/good.ics"}
    assert list(listing.unreadable) == ["/c/bad.ics"]
    assert "no DTSTART" in listing.unreadable["/c/bad.ics"]

    server.store("/c/good.ics", ics("good", 4).replace("DTEND:", "RRULE:FREQ=NEVER\r\nDTEND:"))
    changes = sync.changes_since(listing.cursor, WINDOW)
    assert changes.objects == {"/c/good.ics": ()}
    assert list(changes.unreadable) == ["/c/good.ics"]


class DataInSyncServer(EtagOnlyServer):
    """sync-collection that carries each member's data, except for the
    hrefs in ``without_data`` (as a server answering calendar-data for some
    members only); counts the hrefs asked by multiget."""

    def __init__(self, without_data: set[str]) -> None:
        super().__init__()
        self.without_data = without_data
        self.multiget_hrefs: list[str] = []

    def sync_collection(self, url: str, token: str) -> SyncAnswer:
        return SyncAnswer(tuple(
            Member(h, e, None if h in self.without_data else d)
            for h, (e, d) in self.members.items()), (), "t1")

    def multiget(self, url: str, hrefs: Iterable[str]) -> dict[str, Member]:
        wanted = list(hrefs)
        self.multiget_hrefs += wanted
        return super().multiget(url, wanted)


@pytest.mark.parametrize("without_data", [set(), {"/c/b.ics"}, {"/c/a.ics", "/c/b.ics"}])
def test_data_the_sync_report_carries_is_used_and_only_the_rest_is_multigot(
    without_data: set[str],
) -> None:
    server = DataInSyncServer(without_data)
    server.store("/c/a.ics", ics("a", 2))
    server.store("/c/b.ics", ics("b", 3))

    listing, method = sync_over(server, SyncMethod.AUTO).list_window(WINDOW)

    assert method is SyncMethod.AUTO
    assert {h: [e.start.day for e in v] for h, v in listing.objects.items()} == {
        "/c/a.ics": [2], "/c/b.ics": [3]}
    assert sorted(server.multiget_hrefs) == sorted(without_data)
