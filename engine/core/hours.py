"""Working hours and the step grid, evaluated in a calendar's own zone.

Both are defined day by day on local dates, so they follow DST: a
09:00–17:00 day is 7 real hours on a spring-forward day whose gap falls
inside it and 9 on a fall-back day whose fold does.  Boundaries in a gap
or fold map to instants as :mod:`engine.core.zones` documents.
"""

from __future__ import annotations

from datetime import date, time, timedelta

import numpy as np

from engine.core.intervals import Instants, IntervalSet
from engine.core.model import Calendar, WorkingHours
from engine.core.zones import DAY_US, Boundary, LocalDay, local_days, wall_us


def working_time(hours: WorkingHours, zone: str, start_us: int, end_us: int) -> IntervalSet:
    """The instants of ``[start, end)`` inside ``hours`` read in ``zone``.

    Each range of a local date (its override if it has one, else its
    weekday's ranges) becomes ``[first instant of start, last instant of
    end)``; ``end`` of midnight is the start of the next local date.
    """
    starts: list[int] = []
    ends: list[int] = []
    for day in local_days(zone, start_us, end_us):
        for local in hours.ranges_on(day.day):
            starts.append(day.boundary(wall_us(local.start), Boundary.FIRST))
            end_wall = DAY_US if local.end == time(0) else wall_us(local.end)
            ends.append(day.boundary(end_wall, Boundary.LAST))
    return IntervalSet(starts, ends).clip(start_us, end_us)


def calendar_time(calendar: Calendar, start_us: int, end_us: int) -> IntervalSet | None:
    """The working time of ``calendar`` within ``[start, end)``, or ``None``
    when the calendar has no working hours (always available)."""
    if calendar.working_hours is None:
        return None
    return working_time(calendar.working_hours, calendar.timezone, start_us, end_us)


def _day_grid(day: LocalDay, step_us: int) -> Instants:
    walls = np.arange(0, DAY_US, step_us, dtype=np.int64)
    if not day.has_transition:
        return walls + (day.base - day.offset_before)
    # In a fold both occurrences of each wall time come out together;
    # sorting puts the first pass through the fold before the second.
    points = [t for wall in walls.tolist() for t in day.instants(wall)]
    return np.sort(np.array(points, dtype=np.int64))


def grid(zone: str, step: timedelta, start_us: int, end_us: int) -> tuple[Instants, Instants]:
    """The grid points in ``[start, end)`` and the local date (proleptic
    ordinal) each belongs to, in order.

    The grid of a local date is every instant whose wall time there is
    midnight + k × ``step`` (k ≥ 0, within the day): none for a wall time
    in a gap, both occurrences for one in a fold.  Wall-clock points keep
    the same labels every day even when the step does not divide a shift
    (Lord Howe's 30 minutes with a 45-minute step).
    """
    step_us = step // timedelta(microseconds=1)
    points: list[Instants] = []
    days: list[Instants] = []
    for day in local_days(zone, start_us, end_us):
        instants = _day_grid(day, step_us)
        instants = instants[(instants >= start_us) & (instants < end_us)]
        points.append(instants)
        days.append(np.full(instants.size, day.day.toordinal(), dtype=np.int64))
    return np.concatenate(points), np.concatenate(days)


def on_grid(zone: str, step: timedelta, start_us: int) -> bool:
    """Whether ``start`` is a grid point of ``zone`` for ``step``."""
    day = local_days(zone, start_us, start_us + 1)[0]
    step_us = step // timedelta(microseconds=1)
    wall = _wall_of(day, start_us)
    return wall % step_us == 0 and wall < DAY_US


def _wall_of(day: LocalDay, instant_us: int) -> int:
    # The wall time of an instant within its own local day: the offset in
    # force is the one before the transition until it happens.
    offset = day.offset_before
    if day.transition is not None and instant_us >= day.transition:
        offset = day.offset_after
    return instant_us + offset - day.base


def local_ordinal(zone: str, instant_us: int) -> int:
    """The proleptic ordinal of the local date of an instant."""
    return date.toordinal(local_days(zone, instant_us, instant_us + 1)[0].day)
