"""Bookings, their history and reservations; no overlap per calendar."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from engine.core.model import Booking, BookingStatus, Interval
from engine.store import (
    Assignment,
    BookingExists,
    ReservationConflict,
    Store,
    StoreError,
    UnknownBooking,
)
from tests.engine.store.samples import at, make_booking


def reserve(store: Store, booking: Booking) -> None:
    with store.unit_of_work() as uow:
        uow.bookings.reserve(booking, detail="reserved")
        uow.commit()


def get(store: Store, booking_id: str) -> Booking | None:
    with store.reader() as uow:
        return uow.bookings.get(booking_id)


def test_reserved_booking_reads_back_whole(store: Store) -> None:
    booking = make_booking(
        "bk-1", 1, 2, with_=("bob", "carol"), rooms={"berlin": "room-a", "av": "beamer"}
    )
    reserve(store, booking)

    assert get(store, "bk-1") == booking
    with store.reader() as uow:
        history = uow.bookings.history("bk-1")
        held = uow.bookings.reserved_intervals(
            ["alice", "bob", "carol", "room-a", "beamer", "x"], Interval(at(0), at(3))
        )
    assert [(h.status, h.at, h.detail) for h in history] == [
        (BookingStatus.PENDING, at(-24), "reserved")
    ]
    assert held == {
        key: [Interval(at(1), at(2))] for key in ("alice", "bob", "carol", "room-a", "beamer")
    } | {"x": []}


def test_overlapping_booking_of_a_room_is_refused_and_writes_nothing(store: Store) -> None:
    reserve(store, make_booking("bk-1", 1, 2, owner="alice"))
    with store.unit_of_work() as uow:
        with pytest.raises(ReservationConflict) as refused:
            uow.bookings.reserve(make_booking("bk-2", 1.5, 2.5, owner="dave"))
        assert uow.bookings.get("bk-2") is None
        # The unit of work stays usable: the service tries another room.
        uow.bookings.reserve(
            make_booking("bk-2", 1.5, 2.5, owner="dave", rooms={"berlin": "room-b"})
        )
        uow.commit()

    error = refused.value
    assert (error.calendar_key, error.booking_id, error.held_by) == ("room-a", "bk-2", "bk-1")
    stored = get(store, "bk-2")
    assert stored is not None and dict(stored.rooms) == {"berlin": "room-b"}


@pytest.mark.parametrize(
    ("second", "calendar"),
    [
        (make_booking("bk-2", 1.5, 3, owner="alice", rooms={"berlin": "room-b"}), "alice"),
        (
            make_booking("bk-2", 0, 1.25, owner="dave", with_=("bob",), rooms={"berlin": "room-b"}),
            "bob",
        ),
        (make_booking("bk-2", 0.5, 1.5, owner="bob", rooms={"berlin": "room-b"}), "bob"),
    ],
    ids=["owner", "with-person", "with-person-as-owner"],
)
def test_people_cannot_be_double_booked_either(
    store: Store, second: Booking, calendar: str
) -> None:
    reserve(store, make_booking("bk-1", 1, 2, owner="alice", with_=("bob",)))
    with pytest.raises(ReservationConflict) as refused:
        reserve(store, second)
    assert refused.value.calendar_key == calendar
    assert get(store, "bk-2") is None


def test_back_to_back_bookings_do_not_overlap(store: Store) -> None:
    reserve(store, make_booking("bk-1", 1, 2))
    reserve(store, make_booking("bk-2", 2, 3))
    reserve(store, make_booking("bk-0", 0, 1))
    with store.reader() as uow:
        assert [b.id for b in uow.bookings.find(calendar="room-a")] == ["bk-0", "bk-1", "bk-2"]


@pytest.mark.parametrize("final", [BookingStatus.CANCELLED, BookingStatus.FAILED])
def test_cancelled_and_failed_bookings_release_their_reservations(
    store: Store, final: BookingStatus
) -> None:
    reserve(store, make_booking("bk-1", 1, 2, with_=("bob",)))
    with store.unit_of_work() as uow:
        if final is BookingStatus.CANCELLED:
            uow.bookings.set_status("bk-1", BookingStatus.CONFIRMED, at(-23))
        released = uow.bookings.set_status("bk-1", final, at(-22), detail="room declined")
        uow.commit()
    assert released.status is final

    reserve(store, make_booking("bk-2", 1, 2, with_=("bob",)))
    with store.reader() as uow:
        history = uow.bookings.history("bk-1")
        active = uow.bookings.active_touching(Interval(at(0), at(3)))
    assert history[-1].status is final and history[-1].detail == "room declined"
    assert [b.id for b in active] == ["bk-2"]


def test_setting_the_same_status_again_changes_nothing(store: Store) -> None:
    reserve(store, make_booking("bk-1", 1, 2))
    with store.unit_of_work() as uow:
        uow.bookings.set_status("bk-1", BookingStatus.CONFIRMED, at(-23))
        uow.bookings.set_status("bk-1", BookingStatus.CONFIRMED, at(-22))
        uow.commit()
        assert len(uow.bookings.history("bk-1")) == 2


def test_a_released_booking_cannot_come_back(store: Store) -> None:
    reserve(store, make_booking("bk-1", 1, 2))
    with store.unit_of_work() as uow:
        uow.bookings.set_status("bk-1", BookingStatus.FAILED, at(-23))
        with pytest.raises(StoreError, match="cannot become"):
            uow.bookings.set_status("bk-1", BookingStatus.CONFIRMED, at(-22))


def test_unknown_and_duplicate_bookings_are_named(store: Store) -> None:
    reserve(store, make_booking("bk-1", 1, 2))
    with store.unit_of_work() as uow:
        with pytest.raises(UnknownBooking):
            uow.bookings.set_status("nope", BookingStatus.CANCELLED, at(0))
        with pytest.raises(BookingExists):
            uow.bookings.reserve(make_booking("bk-1", 5, 6))


def test_inactive_booking_is_stored_without_holding_time(store: Store) -> None:
    reserve(store, make_booking("bk-1", 1, 2, status=BookingStatus.FAILED))
    reserve(store, make_booking("bk-2", 1, 2))
    with store.reader() as uow:
        assert [b.id for b in uow.bookings.find(calendar="room-a")] == ["bk-1", "bk-2"]


def test_find_filters_by_window_calendar_status_and_event_type(store: Store) -> None:
    reserve(store, make_booking("bk-1", 1, 2, owner="alice", rooms={"berlin": "room-a"}))
    reserve(
        store, make_booking("bk-2", 5, 6, owner="alice", with_=("bob",), rooms={"berlin": "room-b"})
    )
    reserve(store, make_booking("bk-3", 9, 10, owner="erin", rooms={}, event_type="call"))
    with store.unit_of_work() as uow:
        uow.bookings.set_status("bk-1", BookingStatus.CANCELLED, at(0))
        uow.commit()
        bookings = uow.bookings

        def ids(found: list[Booking]) -> list[str]:
            return [b.id for b in found]

        assert ids(bookings.find()) == ["bk-1", "bk-2", "bk-3"]
        assert ids(bookings.find(window=Interval(at(2), at(9)))) == ["bk-2"]
        assert ids(bookings.find(calendar="bob")) == ["bk-2"]
        assert ids(bookings.find(calendar="room-a")) == ["bk-1"]
        assert ids(bookings.find(statuses=[BookingStatus.CANCELLED])) == ["bk-1"]
        assert ids(bookings.find(event_type="call")) == ["bk-3"]
        assert ids(bookings.active_touching(Interval(at(0), at(24)), calendar="alice")) == ["bk-2"]


def test_assignment_history_counts_only_bookings_that_stand(store: Store) -> None:
    rooms = [
        ("bk-1", "room-a", -50),
        ("bk-2", "room-b", -40),
        ("bk-3", "room-a", -30),
        ("bk-4", "room-b", -20),
    ]
    for position, (booking_id, room, booked) in enumerate(rooms):
        reserve(
            store,
            make_booking(
                booking_id,
                position,
                position + 1,
                owner=f"p{position}",
                rooms={"berlin": room},
                booked_at=at(booked),
            ),
        )
    reserve(store, make_booking("other", 9, 10, owner="x", rooms={"munich": "room-m"}))
    with store.unit_of_work() as uow:
        uow.bookings.set_status("bk-4", BookingStatus.CANCELLED, at(-10))
        uow.commit()
        since = uow.bookings.assignments("berlin", at(-45))
        last = uow.bookings.last_assigned("berlin")
    assert since == [Assignment("room-b", at(-40), "bk-2"), Assignment("room-a", at(-30), "bk-3")]
    assert last == {"room-a": at(-30), "room-b": at(-40)}


def test_move_reschedules_and_re_reserves(store: Store) -> None:
    reserve(store, make_booking("bk-1", 1, 2))
    reserve(store, make_booking("bk-2", 4, 5, owner="dave"))
    with store.unit_of_work() as uow:
        moved = uow.bookings.move(
            "bk-1", start=at(1.5), end=at(2.5), rooms={"berlin": "room-a"}, at=at(-1)
        )
        uow.commit()
    assert moved.interval == Interval(at(1.5), at(2.5))
    reserve(store, make_booking("bk-3", 0.5, 1.5, owner="erin"))  # the old time is free again

    with store.unit_of_work() as uow:
        with pytest.raises(ReservationConflict) as refused:
            uow.bookings.move(
                "bk-1", start=at(4.5), end=at(5.5), rooms={"berlin": "room-a"}, at=at(-1)
            )
        uow.commit()
    assert refused.value.held_by == "bk-2"
    unchanged = get(store, "bk-1")
    assert unchanged is not None and unchanged.interval == Interval(at(1.5), at(2.5))
    with store.reader() as uow:
        assert [h.detail for h in uow.bookings.history("bk-1")] == ["reserved", "rescheduled"]


def test_reservations_move_the_calendar_versions(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.calendars.ensure(["alice", "room-a", "room-b"])
        uow.commit()
        before = uow.calendars.versions()
    reserve(store, make_booking("bk-1", 1, 2))
    with store.unit_of_work() as uow:
        uow.bookings.set_status("bk-1", BookingStatus.CANCELLED, at(0))
        uow.commit()
        after = uow.calendars.versions()
    assert after == {
        "alice": before["alice"] + 2,
        "room-a": before["room-a"] + 2,
        "room-b": before["room-b"],
    }


def test_purge_removes_old_bookings_with_their_rows(store: Store) -> None:
    reserve(store, make_booking("old", -30, -29))
    reserve(store, make_booking("new", 1, 2))
    with store.unit_of_work() as uow:
        assert uow.bookings.purge_ended_before(at(0)) == 1
        uow.commit()
        assert [b.id for b in uow.bookings.find()] == ["new"]
        assert uow.bookings.history("old") == []


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite serializes writers instead
def test_database_itself_refuses_overlap_on_postgresql(store: Store) -> None:
    """Invariant 3 holds even for a write that skips the repository's check."""
    reserve(store, make_booking("bk-1", 1, 2))
    reserve(store, make_booking("bk-2", 5, 6, owner="dave"))
    with (
        store.unit_of_work() as uow,
        pytest.raises(IntegrityError, match="ex_reservations_no_overlap"),
    ):
        uow._require().execute(
            text("UPDATE reservations SET start_at = :start WHERE booking_id = 'bk-2'"),
            {"start": at(1.5)},
        )
