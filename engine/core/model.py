"""The domain model: plain frozen values, aware datetimes only.

Instants are UTC-aware ``datetime`` values inside the engine; local rules
(working hours, the step grid, reporting cycles) are evaluated in the IANA
zone of the calendar or pool they belong to.  Every constructor refuses a
naive datetime, so a local wall-clock time cannot leak in as an instant.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class NaiveDatetimeError(ValueError):
    """A datetime without tzinfo reached the engine."""


def as_utc(value: datetime, *, what: str = "datetime") -> datetime:
    """Return ``value`` converted to UTC; refuse naive datetimes."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise NaiveDatetimeError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _frozen_mapping(value: Mapping[K, V]) -> Mapping[K, V]:
    return MappingProxyType(dict(value))


class CalendarKind(enum.StrEnum):
    PERSON = "person"
    ROOM = "room"


@dataclass(frozen=True, slots=True, order=True)
class LocalRange:
    """A wall-clock range ``[start, end)`` within one local day; ``end`` of
    ``time(0)`` means midnight at the end of the day."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.end != time(0) and self.end <= self.start:
            raise ValueError(f"local range {self.start}-{self.end} ends before it starts")


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """Weekly hours (Monday = 0) plus per-date overrides.

    A weekday missing from ``weekly`` has no hours.  An override replaces the
    weekly hours of that date; an empty tuple means a day off.
    """

    weekly: Mapping[int, tuple[LocalRange, ...]]
    overrides: Mapping[date, tuple[LocalRange, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for weekday in self.weekly:
            if not 0 <= weekday <= 6:
                raise ValueError(f"weekday {weekday} is not in 0..6")
        object.__setattr__(self, "weekly", _frozen_mapping(self.weekly))
        object.__setattr__(self, "overrides", _frozen_mapping(self.overrides))

    def ranges_on(self, day: date) -> tuple[LocalRange, ...]:
        if day in self.overrides:
            return self.overrides[day]
        return self.weekly.get(day.weekday(), ())


@dataclass(frozen=True, slots=True)
class Calendar:
    """A person's or a room's calendar as the engine sees it.

    ``working_hours`` of ``None`` means always available.
    """

    key: str
    kind: CalendarKind
    timezone: str
    working_hours: WorkingHours | None = None
    name: str = ""
    capacity: int | None = None


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """A half-open span ``[start, end)`` of UTC instants."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start, what="interval start"))
        object.__setattr__(self, "end", as_utc(self.end, what="interval end"))
        if self.end < self.start:
            raise ValueError(f"interval ends before it starts: {self.start} > {self.end}")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


class AssignmentMethod(enum.StrEnum):
    LONGEST_IDLE = "longest_idle"
    PRIORITY = "priority"
    ROUND_ROBIN = "round_robin"
    LEAST_BOOKED = "least_booked"
    RANDOM = "random"


class ReportingCycle(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class Pool:
    """Interchangeable rooms; ``members`` in priority (config) order."""

    key: str
    members: tuple[str, ...]
    assignment: AssignmentMethod = AssignmentMethod.LONGEST_IDLE
    reporting_cycle: ReportingCycle = ReportingCycle.MONTH
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventType:
    key: str
    title: str
    description: str = ""
    duration: timedelta
    step: timedelta
    owner: str
    with_: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    min_notice: timedelta = timedelta(0)
    horizon: timedelta = timedelta(days=60)
    max_per_day: int = 0
    live_recheck: bool = False
    change_notice: timedelta = timedelta(0)
    """The customer may cancel or reschedule until this long before the start."""
    public: bool = False
    """Customers may book at ``/meet/<key>`` without a link."""
    notify_attendee: bool = True
    """The owner's provider invites the attendee (Google ``sendUpdates``,
    Exchange); when false, calpool's email carries the invitation."""

    def __post_init__(self) -> None:
        if self.duration <= timedelta(0):
            raise ValueError("duration must be positive")
        if self.step <= timedelta(0):
            raise ValueError("step must be positive")
        if min(self.buffer_before, self.buffer_after, self.min_notice) < timedelta(0):
            raise ValueError("buffers and minimum notice must not be negative")

    @property
    def persons(self) -> tuple[str, ...]:
        """The owner first, then the ``with`` people."""
        return (self.owner, *self.with_)


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable start; ``rooms_available`` lists the free members of each
    pool in the pool's member order."""

    start: datetime
    end: datetime
    rooms_available: Mapping[str, tuple[str, ...]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start, what="slot start"))
        object.__setattr__(self, "end", as_utc(self.end, what="slot end"))
        object.__setattr__(self, "rooms_available", _frozen_mapping(self.rooms_available))


class BookingStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_active(self) -> bool:
        """Active bookings hold their reservations and count as busy."""
        return self in (BookingStatus.PENDING, BookingStatus.CONFIRMED)


class AttendeeAnswer(enum.StrEnum):
    """An attendee's answer to an invitation (iCalendar PARTSTAT, Google
    ``responseStatus``, Graph ``status.response``), as calpool names it."""

    NEEDS_ACTION = "needs_action"
    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"


@dataclass(frozen=True, slots=True)
class Attendee:
    """A party of a booking's event.  ``calendar`` is the calendar key when
    the party is one of calpool's calendars (the owner, a room, a ``with``
    person), ``""`` for the customer; a connector names a party without an
    email address by it."""

    name: str
    email: str
    calendar: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Booking:
    """A booking as the engine needs it: for busy time, daily limits and the
    assignment history of pools.  ``booked_at`` is when it was reserved."""

    id: str
    event_type: str
    start: datetime
    end: datetime
    owner: str
    with_: tuple[str, ...] = ()
    rooms: Mapping[str, str] = field(default_factory=dict)
    status: BookingStatus = BookingStatus.PENDING
    booked_at: datetime
    attendee: Attendee | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start, what="booking start"))
        object.__setattr__(self, "end", as_utc(self.end, what="booking end"))
        object.__setattr__(self, "booked_at", as_utc(self.booked_at, what="booking time"))
        object.__setattr__(self, "rooms", _frozen_mapping(self.rooms))
        if self.end <= self.start:
            raise ValueError("booking must end after it starts")

    @property
    def calendars(self) -> tuple[str, ...]:
        """Every calendar this booking reserves: owner, ``with`` people, rooms."""
        return (self.owner, *self.with_, *self.rooms.values())

    @property
    def interval(self) -> Interval:
        return Interval(self.start, self.end)


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteEvent:
    """One event, or one expanded instance of a recurring event, as a
    connector reports it.

    ``source`` is the provider's id of the stored object within its calendar
    (the CalDAV href, the Google or Graph event id); one object may yield many
    instances.  ``instance`` is ``""`` for a single event and the original
    start of the occurrence (UTC, ISO 8601) for an instance of a series, so
    ``(source, instance)`` identifies a row of the cache.  ``uid`` is the
    iCalendar UID (Graph: iCalUId).  ``answers`` are the attendees' answers
    by lower-case email address, where the provider reports them (an
    invited room's accept or decline comes back through sync this way).
    ``booking_id`` is set when calpool wrote
    the event (CalDAV: ``X-CALPOOL-BOOKING``), so its own bookings coming back
    through sync are recognised by it — not by the UID, which differs per
    calendar copy (each copy's UID is derived from the booking and the
    calendar; the owner's copy keeps the UID the attendee sees).
    """

    source: str
    uid: str
    instance: str = ""
    start: datetime
    end: datetime
    busy: bool = True
    etag: str = ""
    booking_id: str | None = None
    answers: Mapping[str, AttendeeAnswer] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start, what="event start"))
        object.__setattr__(self, "end", as_utc(self.end, what="event end"))
        object.__setattr__(self, "answers", _frozen_mapping(
            {email.lower(): answer for email, answer in self.answers.items()}))

    @property
    def identity(self) -> tuple[str, str]:
        return (self.source, self.instance)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeSet:
    """What a connector saw of one calendar since a cursor, with the cursor
    to resume from.

    ``objects`` maps a source id to all of its instances inside the sync
    window as they are now; an empty tuple means the object is gone (deleted,
    or moved out of the window).  Applying replaces every cached instance of
    each listed source.  When ``full`` is true the change set is the whole
    state of the window: every cached source not listed is gone too.

    ``unreadable`` maps a source the connector fetched but could not read
    (its timing is malformed) to the reason; such a source is reported gone
    (listed without instances, or left out of a full listing), so its busy
    time is unknown to calpool, which is why the count should be shown.
    """

    cursor: str
    objects: Mapping[str, tuple[RemoteEvent, ...]]
    full: bool = False
    unreadable: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", _frozen_mapping(self.objects))
        object.__setattr__(self, "unreadable", _frozen_mapping(self.unreadable))
