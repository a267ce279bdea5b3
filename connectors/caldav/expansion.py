"""Expanding one UID's VEVENTs into instances (the rules are listed in
:mod:`connectors.caldav.ical`).

The master's recurrence set (DTSTART, RRULEs, RDATEs, minus EXDATEs and
EXRULEs, RFC 5545 §3.8.5) is built on the wall clock of its DTSTART; single
overrides replace their instance, and a ``RANGE=THISANDFUTURE`` override
reschedules every later instance by the same time difference and gives it
the same length (RFC 5545 §3.8.4.4) until a later override takes over.
Every instance keeps its own original start.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from connectors.caldav.timing import Rule, TimeValue, TimingError
from connectors.caldav.zones import WallClock
from engine.core.model import Interval

# Series are expanded a little past the window: an instance that starts
# after the window's end on one clock may start inside it on another.
_MARGIN = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Moment:
    """A time as written (``wall`` on ``clock``) and the instant it means."""

    wall: datetime
    clock: WallClock
    is_date: bool
    instant: datetime


def moment_at(wall: datetime, clock: WallClock, is_date: bool) -> Moment:
    return Moment(wall, clock, is_date, clock.to_utc(wall))


@dataclass(frozen=True, slots=True)
class Length:
    """How long an instance lasts: ``days`` and ``wall`` on the wall clock
    of its start, then ``exact`` on the instant."""

    days: int = 0
    wall: timedelta = timedelta(0)
    exact: timedelta = timedelta(0)

    def end_of(self, start: Moment) -> datetime:
        if not self.days and not self.wall:
            return start.instant + self.exact
        wall = start.wall + timedelta(days=self.days) + self.wall
        return start.clock.to_utc(wall) + self.exact


@dataclass(frozen=True, slots=True, kw_only=True)
class EventTiming:
    """What one VEVENT says about time."""

    uid: str
    rank: tuple[int, int]  # (SEQUENCE, position): the higher one wins a duplicate
    start: Moment
    length: Length
    rules: tuple[Rule, ...]
    exrules: tuple[Rule, ...]
    rdates: tuple[tuple[Moment, Length | None], ...]
    exdates: tuple[Moment, ...]
    recurrence_id: Moment | None
    this_and_future: bool
    busy: bool
    booking_id: str | None


Occurrence = tuple[datetime | None, datetime, datetime, EventTiming]  # original, start, end, by


def occurrences(events: list[EventTiming], window: Interval) -> Iterator[Occurrence]:
    masters = [e for e in events if e.recurrence_id is None]
    overrides: dict[object, EventTiming] = {}
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
        moved = moment_at(original.wall + shift, clock, original.is_date)
        yield (original.instant, moved.instant, future.length.end_of(moved), future)
    for key, event in overrides.items():
        if key not in series:  # overrides an instance the series lacks: still busy
            assert event.recurrence_id is not None
            yield _as_override(event.recurrence_id.instant, event)


def _wall_on(moment: Moment, clock: WallClock) -> datetime:
    """``moment`` on ``clock``'s wall: as written when it is that clock's
    (a time in a DST gap keeps its written value), else converted."""
    return moment.wall if moment.clock == clock else clock.to_wall(moment.instant)


def _as_override(original: datetime, event: EventTiming) -> Occurrence:
    return (original, event.start.instant, event.length.end_of(event.start), event)


def _match_key(moment: Moment, series_is_date: bool) -> object:
    """What EXDATE and RECURRENCE-ID compare by: the local date in a series
    of dates, the instant in a series of date-times."""
    if series_is_date:
        return moment.wall.date() if moment.is_date else moment.clock.to_wall(moment.instant).date()
    return moment.instant


def _recurrence_set(master: EventTiming, limit: datetime) -> dict[object, tuple[Moment, Length]]:
    """Original start and length of every instance starting up to ``limit``,
    by :func:`_match_key`, in order of start."""
    start = master.start
    through = start.clock.to_wall(limit) + timedelta(days=1)
    members: dict[object, tuple[Moment, Length]] = {}

    def add(member: Moment, length: Length) -> None:
        members.setdefault(_match_key(member, start.is_date), (member, length))

    add(start, master.length)  # DTSTART is the first instance (RFC 5545 §3.8.5.3)
    for rule in master.rules:
        for wall in _rule_walls(rule, start, through):
            add(moment_at(wall, start.clock, start.is_date), master.length)
    for rdate, period in master.rdates:
        if rdate.instant <= limit:
            add(rdate, period or master.length)
    excluded = {_match_key(m, start.is_date) for m in master.exdates}
    excluded_days = {m.wall.date() for m in master.exdates if m.is_date and not start.is_date}
    for rule in master.exrules:
        excluded.update(
            _match_key(moment_at(wall, start.clock, start.is_date), start.is_date)
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


def _rule_walls(rule: Rule, start: Moment, through: datetime) -> Iterator[datetime]:
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


def _past_until(wall: datetime, until: TimeValue, start: Moment) -> bool:
    if start.is_date or until.is_date:
        return wall.date() > until.wall.date()
    if until.utc:
        return start.clock.to_utc(wall) > until.wall.replace(tzinfo=UTC)
    return wall > until.wall  # a local UNTIL: on the series' own clock
