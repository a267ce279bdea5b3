"""iCalendar objects in, busy instances out.

:func:`instances_in_window` reads one stored calendar object (one href) and
expands it inside a window: RRULE, RDATE, EXDATE, RECURRENCE-ID overrides
with ``RANGE=THISANDFUTURE``, the object's own VTIMEZONEs or IANA TZIDs
(:mod:`connectors.caldav.zones`).  TRANSP:TRANSPARENT and STATUS:CANCELLED
(of the event or of one instance) are reported with ``busy=False``.

The rules calpool reads by, where RFC 5545 leaves room:

- Floating times and all-day dates are local to the calendar's configured
  zone (an all-day event is busy for the whole local day or days).
  ``X-WR-TIMEZONE`` is not RFC 5545 and is ignored: the configured zone is
  the operator's statement about the calendar.
- Each instance of a series is keyed by its own original start
  (RFC 5545 §3.8.4.4), also when a THISANDFUTURE override moved it; keys are
  unique within the object (an object holding several UIDs, which RFC 4791
  §4.1 forbids, prefixes each key with its UID).
- A THISANDFUTURE override shifts every later instance by the override's
  move on the series' wall clock and gives it the override's length and
  properties, until a later override takes over.
- An RRULE instance whose local time falls in a DST gap is neither an
  instance nor counted (RFC 5545 §3.3.10); DTSTART, RDATE and overrides in
  a gap take the offset before it (§3.3.5).
- An end before the start (RFC 5545 §3.8.2.2 forbids it) is read as the
  two swapped: the time between them stays busy.
- With both DTEND and DURATION (forbidden by §3.6.1), DTEND decides.

Only what decides busy time is read — DTSTART, DTEND, DURATION, RRULE,
EXRULE, RDATE, EXDATE, RECURRENCE-ID and its RANGE, TRANSP, STATUS, the
VTIMEZONEs the times name — and leniently where the meaning is plain (blanks
around a value, an empty ``TZID=``); a defect anywhere else (a VALARM's
``TRIGGER:PT-2H``, a broken DESCRIPTION) changes nothing.  An object whose
timing cannot be read raises :class:`MalformedObject` (the caller logs it
with its href and skips it).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from connectors.caldav.content import Component, Property, parse_components
from connectors.caldav.expansion import EventTiming, Length, Moment, moment_at, occurrences
from connectors.caldav.timing import (
    Duration,
    TimeValue,
    TimingError,
    read_duration,
    read_list,
    read_rule,
    read_single,
)
from connectors.caldav.zones import UTC_CLOCK, IanaClock, WallClock, ZoneTable
from engine.core.model import Interval, RemoteEvent
from engine.ports import instance_key

BOOKING_PROPERTY = "X-CALPOOL-BOOKING"

# Lines of these names that do not even split make the instances uncertain.
_TIME_PROPERTIES = (
    "DTSTART", "DTEND", "DURATION", "RRULE", "EXRULE", "RDATE", "EXDATE", "RECURRENCE-ID",
)  # fmt: skip


# Every property this module reads outside VTIMEZONEs: the parser splits no
# other line (the fast path of objects full of DESCRIPTION and ATTENDEE lines).
READ_PROPERTIES = frozenset({
    *_TIME_PROPERTIES, "UID", "TRANSP", "STATUS", "SEQUENCE", "TZID", BOOKING_PROPERTY,
})


class MalformedObject(ValueError):
    """The object cannot be read with certainty; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def instances_in_window(
    data: str | bytes, *, source: str, etag: str, window: Interval, zone: str,
    reference: bool = False,
) -> tuple[RemoteEvent, ...]:
    """The instances of one stored object that overlap ``window``, sorted by
    start; raise :class:`MalformedObject` when its timing cannot be read.

    The object is read on the fast path: only the lines of
    :data:`READ_PROPERTIES` are split, plain ones without icalendar.
    ``reference=True`` reads it the slow, obvious way (every line split by
    icalendar); both give the same instances, a differential test checks."""
    components = parse_components(data, keep=None if reference else READ_PROPERTIES,
                                  reference=reference)
    calendars = [c for c in components if c.name == "VCALENDAR"]
    if len(calendars) != 1:
        raise MalformedObject("not one VCALENDAR")
    (calendar,) = calendars
    vtimezones: dict[str, Component] = {}
    for vtimezone in calendar.walk("VTIMEZONE"):
        tzid = vtimezone.first("TZID")
        if tzid is not None:
            vtimezones.setdefault(tzid.value.strip(), vtimezone)
    zones = ZoneTable(vtimezones, IanaClock(ZoneInfo(zone)))
    by_uid: dict[str, list[EventTiming]] = {}
    for position, component in enumerate(c for c in calendar.children if c.name == "VEVENT"):
        event = _read_event(component, zones, position)
        by_uid.setdefault(event.uid, []).append(event)
    prefix_uid = len(by_uid) > 1
    found: list[RemoteEvent] = []
    try:
        for uid, events in by_uid.items():
            for original, start, end, event in occurrences(events, window):
                key = instance_key(original) if original is not None else ""
                found.append(
                    RemoteEvent(
                        source=source,
                        uid=uid,
                        instance=f"{uid} {key}" if prefix_uid else key,
                        start=min(start, end),  # an end before the start: swapped
                        end=max(start, end),
                        busy=event.busy,
                        etag=etag,
                        booking_id=event.booking_id,
                    )
                )
    except (TimingError, OverflowError) as exc:  # a rule or a time beyond datetime's range
        raise MalformedObject(f"cannot expand: {exc}") from exc
    return tuple(sorted((e for e in found if _inside(e, window)), key=_order))


def _order(event: RemoteEvent) -> tuple[datetime, str, str]:
    return (event.start, event.uid, event.instance)


def _inside(event: RemoteEvent, window: Interval) -> bool:
    if event.start == event.end:  # zero-length: inside when its instant is
        return window.start <= event.start < window.end
    return event.start < window.end and window.start < event.end


# -- reading one VEVENT ----------------------------------------------------


def _read_event(component: Component, zones: ZoneTable, position: int) -> EventTiming:
    uid_prop = component.first("UID")
    uid = uid_prop.value.strip() if uid_prop is not None else ""
    try:
        return _timing_of(component, zones, uid, position)
    except (TimingError, OverflowError) as exc:  # OverflowError: a time at datetime's edge
        raise MalformedObject(f"event {uid!r}: {exc}") from exc


def _timing_of(component: Component, zones: ZoneTable, uid: str, position: int) -> EventTiming:
    broken = [name for name in component.unreadable if name in _TIME_PROPERTIES]
    if broken:
        raise TimingError(f"{broken[0]} does not parse")
    start_prop = _single(component, "DTSTART")
    if start_prop is None:
        raise TimingError("no DTSTART")
    start = _resolve(read_single(start_prop), zones)
    end_prop, duration_prop = _single(component, "DTEND"), _single(component, "DURATION")
    if end_prop is not None:
        length = _length_between(start, _resolve(read_single(end_prop), zones))
    elif duration_prop is not None:
        length = _length_of(read_duration(duration_prop.value))
    else:  # RFC 5545 §3.6.1: a date lasts the day, a date-time alone takes no time
        length = Length(days=1) if start.is_date else Length()
    rdates: list[tuple[Moment, Length | None]] = []
    for prop in component.all("RDATE"):
        for value in read_list(prop):
            if isinstance(value, tuple):
                period_start = _resolve(value[0], zones)
                other = value[1]
                period = (
                    _length_of(other)
                    if isinstance(other, Duration)
                    else _length_between(period_start, _resolve(other, zones))
                )
                rdates.append((period_start, period))
            else:
                rdates.append((_resolve(value, zones), None))
    exdates = [
        _resolve(value, zones)
        for prop in component.all("EXDATE")
        for value in read_list(prop)
        if not isinstance(value, tuple)
    ]
    recurrence_prop = _single(component, "RECURRENCE-ID")
    recurrence_id = _resolve(read_single(recurrence_prop), zones) if recurrence_prop else None
    this_and_future = (
        recurrence_prop is not None
        and (recurrence_prop.param("RANGE") or "").strip().upper() == "THISANDFUTURE"
    )
    return EventTiming(
        uid=uid,
        rank=(_sequence(component), position),
        start=start,
        length=length,
        rules=tuple(read_rule(p.value) for p in component.all("RRULE")),
        exrules=tuple(read_rule(p.value) for p in component.all("EXRULE")),
        rdates=tuple(rdates),
        exdates=tuple(exdates),
        recurrence_id=recurrence_id,
        this_and_future=this_and_future,
        busy=not (
            _word(component, "TRANSP") == "TRANSPARENT" or _word(component, "STATUS") == "CANCELLED"
        ),
        booking_id=_text(component, BOOKING_PROPERTY),
    )


def _single(component: Component, name: str) -> Property | None:
    props = component.all(name)
    if len({(p.params, p.value.strip()) for p in props}) > 1:
        raise TimingError(f"{name} is given {len(props)} times, differently")
    return props[0] if props else None


def _word(component: Component, name: str) -> str:
    prop = component.first(name)
    return prop.value.strip().upper() if prop is not None else ""


def _text(component: Component, name: str) -> str | None:
    prop = component.first(name)
    return prop.value if prop is not None else None


def _sequence(component: Component) -> int:
    text = _word(component, "SEQUENCE")
    return int(text) if text.isdigit() else 0  # does not decide busy time: lenient


def _resolve(value: TimeValue, zones: ZoneTable) -> Moment:
    if value.utc:
        clock: WallClock = UTC_CLOCK
    elif value.is_date:
        clock = zones.floating  # all-day: the calendar's local days
    else:
        clock = zones.clock(value.tzid)
    return moment_at(value.wall, clock, value.is_date)


def _length_between(start: Moment, end: Moment) -> Length:
    if start.is_date and end.is_date:
        return Length(days=(end.wall - start.wall).days)
    if start.clock == end.clock:  # one clock: the difference on the wall, as a person sees it
        return Length(wall=end.wall - start.wall)
    return Length(exact=end.instant - start.instant)


def _length_of(duration: Duration) -> Length:
    return Length(days=duration.days, exact=duration.exact)


def busy_intervals(events: Iterable[RemoteEvent]) -> tuple[Interval, ...]:
    """The busy events as sorted, merged intervals (zero-length ones drop)."""
    spans = sorted((e.start, e.end) for e in events if e.busy and e.end > e.start)
    merged: list[list[datetime]] = []
    for begin, end in spans:
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    return tuple(Interval(begin, end) for begin, end in merged)
