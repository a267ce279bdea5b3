"""iCalendar objects in, busy instances out.

:func:`instances_in_window` parses one stored calendar object (one href) and
expands it inside a window with recurring-ical-events: RRULE, RDATE, EXDATE,
RECURRENCE-ID overrides, VTIMEZONE or a bare IANA TZID.  Floating times and
all-day dates are local to the calendar's zone (an all-day event is busy for
the whole local day or days).  TRANSP:TRANSPARENT and STATUS:CANCELLED (of the
event or of one instance) are reported with ``busy=False``.

An object calpool cannot read with certainty raises :class:`MalformedObject`
(the caller logs it with its href and skips it): a syntax error, a broken
date or rule, a missing DTSTART, or a TZID that is neither defined in the
object nor an IANA zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from engine.core.model import Interval, RemoteEvent
from engine.ports import instance_key

BOOKING_PROPERTY = "X-CALPOOL-BOOKING"

# Properties whose damage makes the instances uncertain; damage elsewhere
# (a broken DESCRIPTION, say) does not change when the event is busy.
_TIME_PROPERTIES = ("DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID")

# Floating times are read in the calendar's zone only after expansion, so
# expand over a window wide enough for any UTC offset, then cut exactly.
_MARGIN = timedelta(days=2)


class MalformedObject(ValueError):
    """The object cannot be read with certainty; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_calendar(data: str | bytes) -> icalendar.Calendar:
    """Parse and check one calendar object; raise :class:`MalformedObject`."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as exc:  # icalendar reports syntax errors as ValueError
        raise MalformedObject(f"not iCalendar: {exc}") from exc
    if not isinstance(calendar, icalendar.Calendar):
        raise MalformedObject("not one VCALENDAR")
    defined = {str(tz.get("TZID")) for tz in calendar.walk("VTIMEZONE")}
    for event in calendar.walk("VEVENT"):
        _check_event(event, defined)  # type: ignore[arg-type]  # walk() is typed loosely
    return calendar


def _check_event(event: icalendar.Event, defined_zones: set[str]) -> None:
    uid = str(event.get("UID", ""))
    for name, problem in event.errors:
        if name in _TIME_PROPERTIES:
            raise MalformedObject(f"event {uid!r}: {name}: {problem}")
    if "DTSTART" not in event:
        raise MalformedObject(f"event {uid!r} has no DTSTART")
    for name in _TIME_PROPERTIES:
        values = event.get(name)
        for value in values if isinstance(values, list) else [values]:
            tzid = getattr(value, "params", {}).get("TZID") if value is not None else None
            if tzid and tzid not in defined_zones and not _is_iana(tzid):
                raise MalformedObject(f"event {uid!r}: {name} names unknown zone {tzid!r}")


def _is_iana(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # invalid key, unknown zone, unreadable tzdata
        return False
    return True


def instances_in_window(
    data: str | bytes, *, source: str, etag: str, window: Interval, zone: str
) -> tuple[RemoteEvent, ...]:
    """The instances of one stored object that overlap ``window``, sorted by
    start; raise :class:`MalformedObject` when it cannot be read."""
    calendar = parse_calendar(data)
    local = ZoneInfo(zone)
    recurring = any(
        key in event
        for event in calendar.walk("VEVENT")
        for key in ("RRULE", "RDATE", "RECURRENCE-ID")
    )
    try:
        occurrences = recurring_ical_events.of(calendar, components=["VEVENT"]).between(
            window.start - _MARGIN, window.end + _MARGIN
        )
        found = [
            _to_remote(occ, source=source, etag=etag, local=local, recurring=recurring)
            for occ in occurrences
        ]
    except (ValueError, TypeError, AttributeError) as exc:
        # recurring-ical-events and icalendar raise these for content they
        # parsed but cannot expand (an invalid rule, a DTEND of another type)
        raise MalformedObject(f"cannot expand: {exc}") from exc
    return tuple(sorted((e for e in found if _inside(e, window)), key=_order))


def _order(event: RemoteEvent) -> tuple[datetime, str, str]:
    return (event.start, event.uid, event.instance)


def _inside(event: RemoteEvent, window: Interval) -> bool:
    if event.start == event.end:  # zero-length: inside when its instant is
        return window.start <= event.start < window.end
    return event.start < window.end and window.start < event.end


def _to_remote(
    occurrence: icalendar.Event, *, source: str, etag: str, local: tzinfo, recurring: bool
) -> RemoteEvent:
    start_value = _when(occurrence, "DTSTART")
    assert start_value is not None  # parse_calendar refused events without one
    start = _instant(start_value, local)
    end_value = _when(occurrence, "DTEND")
    if end_value is not None:
        end = _instant(end_value, local)
    elif isinstance(start_value, datetime):
        end = start  # RFC 5545 3.6.1: a date-time DTSTART alone takes no time
    else:
        end = _instant(start_value + timedelta(days=1), local)
    end = max(end, start)
    instance = ""
    if recurring:
        original = _when(occurrence, "RECURRENCE-ID") or start_value
        instance = instance_key(_instant(original, local))
    transparent = str(occurrence.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT"
    cancelled = str(occurrence.get("STATUS", "")).upper() == "CANCELLED"
    booking = occurrence.get(BOOKING_PROPERTY)
    return RemoteEvent(
        source=source,
        uid=str(occurrence.get("UID", "")),
        instance=instance,
        start=start,
        end=end,
        busy=not (transparent or cancelled),
        etag=etag,
        booking_id=str(booking) if booking is not None else None,
    )


def _when(component: icalendar.Component, name: str) -> date | None:
    """The date or date-time of property ``name`` (``None`` if absent)."""
    if name not in component:
        return None
    value = component.decoded(name)
    if not isinstance(value, date):  # datetime is a date too
        raise MalformedObject(f"{name} is not a date or date-time: {value!r}")
    return value


def _instant(value: date | datetime, local: tzinfo) -> datetime:
    """A UTC instant: aware times as they are; floating times and dates
    (midnight starting that day) in the calendar's zone."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=local)
    return value.astimezone(UTC)


def busy_intervals(events: Iterable[RemoteEvent]) -> tuple[Interval, ...]:
    """The busy events as sorted, merged intervals (zero-length ones drop)."""
    spans = sorted((e.start, e.end) for e in events if e.busy and e.end > e.start)
    merged: list[list[datetime]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple(Interval(start, end) for start, end in merged)
