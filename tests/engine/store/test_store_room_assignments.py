"""The log of room assignments is written by the booking repository itself,
in the transaction that changes the rooms: booked, swapped, cancelled,
failed, purged."""

from __future__ import annotations

from engine.core.model import BookingStatus, Interval
from engine.core.report import StintEnd, StintStart
from engine.store import Store
from tests.engine.store.samples import at, make_booking

ALL_TIME = Interval(at(-1000), at(1000))


def stints(store: Store, pool: str = "berlin") -> list[tuple[str, str, str, str | None]]:
    with store.reader() as uow:
        return [(s.booking_id, s.room, s.how.value, s.ended_how.value if s.ended_how else None)
                for s in uow.bookings.stints(pool, ALL_TIME)]


def test_a_booking_logs_each_pools_room_when_booked(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("b1", 1, 2, rooms={"berlin": "room-a", "desks": "d1"},
                                          booked_at=at(-2)))
        uow.commit()
    assert stints(store) == [("b1", "room-a", "booked", None)]
    assert stints(store, "desks") == [("b1", "d1", "booked", None)]


def test_a_move_that_swaps_a_room_ends_one_stint_and_begins_another(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("b1", 1, 2, booked_at=at(-2)))
        uow.bookings.move("b1", start=at(3), end=at(4), rooms={"berlin": "room-a"}, at=at(-1))
        uow.bookings.move("b1", start=at(5), end=at(6), rooms={"berlin": "room-b"}, at=at(0))
        uow.commit()
    assert stints(store) == [("b1", "room-a", "booked", "reassigned"),
                             ("b1", "room-b", "reassigned", None)]
    with store.reader() as uow:
        swapped = uow.bookings.stints("berlin", ALL_TIME)
        last = uow.bookings.last_assigned_before("berlin", at(1))
    assert swapped[0].ended_at == at(0) and swapped[1].assigned_at == at(0)
    assert swapped[1].how is StintStart.REASSIGNED
    assert last == {"room-a": at(-2), "room-b": at(0)}


def test_cancel_and_failure_end_the_open_stints(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("b1", 1, 2))
        uow.bookings.reserve(make_booking("b2", 1, 2, owner="bob", rooms={"berlin": "room-b"}))
        uow.bookings.set_status("b1", BookingStatus.CANCELLED, at(0))
        uow.bookings.set_status("b2", BookingStatus.FAILED, at(0))
        uow.bookings.set_status("b2", BookingStatus.FAILED, at(1))  # again: nothing changes
        uow.commit()
    with store.reader() as uow:
        found = uow.bookings.stints("berlin", ALL_TIME)
    assert [(s.booking_id, s.ended_how, s.ended_at) for s in found] == [
        ("b1", StintEnd.CANCELLED, at(0)), ("b2", StintEnd.FAILED, at(0))]


def test_a_stint_counts_in_a_cycle_where_it_began_or_ended(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("b1", 100, 101, booked_at=at(0)))
        uow.bookings.set_status("b1", BookingStatus.CANCELLED, at(50))
        uow.commit()
    with store.reader() as uow:
        assert len(uow.bookings.stints("berlin", Interval(at(0), at(1)))) == 1
        assert len(uow.bookings.stints("berlin", Interval(at(50), at(51)))) == 1
        assert uow.bookings.stints("berlin", Interval(at(1), at(50))) == []


def test_purging_a_booking_removes_its_stints(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("b1", 1, 2, booked_at=at(-2)))
        uow.bookings.set_status("b1", BookingStatus.CANCELLED, at(0))
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.bookings.purge_ended_before(at(100)) == 1
        uow.commit()
    assert stints(store) == []
