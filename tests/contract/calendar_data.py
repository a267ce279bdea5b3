"""What the contract cases store and compare: a provider-neutral event
description that each provider's driver translates (CalDAV renders
iCalendar, the memory driver builds its objects), the window, small
builders and the comparison form of a change set."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from engine.core.model import Attendee, ChangeSet, Interval
from engine.ports import EventDraft

ZONE = "Europe/Berlin"
WINDOW = Interval(datetime(2027, 2, 1, tzinfo=UTC), datetime(2027, 5, 1, tzinfo=UTC))

When = datetime | date


@dataclass(frozen=True, kw_only=True)
class Override:
    """One occurrence of a series changed on its own (an iCalendar
    RECURRENCE-ID component, a Google/Graph exception instance): it replaces
    the occurrence the rule put at ``original_start``; its transparency and
    status are its own, not the series'."""

    original_start: When
    start: When
    end: When
    transparent: bool = False
    cancelled: bool = False


@dataclass(frozen=True, kw_only=True)
class Recurrence:
    """``rule`` as an RRULE value (``FREQ=DAILY;COUNT=3``), evaluated in the
    event's zone from its start; ``excluded`` are original starts the rule
    must skip (EXDATE); ``overrides`` change single occurrences."""

    rule: str
    excluded: tuple[When, ...] = ()
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True, kw_only=True)
class EventSpec:
    """An event as a person would enter it in any client.

    Times are wall-clock (naive) datetimes in ``zone``; ``zone=None`` makes
    them floating, local to whichever calendar holds the event (a provider
    without floating times stores them in the calendar's zone).  A UTC-aware
    datetime is an instant.  Dates make an all-day event (exclusive end).
    ``zone_definition`` asks an iCalendar rendering to define the zone with
    a VTIMEZONE rather than name it bare (other providers name IANA zones
    anyway and ignore it).
    """

    uid: str
    start: When
    end: When
    zone: str | None = ZONE
    summary: str = ""
    transparent: bool = False
    cancelled: bool = False
    recurrence: Recurrence | None = None
    zone_definition: bool = False

    @property
    def title(self) -> str:
        return self.summary or self.uid


def wall(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time (naive: local to the event's zone)."""
    return datetime(year, month, day, hour, minute)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def spec(
    uid: str,
    start: When,
    end: When,
    *,
    zone: str | None = ZONE,
    transparent: bool = False,
    cancelled: bool = False,
) -> EventSpec:
    return EventSpec(
        uid=uid, start=start, end=end, zone=zone, transparent=transparent, cancelled=cancelled
    )


def single(uid: str, start: When | None = None, end: When | None = None) -> EventSpec:
    """A plain event in Berlin, by default 1 March 2027 10:00-11:00."""
    return EventSpec(uid=uid, start=start or wall(2027, 3, 1, 10), end=end or wall(2027, 3, 1, 11))


def daily(
    uid: str,
    *overrides: Override,
    count: int = 3,
    excluded: tuple[When, ...] = (),
    zone_definition: bool = False,
) -> EventSpec:
    """Daily at 10:00-11:00 Berlin from 27 March 2027, across the DST change."""
    return EventSpec(
        uid=uid,
        start=wall(2027, 3, 27, 10),
        end=wall(2027, 3, 27, 11),
        recurrence=Recurrence(
            rule=f"FREQ=DAILY;COUNT={count}", excluded=excluded, overrides=overrides
        ),
        zone_definition=zone_definition,
    )


Row = tuple[str, datetime, datetime, bool]


def rows(changes: ChangeSet) -> dict[str, list[Row]]:
    """source → sorted (instance, start, end, busy) of a change set."""
    return {
        source: sorted((e.instance, e.start, e.end, e.busy) for e in instances)
        for source, instances in changes.objects.items()
    }


ROOM_MAILBOX = "spree@rooms.example"


def draft(
    booking_id: str = "bk-1", *, hour: int = 14, title: str = "Consultation",
    invite_room: bool = False,
) -> EventDraft:
    """A booking's event; with ``invite_room`` the room is a mailbox of the
    account that the provider invites itself (``EventDraft.invite``)."""
    room = Attendee("Spree", ROOM_MAILBOX if invite_room else "")
    return EventDraft(
        booking_id=booking_id,
        title=title,
        start=utc(2027, 3, 10, hour),
        end=utc(2027, 3, 10, hour, 30),
        organizer=Attendee("Alice", "alice@example.org"),
        attendees=(Attendee("Carol Customer", "carol@example.net"),),
        rooms=(room,),
        invite=(room,) if invite_room else (),
    )
