"""Pooled slots: the owner, every ``with`` person and one room of each pool.

The two entry points share one evaluation: :func:`find_slots` lists the
bookable starts of a window with the free members of each pool, and
:func:`check_start` validates one start for a booking and names the first
reason it fails.  Both take the busy time the daemon keeps in memory plus
the active bookings, which count as busy for their owner, ``with`` people
and rooms from the moment they are reserved.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from engine.core.availability import (
    BookedTime,
    Fit,
    MissingCalendarError,
    StartSpans,
    lookup,
    start_spans,
    sweep,
)
from engine.core.busy import BusyTimeline
from engine.core.hours import grid, local_ordinal, on_grid
from engine.core.intervals import Instants
from engine.core.model import Booking, Calendar, EventType, Interval, Pool, Slot, as_utc
from engine.core.zones import EPOCH, duration_us, to_us


class SlotRejection(enum.StrEnum):
    """Why a start cannot be booked (interface.md's ``reason``, plus
    ``off_grid``, which the HTTP layer answers with 422)."""

    OFF_GRID = "off_grid"
    PAST = "past"
    MIN_NOTICE = "min_notice"
    HORIZON = "horizon"
    OUTSIDE_HOURS = "outside_hours"
    DAILY_LIMIT = "daily_limit"
    OWNER_BUSY = "owner_busy"
    PERSON_BUSY = "person_busy"
    NO_ROOM = "no_room"


@dataclass(frozen=True, slots=True)
class SlotCheck:
    """The verdict on one start: ``reason`` is ``None`` when it can be
    booked, and then ``rooms_available`` lists the free members of each
    pool in member order."""

    reason: SlotRejection | None
    rooms_available: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class _Query:
    """What one evaluation needs, resolved and validated once."""

    event_type: EventType
    calendars: Mapping[str, Calendar]
    busy: Mapping[str, BusyTimeline]
    pools: tuple[Pool, ...]
    booked: BookedTime
    fit: Fit
    full_days: frozenset[int]

    def spans(self, key: str, first: int, last: int, *, hours: bool = True,
              busy_time: bool = True) -> StartSpans:
        calendar, timeline = lookup(self.calendars, self.busy, key)
        return start_spans(calendar, busy=timeline, booked=self.booked, fit=self.fit,
                           first=first, last=last, hours=hours, busy_time=busy_time)


def _query(event_type: EventType, calendars: Mapping[str, Calendar],
           pools: Mapping[str, Pool], busy: Mapping[str, BusyTimeline],
           bookings: Sequence[Booking]) -> _Query:
    resolved = []
    for key in event_type.pools:
        if key not in pools:
            raise MissingCalendarError(key, "pool")
        resolved.append(pools[key])
    owner_zone = lookup(calendars, busy, event_type.owner)[0].timezone
    per_day: dict[int, int] = {}
    if event_type.max_per_day > 0:
        for booking in bookings:
            if (booking.status.is_active and booking.event_type == event_type.key
                    and booking.owner == event_type.owner):
                day = local_ordinal(owner_zone, to_us(booking.start))
                per_day[day] = per_day.get(day, 0) + 1
    full = frozenset(d for d, n in per_day.items() if n >= event_type.max_per_day > 0)
    fit = Fit.of(event_type.duration, event_type.buffer_before, event_type.buffer_after)
    return _Query(event_type, calendars, busy, tuple(resolved), BookedTime(bookings), fit, full)


def find_slots(
    event_type: EventType,
    *,
    calendars: Mapping[str, Calendar],
    pools: Mapping[str, Pool],
    busy: Mapping[str, BusyTimeline],
    bookings: Sequence[Booking],
    window: Interval,
    now: datetime,
) -> list[Slot]:
    """The bookable slots of ``event_type`` whose start lies in ``window``.

    A start is listed when it is on the owner's grid (see
    :func:`engine.core.hours.grid`), at or after ``now + min_notice`` and
    before ``now + horizon``, its owner's local day is under
    ``max_per_day`` bookings of this event type, the owner and every
    ``with`` person can take it (working time and busy time with buffers,
    see :mod:`engine.core.availability`), and every pool has a member that
    can.  ``rooms_available`` lists those members, in member order.

    ``busy`` must hold a timeline for every calendar involved and
    ``bookings`` the active bookings that touch the window (and, for the
    daily limit, the owner's local days it spans); cancelled and failed ones
    are ignored.  Raises :class:`MissingCalendarError` for an unknown key.
    Ordered by start; ``end`` is start + duration (buffers excluded).
    """
    query = _query(event_type, calendars, pools, busy, bookings)
    return _evaluate(query, *_starts(event_type, calendars, window, now))


def slots_at(
    event_type: EventType,
    starts: Instants,
    days: Instants,
    *,
    calendars: Mapping[str, Calendar],
    pools: Mapping[str, Pool],
    busy: Mapping[str, BusyTimeline],
    bookings: Sequence[Booking],
) -> list[Slot]:
    """The slots among ``starts``, grid points of the owner with their local
    days as :func:`grid_points` gives them, by every rule of
    :func:`find_slots` but the window, ``min_notice`` and ``horizon``.

    Whether a grid point is a slot, and with which rooms, depends on the
    busy time and the bookings only, never on the window or ``now``; so
    ``find_slots`` for a window is exactly the slots here whose start lies
    in ``slot_starts`` of that window, which lets a caller evaluate the grid
    once, in pieces of its choosing, for every window that shares them."""
    return _evaluate(_query(event_type, calendars, pools, busy, bookings), starts, days)


def grid_points(event_type: EventType, calendars: Mapping[str, Calendar], start_us: int,
                end_us: int) -> tuple[Instants, Instants]:
    """The owner's grid points in ``[start, end)`` (epoch µs) and the local
    date each belongs to, before any rule.  The grid of a span is the grid
    of any span holding it, cut to it (grid points are fixed per local
    date).  Raises :class:`MissingCalendarError` for an unknown owner."""
    if event_type.owner not in calendars:
        raise MissingCalendarError(event_type.owner, "calendar")
    return grid(calendars[event_type.owner].timezone, event_type.step, start_us, end_us)


def _evaluate(query: _Query, starts: Instants, days: Instants) -> list[Slot]:
    event_type = query.event_type
    if starts.size == 0:
        return []
    first, last = int(starts[0]), int(starts[-1])
    keys = list(dict.fromkeys(
        (*event_type.persons, *(m for pool in query.pools for m in pool.members))))
    row_of = {key: r for r, key in enumerate(keys)}
    free = sweep(starts, [query.spans(key, first, last) for key in keys])

    ok = free[[row_of[k] for k in event_type.persons]].all(axis=0)
    if query.full_days:
        ok &= ~np.isin(days, np.fromiter(query.full_days, dtype=np.int64))
    members_free = []
    for pool in query.pools:
        matrix = free[[row_of[m] for m in pool.members]] if pool.members else free[:0]
        ok &= matrix.any(axis=0)
        members_free.append(matrix)
    chosen = np.flatnonzero(ok)
    rooms = [_members_per_slot(pool.members, matrix[:, chosen])
             for pool, matrix in zip(query.pools, members_free, strict=True)]
    pool_keys = [pool.key for pool in query.pools]
    available = ([dict(zip(pool_keys, per_pool, strict=True))
                  for per_pool in zip(*rooms, strict=True)]
                 if rooms else [{} for _ in range(chosen.size)])
    duration = event_type.duration
    slots = []
    for start_us, free_rooms in zip(starts[chosen].tolist(), available, strict=True):
        start = EPOCH + timedelta(microseconds=start_us)
        slots.append(_slot(start, start + duration, free_rooms))
    return slots


def slot_starts(event_type: EventType, *, calendars: Mapping[str, Calendar],
                window: Interval, now: datetime) -> Instants:
    """The starts :func:`find_slots` weighs for ``window`` at ``now``: the
    owner's grid points in the window, at or after ``now + min_notice`` and
    before ``now + horizon`` (epoch µs, in order), before any availability
    rule.  Two queries with the same starts get the same slots from the same
    busy time, which is what lets a caller cache answers while ``now``
    moves.  Raises :class:`MissingCalendarError` for an unknown owner."""
    if event_type.owner not in calendars:
        raise MissingCalendarError(event_type.owner, "calendar")
    return _starts(event_type, calendars, window, now)[0]


def _starts(event_type: EventType, calendars: Mapping[str, Calendar], window: Interval,
            now: datetime) -> tuple[Instants, Instants]:
    now_us = to_us(as_utc(now, what="now"))
    low = max(to_us(window.start), now_us + duration_us(event_type.min_notice))
    high = min(to_us(window.end), now_us + duration_us(event_type.horizon))
    if high <= low:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return grid_points(event_type, calendars, low, high)


def _slot(start: datetime, end: datetime, rooms: dict[str, tuple[str, ...]]) -> Slot:
    """A :class:`Slot` from values already in its normal form: UTC
    datetimes and a fresh dict.  ``Slot.__post_init__`` would convert them
    again, which is most of the cost of listing thousands of slots (the
    60-day benchmark), so it is skipped here and only here."""
    slot = object.__new__(Slot)
    _SET_START(slot, start)
    _SET_END(slot, end)
    _SET_ROOMS(slot, MappingProxyType(rooms))
    return slot


# The fields' slot descriptors: setting through them skips the frozen
# dataclass's __setattr__ and an attribute lookup per field.
_SET_START = Slot.__dict__["start"].__set__
_SET_END = Slot.__dict__["end"].__set__
_SET_ROOMS = Slot.__dict__["rooms_available"].__set__


def _members_per_slot(members: tuple[str, ...],
                      matrix: npt.NDArray[np.bool_]) -> list[tuple[str, ...]]:
    """For a members × slots matrix, the free members of each slot, in
    member order."""
    # Slot-major and contiguous, so one flat scan yields (slot, member)
    # pairs grouped by slot and in member order.
    by_slot = np.ascontiguousarray(matrix.T)
    flat = np.flatnonzero(by_slot)
    names = tuple(np.array(members, dtype=object)[flat % max(1, len(members))].tolist())
    bounds = [0, *np.cumsum(by_slot.sum(axis=1)).tolist()]
    return [names[a:b] for a, b in pairwise(bounds)]


def check_start(
    event_type: EventType,
    start: datetime,
    *,
    calendars: Mapping[str, Calendar],
    pools: Mapping[str, Pool],
    busy: Mapping[str, BusyTimeline],
    bookings: Sequence[Booking],
    now: datetime,
) -> SlotCheck:
    """Whether ``start`` can be booked now, by the rules of
    :func:`find_slots` (a start passes here exactly when find_slots lists it
    for a window holding it), else the first failing reason in the order of
    :class:`SlotRejection`.  To move a booking, leave it out of
    ``bookings``.  Raises :class:`MissingCalendarError` for an unknown key.
    """
    start_us = to_us(as_utc(start, what="start"))
    now_us = to_us(as_utc(now, what="now"))
    query = _query(event_type, calendars, pools, busy, bookings)
    owner_zone = calendars[event_type.owner].timezone
    if not on_grid(owner_zone, event_type.step, start_us):
        return SlotCheck(SlotRejection.OFF_GRID)
    if start_us < now_us:
        return SlotCheck(SlotRejection.PAST)
    if start_us < now_us + duration_us(event_type.min_notice):
        return SlotCheck(SlotRejection.MIN_NOTICE)
    if start_us >= now_us + duration_us(event_type.horizon):
        return SlotCheck(SlotRejection.HORIZON)
    point: Instants = np.array([start_us], dtype=np.int64)
    persons = event_type.persons

    def free(keys: Sequence[str], *, hours: bool = True, busy_time: bool = True) -> list[bool]:
        rows = [query.spans(k, start_us, start_us, hours=hours, busy_time=busy_time)
                for k in keys]
        return [bool(v) for v in sweep(point, rows)[:, 0]] if rows else []

    if not all(free(persons, busy_time=False)):
        return SlotCheck(SlotRejection.OUTSIDE_HOURS)
    if local_ordinal(owner_zone, start_us) in query.full_days:
        return SlotCheck(SlotRejection.DAILY_LIMIT)
    owner_free, *others_free = free(persons, hours=False)
    if not owner_free:
        return SlotCheck(SlotRejection.OWNER_BUSY)
    if not all(others_free):
        return SlotCheck(SlotRejection.PERSON_BUSY)
    rooms: dict[str, tuple[str, ...]] = {}
    for pool in query.pools:
        rooms[pool.key] = tuple(m for m, ok in zip(pool.members, free(pool.members),
                                                   strict=True) if ok)
        if not rooms[pool.key]:
            return SlotCheck(SlotRejection.NO_ROOM)
    return SlotCheck(None, rooms)

