"""Choosing a room of a pool for a booking: who is free, and who is next.

Both the booking itself and the outbox (when a room turned busy on its
provider before its event was written) pick a member by the pool's method
(:func:`engine.core.assignment.assign_room`) among the members free for the
booking's time, with the pool's history read from the store in the same
unit of work that then reserves the room, so concurrent bookings see each
other's assignments.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from engine.core.assignment import PastAssignment, assign_room, cycle_bounds
from engine.core.availability import BookedTime, Fit, lookup, start_spans, sweep
from engine.core.busy import BusyTimeline
from engine.core.model import Booking, Calendar, EventType, Pool
from engine.core.zones import to_us
from engine.store import UnitOfWork


def pool_history(uow: UnitOfWork, pool: Pool, now: datetime) -> list[PastAssignment]:
    """The assignments :func:`assign_room` needs: every active assignment in
    the current reporting cycle, plus each member's latest one before it
    (for longest idle and the rotation), without counting one twice."""
    cycle_start, _ = cycle_bounds(pool.reporting_cycle, pool.timezone, now)
    history = [
        PastAssignment(found.room, found.booked_at)
        for found in uow.bookings.assignments(pool.key, cycle_start)
    ]
    history += [
        PastAssignment(room, at)
        for room, at in uow.bookings.last_assigned(pool.key).items()
        if at < cycle_start
    ]
    return history


def choose_room(
    uow: UnitOfWork,
    pool: Pool,
    candidates: Sequence[str],
    *,
    now: datetime,
    rng: random.Random,
) -> str:
    """The member of ``pool`` to assign among ``candidates`` (non-empty)."""
    return assign_room(pool, candidates, pool_history(uow, pool, now), now=now, rng=rng)


def free_members(
    event_type: EventType,
    pool: Pool,
    booking: Booking,
    *,
    calendars: Mapping[str, Calendar],
    busy: Mapping[str, BusyTimeline],
    bookings: Sequence[Booking],
) -> tuple[str, ...]:
    """The members of ``pool`` that could hold ``booking`` by the cached
    busy time, their working hours, the event type's buffers and the other
    active bookings (``booking`` itself is left out), in member order.

    Unlike :func:`engine.core.slots.check_start` this asks nothing about the
    owner or the booking rules (notice, horizon, daily limit): the booking
    was accepted already and only its room is in question.
    """
    others = BookedTime([b for b in bookings if b.id != booking.id])
    fit = Fit.of(event_type.duration, event_type.buffer_before, event_type.buffer_after)
    start = to_us(booking.start)
    rows = []
    for member in pool.members:
        calendar, timeline = lookup(calendars, busy, member)
        rows.append(
            start_spans(calendar, busy=timeline, booked=others, fit=fit, first=start, last=start)
        )
    if not rows:
        return ()
    free = sweep(np.array([start], dtype=np.int64), rows)[:, 0]
    return tuple(member for member, ok in zip(pool.members, free, strict=True) if ok)
