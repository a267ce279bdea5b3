"""Building iCalendar objects and reading them back, for the reader's tests."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.caldav.ical import instances_in_window
from engine.core.model import Interval, RemoteEvent

YEAR_2027 = Interval(datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def calendar(*lines: str) -> str:
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:t", *lines, "END:VCALENDAR", ""])


def vevent(*props: str, uid: str = "u1") -> tuple[str, ...]:
    return ("BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20270101T000000Z", *props, "END:VEVENT")


def read(text: str, *, zone: str = "UTC", window: Interval = YEAR_2027) -> tuple[RemoteEvent, ...]:
    return instances_in_window(text, source="/c/x.ics", etag='"1"', window=window, zone=zone)


def spans(
    text: str, *, zone: str = "UTC", window: Interval = YEAR_2027
) -> list[tuple[str, datetime, datetime, bool]]:
    return [(e.instance, e.start, e.end, e.busy) for e in read(text, zone=zone, window=window)]
