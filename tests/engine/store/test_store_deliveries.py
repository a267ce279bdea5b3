"""Delivery records (revision 0008), on SQLite and PostgreSQL: planned with
the booking's jobs, written with the job's completion, an invited room's
answer and when it was seen, removed, and the rooms still to hear from."""

from __future__ import annotations

from engine.core.model import BookingStatus
from engine.store import DeliveryHow, DeliveryState, Store
from tests.engine.store.samples import at, make_booking


def test_a_delivery_goes_from_planned_to_written_to_removed(db_url: str) -> None:
    with Store.open(db_url) as store, store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("bk-1", 30, 31, rooms={"rooms": "room-a"}))
        uow.deliveries.plan("bk-1", "alice", DeliveryHow.WRITTEN, at(0))
        uow.deliveries.plan("bk-1", "room-a", DeliveryHow.INVITED, at(0))
        uow.commit()
        owner, room = uow.deliveries.for_booking("bk-1")
        assert (owner.calendar, owner.how, owner.state) == (
            "alice", DeliveryHow.WRITTEN, DeliveryState.PENDING)
        assert (room.calendar, room.how, room.state, room.source) == (
            "room-a", DeliveryHow.INVITED, DeliveryState.PENDING, "")

        uow.deliveries.written("bk-1", "alice", source="/dav/alice/x.ics", etag='"1"',
                               sequence=2, now=at(1))
        uow.deliveries.invited("bk-1", "room-a", source="/dav/alice/x.ics", etag='"1"',
                               sequence=2, now=at(1))
        uow.deliveries.answered("bk-1", "room-a", "accepted", DeliveryState.ACCEPTED, at(2))
        uow.commit()
        owner, room = uow.deliveries.of("bk-1", "alice"), uow.deliveries.of("bk-1", "room-a")
        assert owner is not None and room is not None
        assert (owner.state, owner.source, owner.etag, owner.sequence, owner.updated_at) == (
            DeliveryState.WRITTEN, "/dav/alice/x.ics", '"1"', 2, at(1))
        assert (room.state, room.answer, room.answered_at, room.since) == (
            DeliveryState.ACCEPTED, "accepted", at(2), at(0))

        uow.deliveries.removed("bk-1", "alice", at(3))
        uow.deliveries.removed("bk-1", "room-a", at(3), state=DeliveryState.DECLINED)
        uow.commit()
        assert [(d.calendar, d.state) for d in uow.deliveries.for_booking("bk-1")] == [
            ("alice", DeliveryState.REMOVED), ("room-a", DeliveryState.DECLINED)]


def test_planning_again_keeps_where_the_copy_is_and_a_removed_one_starts_anew(
    db_url: str,
) -> None:
    with Store.open(db_url) as store, store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("bk-1", 30, 31))
        uow.deliveries.plan("bk-1", "alice", DeliveryHow.WRITTEN, at(0))
        uow.deliveries.written("bk-1", "alice", source="s", etag="e", sequence=0, now=at(1))
        uow.deliveries.plan("bk-1", "alice", DeliveryHow.WRITTEN, at(2))  # an update queued
        again = uow.deliveries.of("bk-1", "alice")
        assert again is not None
        assert (again.state, again.source, again.etag, again.since) == (
            DeliveryState.PENDING, "s", "e", at(0))
        uow.deliveries.plan("bk-1", "room-b", DeliveryHow.INVITED, at(0))
        uow.deliveries.answered("bk-1", "room-b", "declined", DeliveryState.DECLINED, at(1))
        uow.deliveries.removed("bk-1", "room-b", at(1))
        uow.deliveries.plan("bk-1", "room-b", DeliveryHow.INVITED, at(5))  # swapped back
        back = uow.deliveries.of("bk-1", "room-b")
        assert back is not None
        assert (back.state, back.answer, back.since) == (DeliveryState.PENDING, None, at(5))


def test_rooms_awaiting_answers_are_invited_rooms_of_active_bookings_not_over(
    db_url: str,
) -> None:
    with Store.open(db_url) as store, store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("bk-1", 30, 31, rooms={"rooms": "room-a"}))
        uow.bookings.reserve(make_booking("bk-2", 32, 33, rooms={"rooms": "room-b"}))
        uow.bookings.reserve(make_booking("bk-3", 34, 35, rooms={"rooms": "room-c"}))
        for booking_id, room in (("bk-1", "room-a"), ("bk-2", "room-b"), ("bk-3", "room-c")):
            uow.deliveries.plan(booking_id, "alice", DeliveryHow.WRITTEN, at(0))
            uow.deliveries.plan(booking_id, room, DeliveryHow.INVITED, at(0))
        uow.deliveries.removed("bk-2", "room-b", at(1))
        uow.bookings.set_status("bk-3", BookingStatus.CANCELLED, at(1), detail="cancelled")
        uow.commit()

        waiting = uow.deliveries.awaiting_answers(at(1))
        assert [(d.booking_id, d.calendar) for d in waiting] == [("bk-1", "room-a")]
        assert uow.deliveries.awaiting_answers(at(31)) == []  # bk-1 is over by then
        found = uow.deliveries.for_bookings(["bk-1", "bk-2", "nothing"])
        assert {k: [d.calendar for d in v] for k, v in found.items()} == {
            "bk-1": ["alice", "room-a"], "bk-2": ["alice", "room-b"], "nothing": []}
