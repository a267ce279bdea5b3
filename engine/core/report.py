"""A pool's report for one reporting cycle: per room, what it received and
lost, how often it was swapped in or out, and how busy it was.

Pure: the store hands in the rooms' :class:`RoomStint` rows (one per room a
booking held, with how it began and ended), the cache the busy time.

``received`` counts the bookings assigned to the room *when they were
booked* within the cycle — the moment the assignment methods count by
(``Booking.booked_at``), so the report shows what round robin and least
booked balance.  A room swapped in later is ``reassigned_to``, one swapped
out ``reassigned_away``; ``removed`` counts the room's bookings cancelled
within the cycle (failed bookings are neither: their events were
compensated at once).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.core.assignment import cycle_bounds
from engine.core.hours import calendar_time
from engine.core.intervals import IntervalSet
from engine.core.model import Calendar, Interval, Pool, as_utc
from engine.core.zones import to_us


class StintStart(enum.StrEnum):
    BOOKED = "booked"  # assigned when the booking was made
    REASSIGNED = "reassigned"  # swapped in for another member later


class StintEnd(enum.StrEnum):
    REASSIGNED = "reassigned"  # swapped out for another member
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RoomStint:
    """One room held by one booking: from ``assigned_at`` (how it came)
    until ``ended_at`` (how it went), or still."""

    booking_id: str
    room: str
    assigned_at: datetime
    how: StintStart
    ended_at: datetime | None = None
    ended_how: StintEnd | None = None


@dataclass(frozen=True, slots=True)
class MemberReport:
    room: str
    received: int
    removed: int
    reassigned_away: int
    reassigned_to: int
    last_assigned_at: datetime | None
    busy_ratio: float


@dataclass(frozen=True, slots=True)
class PoolReport:
    pool: Pool
    cycle: Interval
    members: tuple[MemberReport, ...]

    @property
    def received(self) -> int:
        return sum(member.received for member in self.members)

    @property
    def removed(self) -> int:
        return sum(member.removed for member in self.members)


def cycle_of(pool: Pool, when: datetime) -> Interval:
    """The pool's reporting cycle holding ``when`` (in the pool's zone)."""
    start, end = cycle_bounds(pool.reporting_cycle, pool.timezone, when)
    return Interval(start, end)


def previous_cycle(pool: Pool, now: datetime) -> Interval:
    current = cycle_of(pool, now)
    return cycle_of(pool, current.start - timedelta(microseconds=1))


def busy_share(calendar: Calendar | None, busy: IntervalSet, cycle: Interval) -> float:
    """The share of ``cycle``'s working time of ``calendar`` (all of it for a
    calendar without working hours) that ``busy`` covers, 0 … 1."""
    start, end = to_us(cycle.start), to_us(cycle.end)
    working = calendar_time(calendar, start, end) if calendar is not None else None
    if working is None:
        working = IntervalSet([start], [end])
    total = working.total_us
    if total == 0:
        return 0.0
    return busy.intersection(working).total_us / total


def pool_report(
    pool: Pool,
    cycle: Interval,
    stints: Iterable[RoomStint],
    *,
    last_assigned: Mapping[str, datetime],
    calendars: Mapping[str, Calendar],
    busy: Mapping[str, IntervalSet],
) -> PoolReport:
    """Count ``stints`` (any rows of the pool; those outside ``cycle`` do not
    count) per member in configured order.  ``last_assigned`` is each
    room's latest assignment before the cycle's end; ``busy`` each room's
    busy time (cached events and calpool's own bookings)."""
    def within(instant: datetime | None) -> bool:
        return instant is not None and cycle.start <= as_utc(instant) < cycle.end

    counts: dict[str, list[int]] = {room: [0, 0, 0, 0] for room in pool.members}
    for stint in stints:
        row = counts.get(stint.room)
        if row is None:
            continue  # a room that left the pool's members since
        if within(stint.assigned_at):
            row[0 if stint.how is StintStart.BOOKED else 3] += 1
        if within(stint.ended_at):
            if stint.ended_how is StintEnd.CANCELLED:
                row[1] += 1
            elif stint.ended_how is StintEnd.REASSIGNED:
                row[2] += 1
    members = tuple(
        MemberReport(
            room,
            received=counts[room][0],
            removed=counts[room][1],
            reassigned_away=counts[room][2],
            reassigned_to=counts[room][3],
            last_assigned_at=last_assigned.get(room),
            busy_ratio=busy_share(calendars.get(room), busy.get(room, IntervalSet()), cycle),
        )
        for room in pool.members
    )
    return PoolReport(pool, cycle, members)

