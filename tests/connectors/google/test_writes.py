"""Writes through googleapiclient against the fake: the id derived from
the booking (base32hex), the booking id as a private extended property,
rooms invited as resource attendees that answer on their own, a 409 on a
retry that finds the earlier write, ``If-Match`` on updates, the owner as
organizer (the calendar's subject), ``sendUpdates``."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from connectors.google import GoogleConnector, event_id
from engine.core.model import Attendee, AttendeeAnswer, Interval
from engine.errors import Conflict, NotFound
from engine.ports import CalendarRef, EventDraft, EventState
from tests.connectors.google.conftest import NewCalendar
from tests.fakes.google_calendar import GoogleCalendarFake, RoomAnswer

START = datetime(2027, 3, 10, 14, tzinfo=UTC)
END = datetime(2027, 3, 10, 14, 30, tzinfo=UTC)


def draft(booking_id: str, *rooms: Attendee, start: datetime = START, end: datetime = END,
          notify: bool = True) -> EventDraft:
    return EventDraft(booking_id=booking_id, title="Consultation", start=start, end=end,
                      organizer=Attendee("Alice", "alice@acme.test"),
                      attendees=(Attendee("Carol", "carol@example.net"),),
                      rooms=rooms, invite=rooms, notify_attendee=notify)


def eventually(read: Callable[[], EventState | None], check: Callable[[EventState], bool],
               within: float = 10.0) -> EventState:
    deadline = time.monotonic() + within
    while True:
        state = read()
        if state is not None and check(state):
            return state
        assert time.monotonic() < deadline, f"not so within {within}s: {state}"
        time.sleep(0.05)


def test_the_event_id_is_base32hex_derived_from_the_booking() -> None:
    one = event_id("bk-1", "a@acme.test", organizer_copy=True)
    assert re.fullmatch(r"[a-v0-9]{5,1024}", one)
    assert one == event_id("bk-1", "b@acme.test", organizer_copy=True)
    assert one != event_id("bk-2", "a@acme.test", organizer_copy=True)
    assert one != event_id("bk-1", "a@acme.test", organizer_copy=False)


def test_the_owners_event_is_written_once_as_the_owner(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    written = connector.create_event(calendar, draft("bk-once"))
    again = connector.create_event(calendar, draft("bk-once"))  # a retry after a crash

    assert (again.source, again.uid) == (written.source, written.uid)
    assert written.source == event_id("bk-once", calendar.id, organizer_copy=True)
    live = [e for e in fake.events(calendar.id) if e.get("status") != "cancelled"]
    assert [e["id"] for e in live] == [written.source]
    stored = live[0]
    assert stored["extendedProperties"] == {"private": {"calpoolBooking": "bk-once"},
                                            "shared": {"calpoolBooking": "bk-once"}}
    assert stored["organizer"]["email"] == calendar.id
    inserts = [(q, who) for method, path, q, who in fake.requests
               if method == "POST" and path.endswith(f"{calendar.id}/events")]
    assert inserts and all(who == calendar.id and q["sendUpdates"] == ["all"]
                           for q, who in inserts)


def test_a_retry_with_other_content_conflicts(
        connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    connector.create_event(calendar, draft("bk-c"))
    with pytest.raises(Conflict):
        connector.create_event(calendar, draft("bk-c", start=START.replace(hour=16),
                                               end=END.replace(hour=16)))


def test_without_notify_google_sends_no_invitation(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    connector.create_event(calendar, draft("bk-quiet", notify=False))
    (query,) = [q for method, path, q, _ in fake.requests
                if method == "POST" and path.endswith(f"{calendar.id}/events")]
    assert query["sendUpdates"] == ["none"]


def test_a_free_room_accepts_and_a_busy_room_declines(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    room = "room-elbe@resource.calendar.google.com"
    fake.add_room(room, name="Elbe", answer=RoomAnswer.AUTO, delay=0.1)
    first, second = new_calendar(), new_calendar()
    elbe = Attendee("Elbe", room)

    written = connector.create_event(first, draft("bk-r1", elbe))
    stored = fake.event(first.id, written.source)
    assert stored is not None
    (attendee,) = [a for a in stored["attendees"] if a.get("resource")]
    assert attendee["email"] == room
    accepted = eventually(lambda: connector.read_event(first, "bk-r1", source=written.source),
                          lambda s: s.answer_of(room) is not AttendeeAnswer.NEEDS_ACTION)
    assert accepted.answer_of(room) is AttendeeAnswer.ACCEPTED
    # The room's copy, which Google wrote, is recognised as the booking's.
    window = Interval(START.replace(hour=0), START.replace(hour=23))
    in_room = connector.events_in(CalendarRef(room, "UTC"), window)
    assert [(e.source, e.booking_id) for e in in_room] == [(written.source, "bk-r1")]

    clash = connector.create_event(second, draft("bk-r2", elbe))
    declined = eventually(lambda: connector.read_event(second, "bk-r2", source=clash.source),
                          lambda s: s.answer_of(room) is not AttendeeAnswer.NEEDS_ACTION)
    assert declined.answer_of(room) is AttendeeAnswer.DECLINED


def test_update_replaces_the_room_and_checks_the_etag(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    for email in ("room-a1@resource.calendar.google.com", "room-b1@resource.calendar.google.com"):
        fake.add_room(email, answer=RoomAnswer.SILENT)
    calendar = new_calendar()
    a, b = (Attendee("A", "room-a1@resource.calendar.google.com"),
            Attendee("B", "room-b1@resource.calendar.google.com"))
    written = connector.create_event(calendar, draft("bk-u", a))

    updated = connector.update_event(calendar, draft("bk-u", b), etag=written.etag,
                                     source=written.source)

    assert updated.source == written.source and updated.etag != written.etag
    emails = {x["email"] for x in fake.event(calendar.id, written.source)["attendees"]}
    assert emails == {"carol@example.net", b.email}
    with pytest.raises(Conflict) as caught:
        connector.update_event(calendar, draft("bk-u", a), etag=written.etag)
    assert caught.value.expected == written.etag


def test_a_deleted_event_is_gone_for_update_and_read_and_deleting_twice_is_fine(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    written = connector.create_event(calendar, draft("bk-d"))
    connector.delete_event(calendar, "bk-d", source=written.source)
    connector.delete_event(calendar, "bk-d", source=written.source)

    assert fake.event(calendar.id, written.source)["status"] == "cancelled"  # the id stays taken
    assert connector.read_event(calendar, "bk-d") is None
    with pytest.raises(NotFound):
        connector.update_event(calendar, draft("bk-d"))
    # Booked again (the same booking): the reserved id is put back, not a second event.
    again = connector.create_event(calendar, draft("bk-d"))
    assert again.source == written.source
    state = connector.read_event(calendar, "bk-d")
    assert state is not None and state.start == START


def test_read_event_of_another_bookings_event_is_none(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    written = connector.create_event(calendar, draft("bk-mine"))
    assert connector.read_event(calendar, "bk-other", source=written.source) is None
    assert connector.read_event(CalendarRef(calendar.id, calendar.timezone, calendar.subject),
                                "bk-mine") is not None


def test_an_update_at_the_same_time_keeps_the_rooms_answer(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    room = "room-keep@resource.calendar.google.com"
    fake.add_room(room, answer=RoomAnswer.SILENT)
    calendar = new_calendar()
    written = connector.create_event(calendar, draft("bk-keep", Attendee("Keep", room)))
    fake.answer_as_room(calendar.id, written.source, room, "accepted")

    connector.update_event(calendar, replace(draft("bk-keep", Attendee("Keep", room)),
                                             title="Consultation (renamed)"))

    state = connector.read_event(calendar, "bk-keep")
    assert state is not None and state.answer_of(room) is AttendeeAnswer.ACCEPTED
