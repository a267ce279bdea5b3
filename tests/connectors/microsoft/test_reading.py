"""Reading mailboxes through the Microsoft connector: how Graph's events
become busy time (showAs, tentative per the account, Windows zone names,
all-day days), delta rounds that open with an empty page, a series whose
occurrence is removed, what calpool asks Graph for (UTC, page size), and
the parsers alone (hypothesis)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.microsoft import MicrosoftAccount, MicrosoftConnector
from connectors.microsoft.account import booking_of_transaction, transaction_id
from connectors.microsoft.events import group
from connectors.microsoft.sync import Cursor
from connectors.microsoft.times import UnreadableTime, instant, wall_clock
from engine.core.model import Interval
from engine.errors import CursorExpired
from engine.ports import CalendarRef
from tests.fakes.graph import GraphFake

WINDOW = Interval(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, 3, day, hour, minute, tzinfo=UTC)


def _event(subject: str, day: int, *, zone: str = "W. Europe Standard Time",
           show_as: str = "busy", **extra: object) -> dict[str, object]:
    return {"subject": subject, "showAs": show_as, **extra,
            "start": {"dateTime": f"2027-03-{day:02d}T10:00:00", "timeZone": zone},
            "end": {"dateTime": f"2027-03-{day:02d}T11:00:00", "timeZone": zone}}


@pytest.mark.parametrize("tentative_is_busy", [True, False])
def test_show_as_zones_and_all_day_events_become_busy_time(
    fake: GraphFake, account: MicrosoftAccount, mailbox: CalendarRef, tentative_is_busy: bool
) -> None:
    made = {
        name: fake.create(mailbox.id, event)["id"]
        for name, event in {
            "busy": _event("busy", 2),
            "oof": _event("oof", 3, show_as="oof"),
            "tentative": _event("tentative", 4, show_as="tentative"),
            "free": _event("free", 5, show_as="free"),
            "elsewhere": _event("elsewhere", 6, show_as="workingElsewhere"),
            "tokyo": _event("tokyo", 7, zone="Tokyo Standard Time"),
            "iana": _event("iana", 8, zone="America/New_York"),
            "all-day": {"subject": "all day", "isAllDay": True,
                        "start": {"dateTime": "2027-03-09T00:00:00",
                                  "timeZone": "W. Europe Standard Time"},
                        "end": {"dateTime": "2027-03-10T00:00:00",
                                "timeZone": "W. Europe Standard Time"}},
        }.items()
    }
    connector = MicrosoftConnector(replace(account, tentative_is_busy=tentative_is_busy))

    listing = connector.list_window(mailbox, WINDOW)

    seen = {name: [(e.start, e.end, e.busy) for e in listing.objects[source]]
            for name, source in made.items()}
    assert seen == {
        "busy": [(utc(2, 9), utc(2, 10), True)],
        "oof": [(utc(3, 9), utc(3, 10), True)],
        "tentative": [(utc(4, 9), utc(4, 10), tentative_is_busy)],
        "free": [(utc(5, 9), utc(5, 10), False)],
        "elsewhere": [(utc(6, 9), utc(6, 10), False)],
        "tokyo": [(utc(7, 1), utc(7, 2), True)],  # UTC+9
        "iana": [(utc(8, 15), utc(8, 16), True)],  # New York is on EDT from 14 March: EST here
        "all-day": [(utc(8, 23), utc(9, 23), True)],  # the Berlin day of 9 March
    }


def test_graph_is_asked_for_utc_times_in_pages(
    fake: GraphFake, connector: MicrosoftConnector, account: MicrosoftAccount,
    mailbox: CalendarRef,
) -> None:
    for day in range(1, 6):
        fake.create(mailbox.id, _event(f"e{day}", day))
    connector.list_window(replace(mailbox), WINDOW)
    asked = [headers for method, path, _, headers in fake.requests
             if path.endswith(f"{mailbox.id}/calendarView/delta")]
    assert asked and all('outlook.timezone="UTC"' in h.get("prefer", "") for h in asked)
    assert all(f"odata.maxpagesize={account.page_size}" in h["prefer"] for h in asked)


def test_rounds_that_open_with_an_empty_page_go_on(
    fake: GraphFake, connector: MicrosoftConnector, mailbox: CalendarRef
) -> None:
    fake.empty_delta_page = True
    try:
        first = fake.create(mailbox.id, _event("first", 2))["id"]
        listing = connector.list_window(mailbox, WINDOW)
        second = fake.create(mailbox.id, _event("second", 3))["id"]
        changes = connector.changes_since(mailbox, listing.cursor, WINDOW)
    finally:
        fake.empty_delta_page = False
    assert list(listing.objects) == [first]
    assert list(changes.objects) == [second]


def test_a_removed_occurrence_reports_the_rest_of_its_series(
    fake: GraphFake, connector: MicrosoftConnector, mailbox: CalendarRef
) -> None:
    series = fake.create(mailbox.id, {
        **_event("daily", 2),
        "recurrence": {"pattern": {"type": "daily", "interval": 1},
                       "range": {"type": "numbered", "numberOfOccurrences": 3,
                                 "startDate": "2027-03-02",
                                 "recurrenceTimeZone": "W. Europe Standard Time"}}})["id"]
    listing = connector.list_window(mailbox, WINDOW)
    assert [e.instance for e in listing.objects[series]] == [
        "2027-03-02T09:00:00Z", "2027-03-03T09:00:00Z", "2027-03-04T09:00:00Z"]
    middle = next(i.id for i in fake.calendars.instances(mailbox.id, utc(3, 0), utc(4, 0)))

    fake.delete(mailbox.id, middle)  # the occurrence alone: Graph's delta names only its id

    changes = connector.changes_since(mailbox, listing.cursor, WINDOW)
    assert [e.instance for e in changes.objects[series]] == [
        "2027-03-02T09:00:00Z", "2027-03-04T09:00:00Z"]
    again = connector.changes_since(mailbox, changes.cursor, WINDOW)
    assert dict(again.objects) == {}


def test_an_unreadable_item_is_logged_and_left_out(caplog: pytest.LogCaptureFixture) -> None:
    good = {"id": "good", "iCalUId": "u1", "type": "singleInstance",
            "start": {"dateTime": "2027-03-01T10:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2027-03-01T11:00:00.0000000", "timeZone": "UTC"}}
    broken = {**good, "id": "broken", "start": {"dateTime": "2027-03-01T10:00:00",
                                                 "timeZone": "Nowhere/Atlantis"}}
    garbled = {**good, "id": "garbled", "end": {"dateTime": "yesterday", "timeZone": "UTC"}}
    with caplog.at_level(logging.WARNING):
        grouped = group([good, broken, garbled], calendar_zone="UTC", tentative_is_busy=True)
    assert list(grouped.objects) == ["good"]
    assert set(grouped.unreadable) == {"broken", "garbled"}
    assert "broken" in caplog.text and "garbled" in caplog.text


@given(st.text(max_size=120))
def test_any_text_is_a_cursor_or_expired(text: str) -> None:
    try:
        cursor = Cursor.decode(text, mailbox="a@b.example")
    except CursorExpired as exc:
        assert exc.cursor == text
    else:
        assert cursor.mailbox == "a@b.example"


@given(st.text(min_size=1, max_size=200))
def test_a_transaction_id_gives_its_booking_back(booking_id: str) -> None:
    assert booking_of_transaction(transaction_id(booking_id)) == booking_id


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)),
       st.integers(min_value=0, max_value=9_999_999))
def test_graph_wall_clock_text_reads_back(moment: datetime, ticks: int) -> None:
    moment = moment.replace(microsecond=0)
    text = moment.isoformat(timespec="seconds") + f".{ticks:07d}"
    assert wall_clock(text) == moment.replace(microsecond=ticks // 10)
    assert instant({"dateTime": text, "timeZone": "UTC"}) == moment.replace(
        microsecond=ticks // 10, tzinfo=UTC)


@pytest.mark.parametrize("value", [None, {}, {"dateTime": 5}, {"dateTime": "x", "timeZone": "UTC"},
                                   {"dateTime": "2027-03-01T10:00:00", "timeZone": "Mars/Olympus"}])
def test_unreadable_times_raise_one_error(value: object) -> None:
    with pytest.raises(UnreadableTime):
        instant(value)


def test_a_round_forgotten_while_it_is_paged_is_begun_again(
    fake: GraphFake, account: MicrosoftAccount, mailbox: CalendarRef
) -> None:
    made = {fake.create(mailbox.id, _event(f"e{day}", day))["id"] for day in range(1, 10)}
    expired: list[str] = []

    def forget_after_the_first_page(outcome: str) -> None:
        delta = f"{mailbox.id}/calendarView/delta"
        pages = [p for _, p, _, _ in fake.requests if p.endswith(delta)]
        if len(pages) == 1 and not expired:
            expired.append(outcome)
            fake.expire_delta_tokens(mailbox.id)  # the nextLink of page one is now unknown

    paged = MicrosoftConnector(replace(account, page_size=3), observe=forget_after_the_first_page)

    listing = paged.list_window(mailbox, WINDOW)

    assert expired and set(listing.objects) == made
    cursor = listing.cursor
    fake.expire_delta_tokens(mailbox.id)
    with pytest.raises(CursorExpired):  # an incremental pass is the engine's to redo
        paged.changes_since(mailbox, cursor, WINDOW)
