"""The demo's sample site: two people, three rooms in one pool, two event
types, busy events placed on the coming working days, and the config.

Busy time is laid out so that the slot answer shows pooled availability at
work: on the first working day (today, on a weekday), 10:00-11:00 has every
room taken although alice is free, so ``consultation`` offers nothing then;
``panel`` also needs bob, who is out of office all of the second day.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar

ZONE_NAME = "Europe/Berlin"
ZONE = ZoneInfo(ZONE_NAME)
ACCOUNT = "demo-dav"
POOL = "berlin-rooms"
EVENT_TYPES = ("consultation", "panel")


@dataclass(frozen=True, slots=True)
class SampleCalendar:
    key: str
    kind: str  # person | room
    name: str
    working_hours: str | None = None  # mon-fri hours of a person
    capacity: int | None = None


CALENDARS = (
    SampleCalendar("alice", "person", "Alice Adler", working_hours="09:00-17:00"),
    SampleCalendar("bob", "person", "Bob Brandt", working_hours="09:00-17:00"),
    SampleCalendar("room-rhine", "room", "Rhine (6 seats)", capacity=6),
    SampleCalendar("room-spree", "room", "Spree (4 seats)", capacity=4),
    SampleCalendar("room-elbe", "room", "Elbe (12 seats)", capacity=12),
)

ROOMS = tuple(calendar.key for calendar in CALENDARS if calendar.kind == "room")


@dataclass(frozen=True, slots=True)
class SampleEvent:
    """One calendar object to store on the CalDAV server."""

    calendar: str
    uid: str
    ics: bytes


def working_days(now: datetime, count: int) -> list[date]:
    """The next ``count`` Monday-to-Friday dates from today (local)."""
    day = now.astimezone(ZONE).date()
    found: list[date] = []
    while len(found) < count:
        if day.weekday() < 5:
            found.append(day)
        day += timedelta(days=1)
    return found


def sample_events(now: datetime) -> list[SampleEvent]:
    """Busy time on the coming working days: a few meetings per calendar, a
    recurring stand-up with one moved occurrence, and an all-day absence."""
    days = working_days(now, 3)
    first, second, third = days
    stamp = now.astimezone(ZONE)
    plain = [
        ("alice", "Customer call", first, "13:00", "14:30"),
        ("alice", "Quarterly review", third, "14:00", "17:00"),
        ("bob", "Dentist", first, "15:00", "16:00"),
        ("room-rhine", "Board meeting", first, "10:00", "12:00"),
        ("room-rhine", "Training", second, "09:00", "13:00"),
        ("room-spree", "Design review", first, "10:00", "11:00"),
        ("room-spree", "Interviews", first, "15:00", "17:00"),
        ("room-elbe", "All hands", first, "09:30", "12:00"),
        ("room-elbe", "Workshop", third, "10:00", "11:30"),
    ]
    events = [
        _single(calendar, f"demo-{index}", summary, _at(day, start), _at(day, end), stamp)
        for index, (calendar, summary, day, start, end) in enumerate(plain)
    ]
    events.append(_stand_up(first, second, stamp))
    events.append(_all_day("bob", "demo-bob-away", "Out of office", second, stamp))
    return events


def _at(day: date, clock: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(clock), ZONE)


def _event(uid: str, summary: str, stamp: datetime) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("summary", summary)
    return event


def _calendar(calendar: str, uid: str, *events: icalendar.Event) -> SampleEvent:
    document = icalendar.Calendar()
    document.add("prodid", "-//calpool//demo//EN")
    document.add("version", "2.0")
    for event in events:
        document.add_component(event)
    document.add_missing_timezones()  # a VTIMEZONE for Europe/Berlin
    return SampleEvent(calendar, uid, document.to_ical())


def _single(calendar: str, uid: str, summary: str, start: datetime, end: datetime,
            stamp: datetime) -> SampleEvent:
    event = _event(uid, summary, stamp)
    event.add("dtstart", start)
    event.add("dtend", end)
    return _calendar(calendar, uid, event)


def _stand_up(first: date, moved: date, stamp: datetime) -> SampleEvent:
    """alice's weekday stand-up at 09:00 for two weeks; the one on ``moved``
    takes place at 12:00 instead (an overridden occurrence)."""
    uid = "demo-alice-standup"
    master = _event(uid, "Team stand-up", stamp)
    master.add("dtstart", _at(first, "09:00"))
    master.add("dtend", _at(first, "09:30"))
    master.add("rrule", {"freq": "weekly", "byday": ["MO", "TU", "WE", "TH", "FR"],
                         "count": 10})
    exception = _event(uid, "Team stand-up (moved)", stamp)
    exception.add("recurrence-id", _at(moved, "09:00"))
    exception.add("dtstart", _at(moved, "12:00"))
    exception.add("dtend", _at(moved, "12:30"))
    return _calendar("alice", uid, master, exception)


def _all_day(calendar: str, uid: str, summary: str, day: date, stamp: datetime) -> SampleEvent:
    event = _event(uid, summary, stamp)
    event.add("dtstart", day)
    event.add("dtend", day + timedelta(days=1))
    return _calendar(calendar, uid, event)


def config_text(*, caldav_home: str, port: int, token_sha256: str) -> str:
    """The demo's calpool.toml: SQLite next to it, the HTTP hook on
    127.0.0.1:``port``, one token for every scope, a short poll interval so
    edits on the CalDAV server show up within seconds."""
    return "\n".join(_config_lines(caldav_home, port, token_sha256)) + "\n"


def _config_lines(caldav_home: str, port: int, token_sha256: str) -> Iterator[str]:
    quote = json.dumps  # a JSON string of printable ASCII is a TOML basic string
    yield "# Written by `calpool demo`; removed when the demo stops."
    yield from ("[daemon]", 'database = "sqlite:///calpool.db"',
                f"timezone = {quote(ZONE_NAME)}", 'log_level = "warning"', "")
    yield from ("[http]", f'listen = "127.0.0.1:{port}"', "")
    yield from ("[sync]", 'poll_interval = "10s"', 'window_future = "60d"', "")
    yield from ("[[api.tokens]]", 'name = "demo"', f"sha256 = {quote(token_sha256)}",
                'scopes = ["slots", "book", "admin"]', "")
    yield from (f"[accounts.{ACCOUNT}]", 'provider = "caldav"', f"url = {quote(caldav_home)}",
                "")
    for calendar in CALENDARS:
        yield f"[calendars.{calendar.key}]"
        yield f"account = {quote(ACCOUNT)}"
        yield f"id = {quote(calendar.key + '/')}"
        yield f"kind = {quote(calendar.kind)}"
        yield f"name = {quote(calendar.name)}"
        yield f"timezone = {quote(ZONE_NAME)}"
        if calendar.working_hours is not None:
            yield f"working_hours = {{ mon-fri = {quote(calendar.working_hours)} }}"
        if calendar.capacity is not None:
            yield f"capacity = {calendar.capacity}"
        yield ""
    members = ", ".join(quote(room) for room in ROOMS)
    yield from (f"[pools.{POOL}]", f"members = [{members}]", 'assignment = "longest_idle"',
                f"timezone = {quote(ZONE_NAME)}", "")
    yield from ("[event_types.consultation]", 'title = "Consultation with {attendee_name}"',
                'description = "Booked in the calpool demo. {notes}"', 'duration = "30m"',
                'owner = "alice"', f"pools = [{quote(POOL)}]", 'horizon = "30d"', "public = true",
                "")
    yield from ("[event_types.panel]", 'title = "Panel interview: {attendee_name}"',
                'duration = "60m"', 'step = "30m"', 'owner = "alice"', 'with = ["bob"]',
                f"pools = [{quote(POOL)}]", 'horizon = "30d"')
