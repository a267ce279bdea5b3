"""A week of free slots, grouped by day in the visitor's zone, as the
booking page and the manage page's reschedule picker show them.

Each radio's value is the slot's start exactly as the slots document
writes it in that zone (:class:`daemon.documents.IsoWriter`), so a page
and ``GET /v1/links/{token}/slots?timezone=`` agree to the character.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from daemon.documents import IsoWriter
from daemon.http.slot_query import parse_time
from engine.core.model import EventType, Interval
from engine.core.zones import UnknownZoneError, zone_info
from engine.services.availability import SlotService

WEEK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: str
    checked: bool


@dataclass(frozen=True, slots=True)
class Day:
    label: str
    choices: tuple[Choice, ...]


@dataclass(frozen=True, slots=True)
class Week:
    """One page of slots: ``days`` from ``first`` for seven days."""

    zone: str
    first: date
    days: tuple[Day, ...]
    previous: date | None
    following: date | None
    next_free: date | None
    """Without a slot this week: the next day that has one (within the horizon)."""


@cache
def zone_names() -> tuple[str, ...]:
    """The IANA zones the picker offers, sorted."""
    return tuple(sorted(name for name in available_timezones() if "/" in name or name == "UTC"))


def visitor_zone(asked: str | None, owner_zone: str) -> str:
    """The zone to show times in: ``asked`` when it is an IANA zone, else the owner's."""
    if asked:
        try:
            zone_info(asked)
        except (UnknownZoneError, ValueError):
            return owner_zone
        return asked
    return owner_zone


def week_of(slots: SlotService, event_type: EventType, zone: str, asked: str | None,
            now: datetime, *, chosen: str | None = None) -> Week:
    """The week starting on the local date ``asked`` (``YYYY-MM-DD``; default,
    and never before, today in ``zone``)."""
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    first = today
    if asked:
        try:
            first = max(today, date.fromisoformat(asked.strip()[:10]))
        except ValueError:
            first = today
    last_day = (now + event_type.horizon).astimezone(tz).date()
    first = min(first, last_day)
    begin = max(now, _midnight(first, tz))
    end = _midnight(first + WEEK, tz)
    answer = slots.slots(event_type.key, Interval(begin, end), now=now)
    write = IsoWriter(zone)
    grouped: dict[date, list[Choice]] = {}
    for slot in answer.slots:
        local = slot.start.astimezone(tz)
        value = write(slot.start)
        grouped.setdefault(local.date(), []).append(
            Choice(value, local.strftime("%H:%M"), value == chosen))
    days = tuple(Day(_day_label(day), tuple(choices)) for day, choices in grouped.items())
    next_free = None
    if not days and end < now + event_type.horizon:
        later = slots.slots(event_type.key, Interval(end, now + event_type.horizon), now=now)
        if later.slots:
            next_free = later.slots[0].start.astimezone(tz).date()
    previous = max(today, first - WEEK) if first > today else None
    following = first + WEEK if first + WEEK <= last_day else None
    return Week(zone, first, days, previous, following, next_free)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    # The first instant of the local day, as the slot query reads a date
    # (a zone may skip midnight).
    return parse_time(day.isoformat(), tz.key)


def _day_label(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def duration_text(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour" + ("s" if hours != 1 else ""))
    if minutes:
        parts.append(f"{minutes} minute" + ("s" if minutes != 1 else ""))
    return " ".join(parts) or "a moment"


def time_text(instant: datetime, zone: str) -> str:
    """An instant for people: ``Thursday 25 March 2027, 10:00 (Europe/Berlin)``."""
    local = instant.astimezone(ZoneInfo(zone))
    return f"{_day_label(local.date())}, {local:%H:%M} ({zone})"
