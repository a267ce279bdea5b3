"""The busy cache reloads only the bookings that changed, and still sees
every change another process (another cache on the same store) made."""

from __future__ import annotations

import time

from engine.core.model import BookingStatus
from engine.services.availability import BusyCache
from engine.store import Store, migrate
from tests.engine.store.samples import WINDOW, at, changes, event, make_booking
from tests.support.postgres import (  # noqa: F401 - fixtures used by name
    postgres_database,
    postgres_server,
)

BOUND = 30.0  # seconds: the waits end as soon as the change is seen

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


def test_postgresql_tells_another_process_of_a_booking_within_milliseconds(
    postgres_database: str,  # noqa: F811
) -> None:
    """LISTEN/NOTIFY: the listening process's cache has the other process's
    booking (and its sync) before any query asks for it."""
    migrate.upgrade(postgres_database)
    ours, theirs = Store.open(postgres_database), Store.open(postgres_database)
    cache = BusyCache(CALENDARS)
    cache.refresh(ours)
    feed = ours.change_feed(lambda: cache.refresh(ours))
    assert feed is not None
    feed.start()
    try:
        assert feed.wait_listening(BOUND)
        seen: list[float] = []
        for n in range(5):
            began = time.perf_counter()
            with theirs.unit_of_work() as uow:
                uow.bookings.reserve(make_booking(f"bk-{n}", n, n + 0.5))
                uow.commit()
            while f"bk-{n}" not in {b.id for b in cache.snapshot().bookings}:
                assert time.perf_counter() - began < BOUND
                time.sleep(0.001)
            seen.append(time.perf_counter() - began)
        began = time.perf_counter()
        with theirs.unit_of_work() as uow:  # a sync's batch
            uow.events.apply_changes("room-a", changes("c1", event("a", 1, 2)), WINDOW, at(0))
            uow.commit()
        while not cache.snapshot().busy["room-a"].starts.size:
            assert time.perf_counter() - began < BOUND
            time.sleep(0.001)
        seen.append(time.perf_counter() - began)
    finally:
        feed.stop()
        ours.close()
        theirs.close()
    print(f"\nchange feed: another process's change seen after "
          f"{', '.join(f'{s * 1000:.1f}' for s in seen)} ms")
    assert max(seen) < 1.0  # the query-time check would be the next query's, unbounded


def test_sqlite_has_no_change_feed(store: Store) -> None:
    assert store.change_feed(lambda: None) is None
