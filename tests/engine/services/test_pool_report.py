"""The pool report over bookings assigned by the pool's own method: a week
of round robin across the change to summer time in Berlin, with a
cancellation the rotation corrects for and a swap, then the next week."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from engine.core.model import (
    AssignmentMethod,
    Attendee,
    Booking,
    BookingStatus,
    Calendar,
    CalendarKind,
    Pool,
    ReportingCycle,
)
from engine.services.availability import BusyCache
from engine.services.pools import PREVIOUS, PoolReports
from engine.services.rooms import choose_room
from engine.store import Store

BERLIN = "Europe/Berlin"
POOL = Pool("rooms", ("room-a", "room-b", "room-c"), AssignmentMethod.ROUND_ROBIN,
            ReportingCycle.WEEK, BERLIN)
CALENDARS = {key: Calendar(key, CalendarKind.ROOM, BERLIN) for key in POOL.members}
# Monday 2027-03-29 00:00 in Berlin (summer time since Sunday 02:00).
NEXT_WEEK = datetime(2027, 3, 28, 22, tzinfo=UTC)


def book(store: Store, booking_id: str, booked_at: datetime) -> str:
    """Book with the pool's method choosing among all members; returns the room."""
    start = booked_at + timedelta(days=3)
    with store.unit_of_work() as uow:
        room = choose_room(uow, POOL, POOL.members, now=booked_at, rng=random.Random(0))
        uow.bookings.reserve(Booking(
            id=booking_id, event_type="consult", start=start, end=start + timedelta(hours=1),
            owner=f"owner-{booking_id}", rooms={POOL.key: room}, booked_at=booked_at,
            attendee=Attendee("Ann", "ann@example.com")))
        uow.commit()
    return room


def counts(reports: PoolReports, which: str, now: datetime) -> dict[str, tuple[int, ...]]:
    report = reports.report(POOL.key, which, now)
    return {m.room: (m.received, m.removed, m.reassigned_away, m.reassigned_to)
            for m in report.members}


def test_round_robins_correction_shows_in_the_report_across_the_dst_week(store: Store) -> None:
    reports = PoolReports(store, BusyCache(CALENDARS), calendars=CALENDARS, pools={"rooms": POOL})
    monday = datetime(2027, 3, 22, 8, tzinfo=UTC)
    rooms = [book(store, f"b{n}", monday + timedelta(hours=n)) for n in range(3)]
    assert rooms == ["room-a", "room-b", "room-c"]
    with store.unit_of_work() as uow:
        uow.bookings.set_status("b1", BookingStatus.CANCELLED, monday + timedelta(days=1))
        uow.commit()
    # room-b fell behind by the cancellation: round robin gives it the next one.
    assert book(store, "b3", monday + timedelta(days=2)) == "room-b"
    with store.unit_of_work() as uow:
        moved = uow.bookings.get("b0")
        assert moved is not None
        uow.bookings.move("b0", start=moved.start, end=moved.end, rooms={POOL.key: "room-c"},
                          at=monday + timedelta(days=3))
        uow.commit()
    # Sunday 23:30 in Berlin is still this week; Monday 00:30 is the next.
    # room-a holds nothing this week since b0 moved away: it catches up.
    assert book(store, "b4", NEXT_WEEK - timedelta(minutes=30)) == "room-a"
    book(store, "b5", NEXT_WEEK + timedelta(minutes=30))

    this_week = counts(reports, "current", monday + timedelta(days=4))
    # (received, removed, reassigned away, reassigned to)
    assert this_week == {
        "room-a": (2, 0, 1, 0),  # b0 (moved away), b4
        "room-b": (2, 1, 0, 0),  # b1 (cancelled), b3
        "room-c": (1, 0, 0, 1),  # b2; b0 moved in
    }
    assert sum(received for received, *_ in this_week.values()) == 5  # b0 … b4
    next_week = counts(reports, PREVIOUS, NEXT_WEEK + timedelta(days=8))
    assert next_week == counts(reports, "current", NEXT_WEEK + timedelta(days=1))
    assert sum(received for received, *_ in next_week.values()) == 1  # b5
    report = reports.report(POOL.key, "current", NEXT_WEEK + timedelta(days=1))
    assert report.cycle.start == NEXT_WEEK
    assert report.cycle.duration == timedelta(days=7)
