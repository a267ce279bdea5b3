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
compensated on its own.  A job is typed: its :class:`JobKind` and an
:class:`EventJob` payload (stored as JSON, validated when claimed) naming
the calendar, its role, the pool of a room, the account (so a throttled
account's jobs wait on their own), and ``sequence`` when an event written
earlier must be replaced in place.  Every job queued here also plans the
calendar's delivery record (``engine.store.deliveries``) in the same
transaction; a party the owner's provider invites itself gets a record
``invited`` and no job (its answer comes back on the owner's event).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.core.model import Attendee, Booking, Calendar, EventType, Pool
from engine.ports import EventDraft
from engine.services.sync import CalendarBinding
from engine.store import DeliveryHow, UnitOfWork


class JobKind(enum.StrEnum):
    """The outbox's job kinds (stored as these strings)."""

    WRITE = "write-event"  # the booking's event into the job's calendar
    DELETE = "delete-event"  # the booking's event out of the job's calendar


WRITE = JobKind.WRITE
DELETE = JobKind.DELETE

OWNER = "owner"
WITH = "with"
ROOM = "room"


class EventJob(BaseModel):
    """The payload of a write or delete job."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calendar: str = Field(min_length=1)
    role: Literal["owner", "with", "room"]
    pool: str = ""
    sequence: int = Field(default=0, ge=0)
    tried: tuple[str, ...] = ()  # rooms of the pool already given up for this booking
    account: str = ""

    @property
    def target(self) -> Target:
        return Target(self.calendar, self.role, self.pool)

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude_defaults=True, mode="json")

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
    accounts: Mapping[str, str] = field(default_factory=dict)  # calendar key -> account key


@dataclass(frozen=True, slots=True)
class Target:
    """One calendar a booking's event goes into."""

    calendar: str
    role: str
    pool: str = ""

    def job(self, catalog: Catalog, *, sequence: int = 0,
            tried: tuple[str, ...] = ()) -> EventJob:
        """The job payload; ``sequence`` above 0 replaces an event written
        before (with that iCalendar SEQUENCE)."""
        role: Any = self.role
        return EventJob(calendar=self.calendar, role=role, pool=self.pool, sequence=sequence,
                        tried=tried, account=catalog.accounts.get(self.calendar, ""))


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


def invitations(booking: Booking, delivers: Delivery = never_delivers) -> list[Target]:
    """The rooms and ``with`` people the owner's provider invites itself:
    attendees of the owner's event, no copy of calpool's."""
    found = [Target(room, ROOM, pool) for pool, room in booking.rooms.items()
             if delivers(booking.owner, room)]
    found += [Target(person, WITH) for person in booking.with_
              if delivers(booking.owner, person)]
    return found


def queue_write(uow: UnitOfWork, catalog: Catalog, booking: Booking, target: Target,
                now: datetime, *, sequence: int = 0, tried: tuple[str, ...] = ()) -> None:
    """Queue ``target``'s write and plan its delivery record; for the owner's
    copy, plan a record for every party it invites too."""
    uow.outbox.enqueue(WRITE, target.job(catalog, sequence=sequence, tried=tried).stored(),
                       due_at=now, now=now, booking_id=booking.id)
    uow.deliveries.plan(booking.id, target.calendar, DeliveryHow.WRITTEN, now)
    if target.role == OWNER:
        for invited in invitations(booking, catalog.delivers):
            uow.deliveries.plan(booking.id, invited.calendar, DeliveryHow.INVITED, now)


def queue_delete(uow: UnitOfWork, catalog: Catalog, booking: Booking, target: Target,
                 now: datetime) -> None:
    """Queue ``target``'s delete (its record says ``removed`` once done)."""
    uow.outbox.enqueue(DELETE, target.job(catalog).stored(), due_at=now, now=now,
                       booking_id=booking.id)


def queue_writes(uow: UnitOfWork, catalog: Catalog, booking: Booking, now: datetime, *,
                 sequence: int = 0) -> None:
    """Every write of ``booking`` (a new booking, or with ``sequence`` its
    event replaced everywhere it belongs)."""
    for target in targets(booking, catalog.delivers):
        queue_write(uow, catalog, booking, target, now, sequence=sequence)


def queue_removal(uow: UnitOfWork, catalog: Catalog, booking: Booking, now: datetime) -> None:
    """Every delete of ``booking`` (cancelled, or failed: compensation);
    the invitations go with the owner's event."""
    for target in targets(booking, catalog.delivers):
        queue_delete(uow, catalog, booking, target, now)


def next_sequence(uow: UnitOfWork, booking_id: str) -> int:
    """The SEQUENCE for replacing ``booking_id``'s event in place: above
    every earlier write of it (queued or recorded)."""
    queued = (EventJob.model_validate(job.payload).sequence
              for _, job in uow.outbox.for_booking(booking_id))
    recorded = (found.sequence for found in uow.deliveries.for_booking(booking_id))
    return 1 + max((*queued, *recorded), default=0)


def event_sequence(uow: UnitOfWork, booking_id: str, calendar: str) -> int:
    """The SEQUENCE of ``booking_id``'s event in ``calendar``: its delivery
    record's, or a write queued for it when that is higher (a reschedule
    whose write is still to come)."""
    record = uow.deliveries.of(booking_id, calendar)
    queued = (EventJob.model_validate(job.payload).sequence
              for _, job in uow.outbox.for_booking(booking_id)
              if job.payload.get("calendar") == calendar and "sequence" in job.payload)
    return max((record.sequence if record is not None else 0, *queued))


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
    delivers: Delivery = never_delivers,
) -> EventDraft:
    """The event of ``booking``: the same draft for every calendar it goes
    into but for ``organizer_copy`` (false for a room's or a ``with``
    person's copy), which alone invites the parties the owner's provider
    delivers to itself (``delivers``).  ``addresses`` maps calendar keys to
    email addresses where known."""

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
        notify_attendee=event_type.notify_attendee,
        invite=(tuple(party(t.calendar) for t in invitations(booking, delivers))
                if organizer_copy else ()),
    )
