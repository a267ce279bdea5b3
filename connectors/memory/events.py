"""What the memory provider stores: plain event values, no wire format.

A provider that stores structured events (Google's and Graph's JSON, here
dataclasses) rather than iCalendar text holds, per calendar object:

- a UID, times as UTC-aware instants or, for an all-day event, dates (local
  to the calendar's zone, exclusive end, as RFC 5545 and Google's
  ``start.date`` / ``end.date`` have it);
- a series as its instances listed explicitly, each keyed by its original
  start, as a provider hands them out once it has expanded the rule
  (Google's ``singleEvents=true``, Graph's ``calendarView``): moving one
  occurrence changes its times and keeps its key, dropping one removes it;
- transparency and cancellation, for the event or one occurrence;
- the booking id calpool wrote the event for, and the participants with
  their answers.

Participants are where rooms answer invitations: the parties of a
draft's ``invite`` (rooms the owner's provider delivers to itself) are
written as needing action, and the room — a test, playing its booking
assistant — rewrites its answer (:meth:`MemoryProvider.answer`).  Rooms
calpool writes a copy for are written as accepted, as calpool reserved them
itself (the same reading as the CalDAV connector's ``PARTSTAT=ACCEPTED``).
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from engine.core.model import Attendee, AttendeeAnswer, as_utc
from engine.ports import EventDraft

When = datetime | date  # an aware instant, or a date for all-day


def _checked_span(start: When, end: When, *, what: str) -> tuple[When, When]:
    """``(start, end)`` normalised to UTC instants, or both dates; refuse a
    mix, a naive datetime and an end before the start."""
    start_is_instant, end_is_instant = isinstance(start, datetime), isinstance(end, datetime)
    if start_is_instant != end_is_instant:
        raise ValueError(f"{what}: start and end must both be instants or both be dates")
    if isinstance(start, datetime) and isinstance(end, datetime):
        start, end = as_utc(start, what=f"{what} start"), as_utc(end, what=f"{what} end")
    if end < start:  # the same type on both sides, checked above
        raise ValueError(f"{what}: ends before it starts ({start} > {end})")
    return start, end


class Role(enum.StrEnum):
    ORGANIZER = "organizer"
    REQUIRED = "required"
    RESOURCE = "resource"  # a room or other resource attendee


class Answer(enum.StrEnum):
    NEEDS_ACTION = "needs-action"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    TENTATIVE = "tentative"


@dataclass(frozen=True, slots=True, kw_only=True)
class Participant:
    """An organizer or attendee of an event and, for attendees, their answer."""

    name: str
    email: str
    role: Role = Role.REQUIRED
    answer: Answer = Answer.NEEDS_ACTION


@dataclass(frozen=True, slots=True, kw_only=True)
class Occurrence:
    """One instance of a series.  ``original_start`` is where the rule put it
    (its key, like a RECURRENCE-ID; a date for an all-day series); ``start``
    and ``end`` are where it is now.  ``transparent`` and ``cancelled`` of
    ``None`` follow the series."""

    original_start: When
    start: When
    end: When
    transparent: bool | None = None
    cancelled: bool | None = None

    def __post_init__(self) -> None:
        start, end = _checked_span(self.start, self.end, what="occurrence")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        if isinstance(self.original_start, datetime):
            original = as_utc(self.original_start, what="original start")
            object.__setattr__(self, "original_start", original)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryEvent:
    """One stored calendar object.

    A single event has no ``occurrences``; a series lists every one of them
    (then ``start``/``end`` are the series' first original times, kept as
    the provider would show the series, and reading goes by the
    occurrences).  ``transparent`` / ``cancelled`` hold for the event, or
    for every occurrence of the series that does not say otherwise.
    """

    uid: str
    start: When
    end: When
    summary: str = ""
    description: str = ""
    location: str = ""
    transparent: bool = False
    cancelled: bool = False
    occurrences: tuple[Occurrence, ...] = ()
    organizer: Participant | None = None
    attendees: tuple[Participant, ...] = ()
    booking_id: str | None = None
    sequence: int = 0

    def __post_init__(self) -> None:
        if not self.uid:
            raise ValueError("an event needs a UID")
        start, end = _checked_span(self.start, self.end, what=f"event {self.uid!r}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        keys = [o.original_start for o in self.occurrences]
        if len(set(keys)) != len(keys):
            raise ValueError(f"event {self.uid!r}: two occurrences share an original start")

    @property
    def is_series(self) -> bool:
        return bool(self.occurrences)

    @property
    def rooms(self) -> tuple[Participant, ...]:
        """The resource attendees (the seam for rooms that answer)."""
        return tuple(p for p in self.attendees if p.role is Role.RESOURCE)


# -- calpool's own events ----------------------------------------------------

_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")


def booking_object_id(booking_id: str) -> str:
    """The object id calpool writes a booking's event under: readable when
    the id is tame, else a digest; the same spelling as the CalDAV
    connector's resource names, so logs read alike across providers."""
    if _SAFE_ID.fullmatch(booking_id) and not booking_id.startswith("."):
        return f"calpool-{booking_id}"
    return "calpool-" + hashlib.sha256(booking_id.encode()).hexdigest()[:40]


def booking_uid(booking_id: str) -> str:
    """The UID of a booking's event in the owner's calendar (the one the
    attendee's invitation shows)."""
    return booking_object_id(booking_id) + "@calpool"


def copy_uid(booking_id: str, calendar_id: str) -> str:
    """The UID of a booking's copy in another calendar: its own, derived from
    the booking and the calendar, as the port asks (``EventDraft``)."""
    digest = hashlib.sha256(calendar_id.encode()).hexdigest()[:16]
    return f"{booking_object_id(booking_id)}-{digest}@calpool"


def _participant(person: Attendee, role: Role, answer: Answer) -> Participant:
    return Participant(name=person.name, email=person.email, role=role, answer=answer)


def event_from_draft(
    draft: EventDraft, calendar_id: str, *, answered: Mapping[str, Answer] | None = None
) -> MemoryEvent:
    """The event calpool stores for ``draft`` in ``calendar_id``: opaque,
    confirmed, carrying the booking id; people invited, rooms accepted
    (calpool reserved them) unless the provider invites them
    (``draft.invite``): those need action.  ``answered`` keeps the answers
    an update finds already given (by lower-case email), as a provider keeps
    an attendee's answer when the event is patched."""
    kept = answered or {}
    invited = {party.email.lower() for party in draft.invite if party.email}

    def answer(person: Attendee, default: Answer) -> Answer:
        email = person.email.lower()
        if email in invited:
            return kept.get(email, Answer.NEEDS_ACTION)
        return default

    people = tuple(
        _participant(p, Role.REQUIRED, answer(p, Answer.NEEDS_ACTION)) for p in draft.attendees
    )
    rooms = tuple(_participant(r, Role.RESOURCE, answer(r, Answer.ACCEPTED)) for r in draft.rooms)
    listed = {p.email.lower() for p in (*draft.attendees, *draft.rooms) if p.email}
    rooms += tuple(
        _participant(r, Role.RESOURCE, answer(r, Answer.NEEDS_ACTION))
        for r in draft.invite
        if r.email and r.email.lower() not in listed
    )
    organizer = draft.organizer
    return MemoryEvent(
        uid=(booking_uid(draft.booking_id) if draft.organizer_copy
             else copy_uid(draft.booking_id, calendar_id)),
        start=draft.start,
        end=draft.end,
        summary=draft.title,
        description=draft.description,
        location=draft.location,
        organizer=(_participant(organizer, Role.ORGANIZER, Answer.ACCEPTED) if organizer else None),
        attendees=people + rooms,
        booking_id=draft.booking_id,
        sequence=draft.sequence,
    )


_ANSWERS = {
    Answer.NEEDS_ACTION: AttendeeAnswer.NEEDS_ACTION,
    Answer.ACCEPTED: AttendeeAnswer.ACCEPTED,
    Answer.TENTATIVE: AttendeeAnswer.TENTATIVE,
    Answer.DECLINED: AttendeeAnswer.DECLINED,
}


def answers_of(event: MemoryEvent) -> dict[str, AttendeeAnswer]:
    """The attendees' answers by lower-case email (those with an address)."""
    return {p.email.lower(): _ANSWERS[p.answer] for p in event.attendees if p.email}


def given_answers(event: MemoryEvent) -> dict[str, Answer]:
    """The answers an update keeps: each attendee's, by lower-case email."""
    return {p.email.lower(): p.answer for p in event.attendees if p.email}


def same_booking(event: MemoryEvent, draft: EventDraft) -> bool:
    """Whether ``event`` is what writing ``draft`` stored (a retry after a
    crash): the comparison the CalDAV connector makes — booking, times and
    title; a description or attendee edit is not a different booking."""
    return (
        event.booking_id == draft.booking_id
        and not event.is_series
        and event.start == draft.start
        and event.end == draft.end
        and event.summary == draft.title
    )
