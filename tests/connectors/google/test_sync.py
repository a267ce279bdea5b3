"""Sync of a Google calendar through googleapiclient against the fake:
every page followed, ``nextSyncToken`` from the last page only, the sync
token sent alone, 410 mid-listing, all-day events in the calendar's zone,
series read with ``singleEvents=true`` and changed instances reported with
their whole series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.google import GoogleConnector
from engine.core.model import Interval
from engine.errors import CursorExpired
from tests.connectors.google.conftest import NewCalendar
from tests.fakes.google_calendar import GoogleCalendarFake

WINDOW = Interval(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC))
FORBIDDEN_WITH_SYNC_TOKEN = {"timeMin", "timeMax", "updatedMin", "q", "orderBy", "iCalUID",
                             "privateExtendedProperty", "sharedExtendedProperty"}


def timed(start: datetime, minutes: int = 30, **more: object) -> dict[str, object]:
    end = start + timedelta(minutes=minutes)
    return {"summary": "x", "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": end.isoformat()}, **more}


def lists_of(fake: GoogleCalendarFake, calendar_id: str) -> list[dict[str, list[str]]]:
    return [query for method, path, query, _ in fake.requests
            if method == "GET" and path.endswith("/events") and calendar_id in path]


def test_the_full_listing_follows_every_page(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    first = datetime(2027, 3, 2, 8, tzinfo=UTC)
    for n in range(600):  # three pages of 250
        fake.insert(calendar.id, timed(first + timedelta(hours=n)))

    listing = connector.list_window(calendar, WINDOW)

    assert len(listing.objects) == 600
    queries = lists_of(fake, calendar.id)
    assert len(queries) == 3 and all(q["singleEvents"] == ["true"] for q in queries)
    assert [("pageToken" in q) for q in queries] == [False, True, True]
    assert queries[0]["timeMin"] == ["2027-03-01T00:00:00Z"]
    assert queries[0]["timeMax"] == ["2027-06-01T00:00:00Z"]


def test_incremental_sends_the_sync_token_alone(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    cursor = connector.list_window(calendar, WINDOW).cursor
    created = fake.insert(calendar.id, timed(datetime(2027, 3, 3, 9, tzinfo=UTC)))

    changes = connector.changes_since(calendar, cursor, WINDOW)

    assert list(changes.objects) == [created["id"]]
    incremental = [q for q in lists_of(fake, calendar.id) if "syncToken" in q]
    assert incremental and all(not (FORBIDDEN_WITH_SYNC_TOKEN & set(q)) for q in incremental)
    assert all(q["singleEvents"] == ["true"] for q in incremental)  # as in the full sync
    # An unchanged calendar: nothing, and the cursor keeps working.
    again = connector.changes_since(calendar, changes.cursor, WINDOW)
    assert dict(again.objects) == {}


def test_a_410_in_the_middle_of_an_incremental_listing_expires_the_cursor(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    cursor = connector.list_window(calendar, WINDOW).cursor
    for n in range(300):  # two pages of changes
        fake.insert(calendar.id, timed(datetime(2027, 4, 1, tzinfo=UTC) + timedelta(hours=n)))
    fake.fail(method="GET", path=f"{calendar.id}/events$", status=410, reason="fullSyncRequired",
              times=1)

    with pytest.raises(CursorExpired) as caught:
        connector.changes_since(calendar, cursor, WINDOW)

    assert caught.value.cursor == cursor and caught.value.calendar == calendar.id
    assert len(connector.list_window(calendar, WINDOW).objects) == 300


def test_an_all_day_event_is_the_local_day_of_the_calendars_zone(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar("America/New_York")
    stored = fake.insert(calendar.id, {"summary": "off", "start": {"date": "2027-03-20"},
                                       "end": {"date": "2027-03-21"}})

    (event,) = connector.list_window(calendar, WINDOW).objects[stored["id"]]

    assert (event.start, event.end) == (datetime(2027, 3, 20, 4, tzinfo=UTC),
                                        datetime(2027, 3, 21, 4, tzinfo=UTC))


def test_one_instance_changed_reports_the_whole_series(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    master = fake.insert(calendar.id, {
        "summary": "daily", "recurrence": ["RRULE:FREQ=DAILY;COUNT=4"],
        "start": {"dateTime": "2027-03-10T10:00:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2027-03-10T11:00:00", "timeZone": "Europe/Berlin"}})
    listing = connector.list_window(calendar, WINDOW)
    assert [e.instance for e in listing.objects[master["id"]]] == [
        "2027-03-10T09:00:00Z", "2027-03-11T09:00:00Z", "2027-03-12T09:00:00Z",
        "2027-03-13T09:00:00Z"]

    fake.patch(calendar.id, f"{master['id']}_20270311T090000Z", {"transparency": "transparent"})
    fake.patch(calendar.id, f"{master['id']}_20270312T090000Z", {"status": "cancelled"})
    changes = connector.changes_since(calendar, listing.cursor, WINDOW)

    assert [(e.instance, e.busy) for e in changes.objects[master["id"]]] == [
        ("2027-03-10T09:00:00Z", True), ("2027-03-11T09:00:00Z", False),
        ("2027-03-13T09:00:00Z", True)]


def test_a_deleted_series_is_gone(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    master = fake.insert(calendar.id, {
        "summary": "weekly", "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
        "start": {"dateTime": "2027-03-10T10:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2027-03-10T11:00:00Z", "timeZone": "UTC"}})
    cursor = connector.list_window(calendar, WINDOW).cursor
    fake.delete(calendar.id, master["id"])

    assert dict(connector.changes_since(calendar, cursor, WINDOW).objects) == {master["id"]: ()}


def test_events_in_opens_no_sync_round(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    fake.insert(calendar.id, timed(datetime(2027, 3, 3, 9, tzinfo=UTC)))
    read = connector.events_in(calendar, WINDOW)
    assert len(read) == 1 and all("syncToken" not in q for q in lists_of(fake, calendar.id))
