"""Concurrent bookings and the assignment methods, end to end on Radicale.

The races run many threads through one BookingService (one process, as
the HTTP hook does); the store serializes the reservations, and the
server ends up with exactly the events of the bookings that won."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from connectors.memory import MemoryProvider
from engine.core.model import AssignmentMethod, Booking, BookingStatus
from engine.core.slots import SlotRejection
from engine.services.booking import SlotUnavailable
from engine.store import Store, migrate
from tests.engine.services.booking_harness import ANN, NOW, SLOT, consult, make_site, uid_of
from tests.engine.services.memory_calendars import plain_event, put_event
from tests.support.postgres import PostgresServer, postgres_server  # noqa: F401 - fixture


def race(requests: list[Callable[[], Booking]]) -> tuple[list[Booking], list[SlotUnavailable]]:
    """Run ``requests`` at once (released together by a barrier)."""
    barrier = threading.Barrier(len(requests))

    def attempt(request: Callable[[], Booking]) -> Booking | SlotUnavailable:
        barrier.wait()
        try:
            return request()
        except SlotUnavailable as refused:
            return refused

    with ThreadPoolExecutor(len(requests)) as pool:
        outcomes = list(pool.map(attempt, requests))
    won = [o for o in outcomes if isinstance(o, Booking)]
    lost = [o for o in outcomes if isinstance(o, SlotUnavailable)]
    assert len(won) + len(lost) == len(requests)
    return won, lost


def test_fifty_bookings_of_one_owner_and_slot_one_wins(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store)

    won, lost = race([lambda: site.bookings.book("consult", SLOT, ANN, "", NOW)] * 50)

    assert len(won) == 1 and len(lost) == 49
    assert {refused.reason for refused in lost} <= {SlotRejection.OWNER_BUSY}
    site.bookings.outbox.drain(NOW)
    assert site.bookings.get(won[0].id).status is BookingStatus.CONFIRMED
    assert site.uids("alice") == [uid_of(won[0].id)]
    assert site.uids(won[0].rooms["rooms"]) == [uid_of(won[0].id)]
    with store.reader() as uow:
        assert len(uow.bookings.find()) == 1


def test_four_owners_sharing_three_rooms_get_three_rooms(
    provider: MemoryProvider, store: Store
) -> None:
    four_owners_three_rooms(provider, store)


def test_four_owners_sharing_three_rooms_on_postgresql(
    provider: MemoryProvider, postgres_server: PostgresServer  # noqa: F811 - the imported fixture
) -> None:
    """On PostgreSQL reservations do not serialize: the exclusion
    constraint refuses the losers, and they re-assign or give up."""
    url = postgres_server.create_database()
    migrate.upgrade(url)
    with Store.open(url) as store:
        four_owners_three_rooms(provider, store)


def four_owners_three_rooms(provider: MemoryProvider, store: Store) -> None:
    owners = ("alice", "bob", "carol", "dave")
    rooms = ["room-a", "room-b", "room-c"]
    site = make_site(
        provider, store, persons=owners,
        pools={"rooms": (rooms, AssignmentMethod.LONGEST_IDLE)},
        event_types=[consult(f"with-{owner}", owner=owner) for owner in owners],
    )
    requests = [
        (lambda key=f"with-{owners[n % 4]}": site.bookings.book(key, SLOT, ANN, "", NOW))
        for n in range(20)
    ]

    won, lost = race(requests)

    assert len(won) == 3
    assert sorted(b.rooms["rooms"] for b in won) == rooms
    assert len({b.owner for b in won}) == 3
    assert set(Counter(r.reason for r in lost)) <= {SlotRejection.OWNER_BUSY,
                                                    SlotRejection.NO_ROOM}
    site.bookings.outbox.drain(NOW)
    for booking in won:
        assert site.bookings.get(booking.id).status is BookingStatus.CONFIRMED
        assert site.uids(booking.rooms["rooms"]) == [uid_of(booking.id)]
        assert site.uids(booking.owner) == [uid_of(booking.id)]
    loser = ({*owners} - {b.owner for b in won}).pop()
    assert site.uids(loser) == []


def test_priority_takes_the_first_free_member(provider: MemoryProvider, store: Store) -> None:
    owners = ("alice", "bob", "carol")
    site = make_site(
        provider, store, persons=owners,
        pools={"rooms": (["room-a", "room-b", "room-c"], AssignmentMethod.PRIORITY)},
        event_types=[consult(f"with-{owner}", owner=owner) for owner in owners],
    )

    first = site.bookings.book("with-alice", SLOT, ANN, "", NOW)
    later = site.bookings.book("with-alice", SLOT + timedelta(hours=1), ANN, "", NOW)
    second = site.bookings.book("with-bob", SLOT, ANN, "", NOW)
    third = site.bookings.book("with-carol", SLOT, ANN, "", NOW)

    assert [b.rooms["rooms"] for b in (first, later, second, third)] == [
        "room-a", "room-a", "room-b", "room-c"]
    site.bookings.outbox.drain(NOW)
    assert site.uids("room-a") == sorted([uid_of(first.id), uid_of(later.id)])
    assert site.uids("room-c") == [uid_of(third.id)]


def test_longest_idle_rotates_and_skips_a_cancelled_assignment(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store,
                     pools={"rooms": (["room-a", "room-b", "room-c"],
                                      AssignmentMethod.LONGEST_IDLE)})
    rooms = []
    for n in range(4):
        site.clock.now = NOW + timedelta(minutes=n)  # booking time orders the idleness
        booking = site.bookings.book("consult", SLOT + timedelta(hours=n), ANN, "",
                                     site.clock.now)
        rooms.append(booking.rooms["rooms"])
    assert rooms == ["room-a", "room-b", "room-c", "room-a"]

    # Room B's only assignment is cancelled: it is never-assigned again,
    # so it goes first.
    [b_booking] = site.bookings.list(calendar="room-b")
    site.bookings.cancel(b_booking.id, site.clock.now)
    site.clock.now += timedelta(minutes=1)
    nxt = site.bookings.book("consult", SLOT + timedelta(hours=5), ANN, "", site.clock.now)
    assert nxt.rooms["rooms"] == "room-b"
    site.bookings.outbox.drain(site.clock.now)
    assert site.uids("room-b") == [uid_of(nxt.id)]


def test_round_robin_lets_a_member_busy_on_its_turn_catch_up(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store,
                     pools={"rooms": (["room-a", "room-b", "room-c"],
                                      AssignmentMethod.ROUND_ROBIN)})
    busy_at = SLOT + timedelta(hours=2)
    put_event(provider, site.ids["room-c"], "maintenance",
              plain_event("maintenance", busy_at, busy_at + timedelta(minutes=30)))
    site.sync_all()

    rooms = []
    for n in range(4):
        booking = site.bookings.book("consult", SLOT + timedelta(hours=n), ANN, "",
                                     NOW + timedelta(seconds=n))
        rooms.append(booking.rooms["rooms"])

    # C's turn came while it was busy, so A went; next C catches up (it
    # has fewer assignments this cycle) although B follows A in rotation.
    assert rooms == ["room-a", "room-b", "room-a", "room-c"]
