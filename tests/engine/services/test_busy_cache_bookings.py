"""The busy cache reloads only the bookings that changed, and still sees
every change another process (another cache on the same store) made."""

from __future__ import annotations

from engine.core.model import BookingStatus
from engine.services.availability import BusyCache
from engine.store import Store
from tests.engine.store.samples import at, make_booking

CALENDARS = ["alice", "room-a", "room-b"]


def booked(cache: BusyCache) -> list[tuple[str, str]]:
    return [(booking.id, booking.rooms["berlin"]) for booking in cache.snapshot().bookings]


def test_a_booking_reloads_that_booking_not_every_active_one(store: Store) -> None:
    """Regression: every booking moved calendar versions and made every
    process reload every active booking, past ones included."""
    with store.unit_of_work() as uow:
        for n in range(30):
            uow.bookings.reserve(make_booking(f"old-{n:02}", -100 + 2 * n, -99 + 2 * n))
        uow.commit()
    ours, theirs = BusyCache(CALENDARS), BusyCache(CALENDARS)
    ours.refresh(store)
    theirs.refresh(store)
    assert ours.bookings_read == 30

    with store.unit_of_work() as uow:  # another process books, then moves and cancels
        uow.bookings.reserve(make_booking("new", 5, 6, rooms={"berlin": "room-b"}))
        uow.commit()
    ours.refresh(store)
    assert ours.bookings_read == 31  # the new one only
    assert ("new", "room-b") in booked(ours)

    with store.unit_of_work() as uow:
        uow.bookings.move("new", start=at(7), end=at(8), rooms={"berlin": "room-a"}, at=at(0))
        uow.bookings.set_status("old-03", BookingStatus.CANCELLED, at(0))
        uow.commit()
    ours.refresh(store)
    theirs.refresh(store)
    assert ours.bookings_read == 32  # the moved one; the cancelled one is only dropped

    expected = [(f"old-{n:02}", "room-a") for n in range(30) if n != 3] + [("new", "room-a")]
    assert booked(ours) == booked(theirs) == expected
    with store.reader() as uow:
        active = uow.bookings.active_touching(make_booking("x", -200, 200).interval)
    assert [booking.id for booking in ours.snapshot().bookings] == [b.id for b in active]
