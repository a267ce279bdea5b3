"""Booking events are written by the booking repository in the transaction
of each change, and only then."""

from __future__ import annotations

from engine.core.model import BookingStatus
from engine.store import Store
from tests.engine.store.samples import at, make_booking


def events(store: Store) -> list[tuple[str, str]]:
    with store.reader() as uow:
        return [(event.booking_id, event.type) for event in uow.webhooks.undispatched(100)]


def test_every_change_of_a_booking_is_one_event(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("b1", 1, 2))
        uow.bookings.set_status("b1", BookingStatus.CONFIRMED, at(0))
        uow.bookings.move("b1", start=at(3), end=at(4), rooms={"berlin": "room-a"}, at=at(0))
        uow.bookings.move("b1", start=at(3), end=at(4), rooms={"berlin": "room-b"}, at=at(0))
        uow.bookings.move("b1", start=at(5), end=at(6), rooms={"berlin": "room-a"}, at=at(0))
        uow.bookings.set_status("b1", BookingStatus.CANCELLED, at(1))
        uow.bookings.set_status("b1", BookingStatus.CANCELLED, at(2))  # no change, no event
        uow.commit()
    assert events(store) == [("b1", "created"), ("b1", "confirmed"), ("b1", "rescheduled"),
                             ("b1", "room_changed"), ("b1", "rescheduled"),
                             ("b1", "room_changed"), ("b1", "cancelled")]


def test_a_rolled_back_change_leaves_no_event(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("b1", 1, 2))
        uow.rollback()
    assert events(store) == []
