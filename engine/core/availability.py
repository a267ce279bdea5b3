"""When can one calendar start a meeting: start spans and the grid sweep.

A meeting of duration ``d`` with buffers ``before``/``after`` may start at
``s`` on a calendar when ``[s, s + d)`` lies inside its working time and
``[s - before, s + d + after)`` meets none of its busy time.  In *start
space* that is:

- a working span ``[x, y)`` allows the starts ``[x, y - d]``;
- a busy span ``[a, b)`` forbids the starts ``(a - d - after, b + before)``.

:func:`sweep` maps the start spans of many calendars onto one sorted array
of candidate starts (the grid) with ``searchsorted`` and counts coverage
with a difference array per calendar, so the cost is linear in the spans
and the grid after one sort: a start is free on a calendar exactly when no
busy span and, if the calendar has hours, at least one working span covers
it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import numpy.typing as npt

from engine.core.busy import BusyTimeline
from engine.core.hours import calendar_time
from engine.core.intervals import Instants
from engine.core.model import Booking, Calendar
from engine.core.zones import duration_us, to_us


class MissingCalendarError(ValueError):
    """A calendar named by an event type or pool was not supplied."""

    def __init__(self, calendar: str, what: str) -> None:
        super().__init__(f"no {what} for calendar {calendar!r}")
        self.calendar = calendar
        self.what = what


@dataclass(frozen=True, slots=True)
class Fit:
    """The footprint of a meeting in µs: its duration and buffers."""

    duration: int
    before: int
    after: int

    @classmethod
    def of(cls, duration: timedelta, before: timedelta, after: timedelta) -> Fit:
        return cls(duration_us(duration), duration_us(before), duration_us(after))


@dataclass(frozen=True, slots=True)
class StartSpans:
    """One calendar's start spans (``[start, end)`` in µs): ``blocked``
    spans forbid a start; ``allowed`` (``None``: no working hours, always
    available) spans are the only starts that fit working time."""

    blocked_starts: Instants
    blocked_ends: Instants
    allowed_starts: Instants | None = None
    allowed_ends: Instants | None = None


_EMPTY = np.empty(0, dtype=np.int64)


class BookedTime:
    """Active (pending or confirmed) bookings as busy spans per calendar."""

    def __init__(self, bookings: Sequence[Booking]) -> None:
        spans: dict[str, list[tuple[int, int]]] = {}
        for booking in bookings:
            if not booking.status.is_active:
                continue
            span = (to_us(booking.start), to_us(booking.end))
            for key in dict.fromkeys(booking.calendars):
                spans.setdefault(key, []).append(span)
        self._spans = {
            key: (np.array([s for s, _ in pairs], dtype=np.int64),
                  np.array([e for _, e in pairs], dtype=np.int64))
            for key, pairs in spans.items()
        }

    def of(self, calendar: str) -> tuple[Instants, Instants]:
        return self._spans.get(calendar, (_EMPTY, _EMPTY))


def start_spans(
    calendar: Calendar,
    *,
    busy: BusyTimeline,
    booked: BookedTime,
    fit: Fit,
    first: int,
    last: int,
    hours: bool = True,
    busy_time: bool = True,
) -> StartSpans:
    """The start spans of ``calendar`` relevant to starts in ``[first, last]``.

    ``hours=False`` ignores working hours, ``busy_time=False`` ignores busy
    time and bookings (so a caller can tell the two reasons apart).
    """
    blocked_starts, blocked_ends = _EMPTY, _EMPTY
    if busy_time:
        # A busy span matters when it meets [first - before, last + d + after).
        low, high = first - fit.before, last + fit.duration + fit.after
        starts, ends = busy.window(low, high)
        booked_starts, booked_ends = booked.of(calendar.key)
        if booked_starts.size:
            meets = (booked_starts < high) & (booked_ends > low)
            starts = np.concatenate((starts, booked_starts[meets]))
            ends = np.concatenate((ends, booked_ends[meets]))
        blocked_starts = starts - (fit.duration + fit.after - 1)
        blocked_ends = ends + fit.before
    if not hours:
        return StartSpans(blocked_starts, blocked_ends)
    working = calendar_time(calendar, first, last + fit.duration)
    if working is None:
        return StartSpans(blocked_starts, blocked_ends)
    allowed_ends = np.maximum(working.starts, working.ends - fit.duration + 1)
    return StartSpans(blocked_starts, blocked_ends, working.starts, allowed_ends)


def sweep(grid: Instants, rows: Sequence[StartSpans]) -> npt.NDArray[np.bool_]:
    """``free[r, j]``: whether grid start ``j`` is free on row ``r``.

    ``grid`` must be sorted.  Each span adds its contribution to the first
    grid point at or after its start and removes it at the first at or
    after its end; a running sum per row then counts, at every grid point,
    the blocking spans plus one when the row has hours that do not allow it.
    """
    width = grid.size + 1
    # Gather every row's spans first, so that two searchsorted calls place
    # all of them (one call per row costs more than the search itself).
    plus_at: list[Instants] = []
    minus_at: list[Instants] = []
    plus_row: list[int] = []
    minus_row: list[int] = []
    bases: list[int] = []
    for r, row in enumerate(rows):
        plus_at.append(row.blocked_starts)
        minus_at.append(row.blocked_ends)
        plus_row.append(row.blocked_starts.size)
        minus_row.append(row.blocked_ends.size)
        if row.allowed_starts is not None and row.allowed_ends is not None:
            # Not allowed until a working span says so: one at the row's start.
            bases.append(r * width)
            minus_at.append(row.allowed_starts)
            plus_at.append(row.allowed_ends)
            minus_row[-1] += row.allowed_starts.size
            plus_row[-1] += row.allowed_ends.size
    row_offsets = np.arange(len(rows), dtype=np.int64) * width
    plus = np.concatenate((
        np.searchsorted(grid, np.concatenate(plus_at)) + np.repeat(row_offsets, plus_row),
        np.array(bases, dtype=np.int64)))
    minus = np.searchsorted(grid, np.concatenate(minus_at)) + np.repeat(row_offsets, minus_row)
    size = len(rows) * width
    counts = np.bincount(plus, minlength=size).astype(np.int32)
    counts -= np.bincount(minus, minlength=size).astype(np.int32)
    counts = counts.reshape(len(rows), width)
    np.cumsum(counts, axis=1, out=counts)
    free: npt.NDArray[np.bool_] = counts[:, :-1] == 0
    return free


def lookup(calendars: Mapping[str, Calendar], busy: Mapping[str, BusyTimeline],
           key: str) -> tuple[Calendar, BusyTimeline]:
    """The calendar and busy timeline of ``key``; both must be supplied."""
    if key not in calendars:
        raise MissingCalendarError(key, "calendar")
    if key not in busy:
        raise MissingCalendarError(key, "busy timeline")
    return calendars[key], busy[key]
