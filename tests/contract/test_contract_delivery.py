"""The connector contract for delivery: reading one written event back with
its attendees' answers, reading a window without a sync round, free/busy
that reports a calendar it cannot answer for on its own, writes addressed
by the stored source, and invited rooms that answer."""

from __future__ import annotations

import pytest

from engine.core.model import AttendeeAnswer, Interval
from engine.errors import ConnectorError
from engine.ports import CalendarRef
from tests.contract.calendar_data import ROOM_MAILBOX, WINDOW, draft, rows, single, utc
from tests.contract.harness import Capability, Harness


def test_read_event_reports_the_write_with_its_answers(harness: Harness) -> None:
    h = harness
    written = h.connector.create_event(h.calendar, draft())

    state = h.connector.read_event(h.calendar, "bk-1", source=written.source)

    assert state is not None
    assert (state.source, state.uid) == (written.source, written.uid)
    assert (state.start, state.end) == (utc(2027, 3, 10, 14), utc(2027, 3, 10, 14, 30))
    assert state.answer_of("Carol@Example.NET") is AttendeeAnswer.NEEDS_ACTION
    assert state.answer_of("nobody@example.net") is None


def test_read_event_of_a_gone_or_unknown_booking_is_none(harness: Harness) -> None:
    h = harness
    written = h.connector.create_event(h.calendar, draft())
    assert h.connector.read_event(h.calendar, "never-written") is None
    h.connector.delete_event(h.calendar, "bk-1", source=written.source)
    assert h.connector.read_event(h.calendar, "bk-1", source=written.source) is None


def test_update_and_delete_by_the_stored_source(harness: Harness) -> None:
    h = harness
    written = h.connector.create_event(h.calendar, draft())

    updated = h.connector.update_event(
        h.calendar, draft(hour=9), etag=written.etag, source=written.source)

    assert updated.source == written.source and updated.uid == written.uid
    state = h.connector.read_event(h.calendar, "bk-1", source=updated.source)
    assert state is not None and state.start == utc(2027, 3, 10, 9)
    h.connector.delete_event(h.calendar, "bk-1", source=updated.source)
    assert dict(h.connector.list_window(h.calendar, WINDOW).objects) == {}


def test_events_in_agrees_with_the_listing_and_moves_no_cursor(harness: Harness) -> None:
    h = harness
    h.driver.put(single("one"))
    h.connector.create_event(h.calendar, draft())
    listing = h.connector.list_window(h.calendar, WINDOW)

    read = h.connector.events_in(h.calendar, WINDOW)

    assert sorted((e.source, e.instance, e.start, e.end, e.busy) for e in read) == sorted(
        (source, *row) for source, found in rows(listing).items() for row in found)
    assert {e.booking_id for e in read} == {None, "bk-1"}
    # A plain read: the listing's cursor still follows the calendar, and
    # sees nothing new.
    assert dict(h.connector.changes_since(h.calendar, listing.cursor, WINDOW).objects) == {}


def test_events_in_is_bounded_by_the_window(harness: Harness) -> None:
    h = harness
    h.driver.put(single("one"))  # 2027-03-01
    h.connector.create_event(h.calendar, draft())  # 2027-03-10
    read = h.connector.events_in(h.calendar, Interval(utc(2027, 3, 9), utc(2027, 3, 11)))
    assert [e.booking_id for e in read] == ["bk-1"]


def test_free_busy_reports_a_calendar_it_cannot_answer_for_alone(harness: Harness) -> None:
    h = harness
    h.connector.create_event(h.calendar, draft())
    missing = CalendarRef("no-such-calendar/", h.calendar.timezone)

    answer = h.connector.free_busy([h.calendar, missing], WINDOW)

    assert answer.of(h.calendar.id) == (Interval(utc(2027, 3, 10, 14), utc(2027, 3, 10, 14, 30)),)
    assert isinstance(answer.errors[missing.id], ConnectorError)
    with pytest.raises(ConnectorError):
        answer.of(missing.id)


def test_an_invited_room_answers_on_the_owners_event(harness: Harness) -> None:
    h = harness
    h.require(Capability.INVITATIONS)
    h.require(Capability.ROOM_DECLINE)
    written = h.connector.create_event(h.calendar, draft(invite_room=True))
    assert written.answers.get(ROOM_MAILBOX, AttendeeAnswer.NEEDS_ACTION) in (
        AttendeeAnswer.NEEDS_ACTION, AttendeeAnswer.ACCEPTED)
    cursor = h.connector.list_window(h.calendar, WINDOW).cursor

    h.driver.decline_as_room(written.source, ROOM_MAILBOX)

    state = h.connector.read_event(h.calendar, "bk-1", source=written.source)
    assert state is not None and state.answer_of(ROOM_MAILBOX) is AttendeeAnswer.DECLINED
    # Sync sees the answer too: the owner's event changed.
    changed = h.connector.changes_since(h.calendar, cursor, WINDOW).objects[written.source]
    assert [e.answers.get(ROOM_MAILBOX) for e in changed] == [AttendeeAnswer.DECLINED]
