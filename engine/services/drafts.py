"""What calpool writes for a booking, and where.

The owner's calendar holds the event as organizer, with the attendee and
the ``with`` people as attendees and the rooms as resource attendees.  A
room or a ``with`` person gets a copy of the event written into their own
calendar unless their provider delivers the invitation itself
(``Delivery``: Google and Microsoft within one account); CalDAV without
server-side scheduling always needs the copy.  Each copy carries the
booking id (by which sync recognises it) and a UID of its own, derived from
the booking and its calendar; the owner's copy keeps the UID the attendee
sees (``EventDraft.organizer_copy``).

Each write is one outbox job, so each is retried, confirmed and
compensated on its own.  The job payloads are plain JSON: ``calendar`` (the
calendar key), ``role`` (``owner``, ``with`` or ``room``), ``pool`` for a
room, and ``sequence`` when an event written earlier must be replaced (its
rooms changed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.core.model import Attendee, Booking, Calendar, EventType, Pool
from engine.ports import EventDraft
from engine.services.sync import CalendarBinding

WRITE = "write-event"
DELETE = "delete-event"

OWNER = "owner"
WITH = "with"
ROOM = "room"

Delivery = Callable[[str, str], bool]
"""``delivers(owner, other)``: whether the owner's provider puts the event
into ``other``'s calendar by itself (then calpool writes no copy there)."""


def never_delivers(owner: str, other: str) -> bool:
    """CalDAV's answer: no server-side scheduling is relied on."""
    return False


@dataclass(frozen=True, slots=True)
class Catalog:
    """What booking and the outbox know of the configuration: the model,
    how to reach each calendar, email addresses where known (calendar key →
    address) and which calendars the owner's provider serves by itself."""

    calendars: Mapping[str, Calendar]
    pools: Mapping[str, Pool]
    event_types: Mapping[str, EventType]
    bindings: Mapping[str, CalendarBinding]
    addresses: Mapping[str, str] = field(default_factory=dict)
    delivers: Delivery = never_delivers


@dataclass(frozen=True, slots=True)
class Target:
    """One calendar a booking's event goes into."""

    calendar: str
    role: str
    pool: str = ""

    def payload(self, *, sequence: int = 0) -> dict[str, Any]:
        """The job payload; ``sequence`` above 0 replaces an event written
        before (with that iCalendar SEQUENCE)."""
        found: dict[str, Any] = {"calendar": self.calendar, "role": self.role}
        if self.pool:
            found["pool"] = self.pool
        if sequence:
            found["sequence"] = sequence
        return found

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> Target:
        return cls(str(payload["calendar"]), str(payload["role"]), str(payload.get("pool", "")))


def targets(booking: Booking, delivers: Delivery = never_delivers) -> list[Target]:
    """Where ``booking``'s event is written: the owner first, then each
    room, then each ``with`` person, leaving out the calendars the owner's
    provider serves by itself."""
    found = [Target(booking.owner, OWNER)]
    for pool, room in booking.rooms.items():
        if not delivers(booking.owner, room):
            found.append(Target(room, ROOM, pool))
    for person in booking.with_:
        if not delivers(booking.owner, person):
            found.append(Target(person, WITH))
    return found


def render(template: str, booking: Booking) -> str:
    """``template`` with ``{attendee_name}``, ``{attendee_email}``,
    ``{notes}`` and ``{event_type}`` filled in.  Only these names are
    replaced, so any other brace in an operator's text stays as written
    (``str.format`` would fail on it at booking time)."""
    attendee = booking.attendee or Attendee("", "")
    values = {
        "{attendee_name}": attendee.name,
        "{attendee_email}": attendee.email,
        "{notes}": booking.notes,
        "{event_type}": booking.event_type,
    }
    text = template
    for name, value in values.items():
        text = text.replace(name, value)
    return text.strip()


def draft(
    booking: Booking,
    event_type: EventType,
    calendars: Mapping[str, Calendar],
    addresses: Mapping[str, str],
    *,
    sequence: int = 0,
    organizer_copy: bool = True,
) -> EventDraft:
    """The event of ``booking``: the same draft for every calendar it goes
    into but for ``organizer_copy`` (false for a room's or a ``with``
    person's copy).  ``addresses`` maps calendar keys to email addresses
    where known."""

    def party(key: str) -> Attendee:
        calendar = calendars.get(key)
        name = calendar.name if calendar is not None and calendar.name else key
        return Attendee(name, addresses.get(key, ""), calendar=key)

    attendees = tuple(party(person) for person in booking.with_)
    if booking.attendee is not None:
        attendees = (booking.attendee, *attendees)
    rooms = tuple(party(room) for room in booking.rooms.values())
    return EventDraft(
        booking_id=booking.id,
        title=render(event_type.title, booking) or event_type.key,
        description=render(event_type.description, booking),
        start=booking.start,
        end=booking.end,
        location=", ".join(room.name for room in rooms),
        organizer=party(booking.owner),
        attendees=attendees,
        rooms=rooms,
        sequence=sequence,
        organizer_copy=organizer_copy,
    )
