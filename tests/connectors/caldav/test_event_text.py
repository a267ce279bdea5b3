"""The iCalendar text calpool writes: valid URIs for every party, rooms as
RFC 5545 has them, the booking id in every copy, the UID per copy."""

from __future__ import annotations

from datetime import UTC, datetime

import icalendar

from connectors.caldav.account import booking_uid, copy_uid
from connectors.caldav.writes import event_ics, event_uid, party_uri
from engine.core.model import Attendee
from engine.ports import EventDraft

NOW = datetime(2027, 1, 1, tzinfo=UTC)


def draft(*, organizer_copy: bool = True) -> EventDraft:
    return EventDraft(
        booking_id="b1",
        title="Panel",
        start=datetime(2027, 3, 2, 9, tzinfo=UTC),
        end=datetime(2027, 3, 2, 10, tzinfo=UTC),
        organizer=Attendee("Alice", "", calendar="alice"),
        attendees=(Attendee("Customer", "c@example.org"),),
        rooms=(Attendee("Room A", "", calendar="room a/1"), Attendee("Room B", "b@example.org")),
        organizer_copy=organizer_copy,
    )


def test_parties_get_valid_uris() -> None:
    """Regression (issue 20): ``urn:calpool:Room A`` is no URI (RFC 3986)."""
    assert party_uri(Attendee("Alice", "alice@example.org", calendar="alice")) == (
        "mailto:alice@example.org"
    )
    assert party_uri(Attendee("Room A", "", calendar="room a/1")) == (
        "urn:calpool:calendar:room%20a%2F1"
    )
    assert party_uri(Attendee("Room A", "")) == "urn:calpool:calendar:Room%20A"


def test_rooms_are_rooms_and_not_participants() -> None:
    event = icalendar.Calendar.from_ical(event_ics(draft(), uid="u", now=NOW)).walk("VEVENT")[0]
    attendees = event.get("ATTENDEE")
    rooms = [a for a in attendees if a.params.get("CUTYPE") == "ROOM"]
    assert [str(a) for a in rooms] == ["urn:calpool:calendar:room%20a%2F1", "mailto:b@example.org"]
    assert {a.params["ROLE"] for a in rooms} == {"NON-PARTICIPANT"}
    assert str(event.get("ORGANIZER")) == "urn:calpool:calendar:alice"
    assert " " not in str(event.get("ORGANIZER")) + "".join(str(a) for a in attendees)
    assert str(event.get("X-CALPOOL-BOOKING")) == "b1"


def test_the_owners_copy_keeps_the_attendees_uid_and_others_get_their_own() -> None:
    assert event_uid(draft(organizer_copy=True), "alice/") == booking_uid("b1")
    assert event_uid(draft(organizer_copy=False), "room-a/") == copy_uid("b1", "room-a/")
