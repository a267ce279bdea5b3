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

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from connectors.caldav.content import Component, Property, parse_components
from connectors.caldav.timing import (
    Duration,
    Rule,
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

# Series are expanded a little past the window: an instance that starts
# after the window's end on one clock may start inside it on another.
_MARGIN = timedelta(days=2)


class MalformedObject(ValueError):
    """The object cannot be read with certainty; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Moment:
    """A time as written (``wall`` on ``clock``) and the instant it means."""

    wall: datetime
    clock: WallClock
    is_date: bool
    instant: datetime


def _moment(wall: datetime, clock: WallClock, is_date: bool) -> _Moment:
    return _Moment(wall, clock, is_date, clock.to_utc(wall))


@dataclass(frozen=True, slots=True)
class _Length:
    """How long an instance lasts: ``days`` and ``wall`` on the wall clock
    of its start, then ``exact`` on the instant."""

    days: int = 0
    wall: timedelta = timedelta(0)
    exact: timedelta = timedelta(0)

    def end_of(self, start: _Moment) -> datetime:
        if not self.days and not self.wall:
            return start.instant + self.exact
        wall = start.wall + timedelta(days=self.days) + self.wall
        return start.clock.to_utc(wall) + self.exact


@dataclass(frozen=True, slots=True, kw_only=True)
class _Event:
    """What one VEVENT says about time."""

    uid: str
    rank: tuple[int, int]  # (SEQUENCE, position): the higher one wins a duplicate
    start: _Moment
    length: _Length
    rules: tuple[Rule, ...]
    exrules: tuple[Rule, ...]
    rdates: tuple[tuple[_Moment, _Length | None], ...]
    exdates: tuple[_Moment, ...]
    recurrence_id: _Moment | None
    this_and_future: bool
    busy: bool
    booking_id: str | None


def instances_in_window(
    data: str | bytes, *, source: str, etag: str, window: Interval, zone: str
) -> tuple[RemoteEvent, ...]:
    """The instances of one stored object that overlap ``window``, sorted by
    start; raise :class:`MalformedObject` when its timing cannot be read."""
    calendars = [c for c in parse_components(data) if c.name == "VCALENDAR"]
    if len(calendars) != 1:
        raise MalformedObject("not one VCALENDAR")
    (calendar,) = calendars
    vtimezones: dict[str, Component] = {}
    for vtimezone in calendar.walk("VTIMEZONE"):
        tzid = vtimezone.first("TZID")
        if tzid is not None:
            vtimezones.setdefault(tzid.value.strip(), vtimezone)
    zones = ZoneTable(vtimezones, IanaClock(ZoneInfo(zone)))
    by_uid: dict[str, list[_Event]] = {}
    for position, component in enumerate(c for c in calendar.children if c.name == "VEVENT"):
        event = _read_event(component, zones, position)
        by_uid.setdefault(event.uid, []).append(event)
    prefix_uid = len(by_uid) > 1
    found: list[RemoteEvent] = []
    try:
        for uid, events in by_uid.items():
            for original, start, end, event in _occurrences(events, window):
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


def _read_event(component: Component, zones: ZoneTable, position: int) -> _Event:
    uid_prop = component.first("UID")
    uid = uid_prop.value.strip() if uid_prop is not None else ""
    try:
        return _timing_of(component, zones, uid, position)
    except (TimingError, OverflowError) as exc:  # OverflowError: a time at datetime's edge
        raise MalformedObject(f"event {uid!r}: {exc}") from exc


def _timing_of(component: Component, zones: ZoneTable, uid: str, position: int) -> _Event:
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
        length = _Length(days=1) if start.is_date else _Length()
    rdates: list[tuple[_Moment, _Length | None]] = []
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
    return _Event(
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


def _resolve(value: TimeValue, zones: ZoneTable) -> _Moment:
    if value.utc:
        clock: WallClock = UTC_CLOCK
    elif value.is_date:
        clock = zones.floating  # all-day: the calendar's local days
    else:
        clock = zones.clock(value.tzid)
    return _moment(value.wall, clock, value.is_date)


def _length_between(start: _Moment, end: _Moment) -> _Length:
    if start.is_date and end.is_date:
        return _Length(days=(end.wall - start.wall).days)
    if start.clock == end.clock:  # one clock: the difference on the wall, as a person sees it
        return _Length(wall=end.wall - start.wall)
    return _Length(exact=end.instant - start.instant)


def _length_of(duration: Duration) -> _Length:
    return _Length(days=duration.days, exact=duration.exact)


# -- expanding one UID -----------------------------------------------------

_Occurrence = tuple[datetime | None, datetime, datetime, _Event]  # original, start, end, by


def _occurrences(events: list[_Event], window: Interval) -> Iterator[_Occurrence]:
    masters = [e for e in events if e.recurrence_id is None]
    overrides: dict[object, _Event] = {}
    master = max(masters, key=lambda e: e.rank) if masters else None
    series_is_date = master.start.is_date if master is not None else False
    for event in events:
        if event.recurrence_id is not None:
            key = _match_key(event.recurrence_id, series_is_date)
            if key not in overrides or overrides[key].rank < event.rank:
                overrides[key] = event
    if master is None:
        for event in overrides.values():
            assert event.recurrence_id is not None
            yield _as_override(event.recurrence_id.instant, event)
        return
    if not (master.rules or master.rdates or overrides):
        yield (None, master.start.instant, master.length.end_of(master.start), master)
        return
    ranges = sorted(
        (e.recurrence_id.instant, e)
        for e in overrides.values()
        if e.this_and_future and e.recurrence_id is not None
    )
    # A THISANDFUTURE override that moves instances earlier pulls in some
    # that start after the window: expand that much further.
    pulled = max((rid - e.start.instant for rid, e in ranges), default=timedelta(0))
    limit = window.end + _MARGIN + max(pulled, timedelta(0))
    series = _recurrence_set(master, limit)
    range_starts = [rid for rid, _ in ranges]
    for key, (original, length) in series.items():
        if key in overrides:
            yield _as_override(original.instant, overrides[key])
            continue
        index = bisect.bisect_right(range_starts, original.instant)
        if index == 0:
            yield (original.instant, original.instant, length.end_of(original), master)
            continue
        _, future = ranges[index - 1]
        assert future.recurrence_id is not None
        clock = original.clock  # the series' wall clock decides the shift
        shift = _wall_on(future.start, clock) - _wall_on(future.recurrence_id, clock)
        moved = _moment(original.wall + shift, clock, original.is_date)
        yield (original.instant, moved.instant, future.length.end_of(moved), future)
    for key, event in overrides.items():
        if key not in series:  # overrides an instance the series lacks: still busy
            assert event.recurrence_id is not None
            yield _as_override(event.recurrence_id.instant, event)


def _wall_on(moment: _Moment, clock: WallClock) -> datetime:
    """``moment`` on ``clock``'s wall: as written when it is that clock's
    (a time in a DST gap keeps its written value), else converted."""
    return moment.wall if moment.clock == clock else clock.to_wall(moment.instant)


def _as_override(original: datetime, event: _Event) -> _Occurrence:
    return (original, event.start.instant, event.length.end_of(event.start), event)


def _match_key(moment: _Moment, series_is_date: bool) -> object:
    """What EXDATE and RECURRENCE-ID compare by: the local date in a series
    of dates, the instant in a series of date-times."""
    if series_is_date:
        return moment.wall.date() if moment.is_date else moment.clock.to_wall(moment.instant).date()
    return moment.instant


def _recurrence_set(master: _Event, limit: datetime) -> dict[object, tuple[_Moment, _Length]]:
    """Original start and length of every instance starting up to ``limit``,
    by :func:`_match_key`, in order of start."""
    start = master.start
    through = start.clock.to_wall(limit) + timedelta(days=1)
    members: dict[object, tuple[_Moment, _Length]] = {}

    def add(moment: _Moment, length: _Length) -> None:
        members.setdefault(_match_key(moment, start.is_date), (moment, length))

    add(start, master.length)  # DTSTART is the first instance (RFC 5545 §3.8.5.3)
    for rule in master.rules:
        for wall in _rule_walls(rule, start, through):
            add(_moment(wall, start.clock, start.is_date), master.length)
    for moment, period in master.rdates:
        if moment.instant <= limit:
            add(moment, period or master.length)
    excluded = {_match_key(m, start.is_date) for m in master.exdates}
    excluded_days = {m.wall.date() for m in master.exdates if m.is_date and not start.is_date}
    for rule in master.exrules:
        excluded.update(
            _match_key(_moment(wall, start.clock, start.is_date), start.is_date)
            for wall in _rule_walls(rule, start, through)
        )
    kept = {
        key: value
        for key, value in members.items()
        if key not in excluded and value[0].wall.date() not in excluded_days
    }
    return dict(sorted(kept.items(), key=lambda item: item[1][0].instant))


# A rule with more candidates than this before the window's end (a
# SECONDLY rule since 1970, say) is refused rather than expanded for minutes.
_MAX_CANDIDATES = 200_000


def _rule_walls(rule: Rule, start: _Moment, through: datetime) -> Iterator[datetime]:
    counted = 0
    for candidates, wall in enumerate(rule.walls(start.wall)):
        if candidates > _MAX_CANDIDATES:
            raise TimingError(f"more than {_MAX_CANDIDATES} instances of {rule.pattern!r}")
        if wall > through or (rule.until is not None and _past_until(wall, rule.until, start)):
            return
        if not start.is_date and wall != start.wall and not start.clock.exists(wall):
            continue  # RFC 5545 §3.3.10: a local time that does not exist is no instance
        counted += 1
        if rule.count is not None and counted > rule.count:
            return
        yield wall


def _past_until(wall: datetime, until: TimeValue, start: _Moment) -> bool:
    if start.is_date or until.is_date:
        return wall.date() > until.wall.date()
    if until.utc:
        return start.clock.to_utc(wall) > until.wall.replace(tzinfo=UTC)
    return wall > until.wall  # a local UNTIL: on the series' own clock


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
