"""Which member of a pool a booking gets, among those free for its slot.

The methods (interface.md):

- ``longest_idle`` — the member whose most recent assignment (by booking
  time) is oldest; never-assigned first; ties in member order.
- ``priority`` — member order.
- ``round_robin`` — rotation in member order after the last assigned
  member; a free member with fewer assignments in the current reporting
  cycle than another free member goes first (it was busy on its turn, or a
  booking of it was cancelled), so the rotation catches up.
- ``least_booked`` — fewest assignments in the current cycle; ties by
  longest idle.
- ``random`` — uniform, from the injected generator.

The current reporting cycle is the day, the week from Monday or the month
that holds ``now`` in the pool's zone.  Only active (pending or confirmed)
assignments count: cancelled and failed bookings never held the room.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from engine.core.model import AssignmentMethod, Booking, BookingStatus, Pool, ReportingCycle, as_utc
from engine.core.zones import from_us, local_date, local_day, to_us


@dataclass(frozen=True, slots=True)
class PastAssignment:
    """One booking of a pool member: which room, when it was booked."""

    room: str
    booked_at: datetime
    status: BookingStatus = BookingStatus.CONFIRMED

    def __post_init__(self) -> None:
        object.__setattr__(self, "booked_at", as_utc(self.booked_at, what="booking time"))


def pool_history(pool: Pool, bookings: Iterable[Booking]) -> list[PastAssignment]:
    """The assignments of ``pool`` recorded in ``bookings``."""
    return [
        PastAssignment(booking.rooms[pool.key], booking.booked_at, booking.status)
        for booking in bookings
        if pool.key in booking.rooms
    ]


def cycle_bounds(cycle: ReportingCycle, zone: str, now: datetime) -> tuple[datetime, datetime]:
    """The reporting cycle holding ``now`` in ``zone``, as ``[start, end)``
    instants (local midnights: a DST change inside is taken into account)."""
    today = local_date(zone, to_us(as_utc(now, what="now")))
    if cycle is ReportingCycle.DAY:
        first, after = today, today + timedelta(days=1)
    elif cycle is ReportingCycle.WEEK:
        first = today - timedelta(days=today.weekday())
        after = first + timedelta(days=7)
    else:
        first = today.replace(day=1)
        after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return from_us(local_day(zone, first).start), from_us(local_day(zone, after).start)


def assign_room(
    pool: Pool,
    free_members: Sequence[str],
    history: Iterable[PastAssignment],
    *,
    now: datetime,
    rng: random.Random | None = None,
) -> str:
    """The member of ``pool`` to assign, chosen among ``free_members`` by
    the pool's method.

    ``history`` holds the pool's past assignments (any status; only active
    ones count).  ``free_members`` must be non-empty members of the pool;
    ``rng`` is required for ``random``.  Deterministic for every other
    method.  Raises ``ValueError`` on a violated precondition.
    """
    unknown = [m for m in free_members if m not in pool.members]
    if unknown:
        raise ValueError(f"not members of pool {pool.key!r}: {', '.join(unknown)}")
    order = {member: i for i, member in enumerate(pool.members)}
    free = sorted(set(free_members), key=order.__getitem__)
    if not free:
        raise ValueError(f"no free member of pool {pool.key!r} to assign")
    method = pool.assignment
    if method is AssignmentMethod.PRIORITY:
        return free[0]
    if method is AssignmentMethod.RANDOM:
        if rng is None:
            raise ValueError("the random method needs a random generator")
        return free[rng.randrange(len(free))]

    active = [a for a in history if a.status.is_active and a.room in order]
    # The latest assignment per member; ties in booking time keep the
    # later record, as it was recorded last.
    latest: dict[str, datetime] = {}
    for past in active:
        if past.room not in latest or past.booked_at >= latest[past.room]:
            latest[past.room] = past.booked_at
    start, end = cycle_bounds(pool.reporting_cycle, pool.timezone, now)
    in_cycle = {member: 0 for member in pool.members}
    for past in active:
        if start <= past.booked_at < end:
            in_cycle[past.room] += 1

    def idle_rank(member: str) -> tuple[int, int, int]:
        # Never assigned sorts first; then the oldest latest assignment;
        # then member order.
        seen = latest.get(member)
        return (0, 0, order[member]) if seen is None else (1, to_us(seen), order[member])

    if method is AssignmentMethod.LONGEST_IDLE:
        return min(free, key=idle_rank)
    if method is AssignmentMethod.LEAST_BOOKED:
        return min(free, key=lambda m: (in_cycle[m], *idle_rank(m)))
    # Round robin: the members with the fewest assignments this cycle catch
    # up first; among them the next in rotation after the last assigned.
    fewest = min(in_cycle[m] for m in free)
    behind = [m for m in free if in_cycle[m] == fewest]
    # The last assigned member: latest booking time, the later record on a tie.
    last = max(enumerate(active), key=lambda pair: (pair[1].booked_at, pair[0]), default=None)
    after = order[last[1].room] if last is not None else -1
    size = len(pool.members)
    return min(behind, key=lambda m: (order[m] - after - 1) % size)
