"""Delivery records (revision 0008_delivery_records), on SQLite and
PostgreSQL: planned with the booking's jobs, written with the job's
completion, an invited room's answer and when it was seen, and the rooms
still to hear from."""

from __future__ import annotations

from datetime import timedelta

from engine.store import DeliveryHow, DeliveryState, Store
from tests.engine.store.samples import at, make_booking


def test_a_delivery_goes_from_planned_to_written_to_removed(db_url: str) -> None:
    with Store.open(db_url) as store, store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("bk-1", 30, 31, rooms={"rooms": "room-a"}))
        uow.deliveries.plan("bk-1", "alice", DeliveryHow.WRITTEN, at(0))
        uow.deliveries.plan("bk-1", "room-a", DeliveryHow.INVITED, at(0))
        uow.commit()
        [owner, room] = uow.deliveries.for_booking("bk-1")
        assert (owner.calendar, owner.how, owner.state) == (
            "alice", DeliveryHow.WRITTEN, DeliveryState.PENDING)
        assert (room.calendar, room.how, room.state, room.source) == (
            "room-a", DeliveryHow.INVITED, DeliveryState.PENDING, "")

        uow.deliveries.written("bk-1", "alice", source="/dav/alice/x.ics", etag='"1"',
                               sequence=0, now=at(1))
        uow.deliveries.invited("bk-1", "room-a", source="/dav/alice/x.ics", etag='"1"',
                               sequence=0, now=at(1))
        uow.commit()
        owner, room = uow.deliveries.of("bk-1", "alice"), uow.deliveries.of("bk-1", "room-a")
        assert owner is not None and room is not None
        assert (owner.state, owner.source, owner.etag) == (
            DeliveryState.WRITTEN, "/dav/alice/x.ics", '"1"')
        # The invitation went out at its first recorded write: the answer
        # time counts from there, not from the plan.
        assert room.since == at(1) and room.state is DeliveryState.PENDING

        uow.deliveries.saw_version("bk-1", "alice", source="/dav/alice/x.ics", etag='"2"')
        uow.deliveries.saw_version("bk-1", "alice", source="/elsewhere.ics", etag='"9"')
        uow.deliveries.removed("bk-1", "alice", at(2))
        uow.commit()
        owner = uow.deliveries.of("bk-1", "alice")
        assert owner is not None
        assert (owner.state, owner.etag, owner.updated_at) == (
            DeliveryState.REMOVED, '"2"', at(2))


def test_rooms_awaiting_an_answer_are_the_invited_ones_still_in_their_booking(
    db_url: str,
) -> None:
    with Store.open(db_url) as store, store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("bk-1", 30, 31, rooms={"rooms": "room-a"}))
        uow.bookings.reserve(make_booking("bk-2", 32, 33, rooms={"rooms": "room-b"}))
        for booking_id, room in (("bk-1", "room-a"), ("bk-2", "room-b")):
            uow.deliveries.plan(booking_id, "alice", DeliveryHow.WRITTEN, at(0))
            uow.deliveries.plan(booking_id, room, DeliveryHow.INVITED, at(0))
        # bk-1's invitation went out; bk-2's owner event is not written yet.
        uow.deliveries.invited("bk-1", "room-a", source="s1", etag="e", sequence=0, now=at(1))
        # A room that left bk-1 earlier (declined) is not asked again.
        uow.deliveries.plan("bk-1", "room-x", DeliveryHow.INVITED, at(0))
        uow.deliveries.invited("bk-1", "room-x", source="s1", etag="e", sequence=0, now=at(1))
        uow.deliveries.removed("bk-1", "room-x", at(1), state=DeliveryState.DECLINED)
        uow.commit()

        waiting = uow.deliveries.awaiting_answers(at(1), accepted_before=at(1))
        assert [(d.booking_id, d.calendar) for d in waiting] == [("bk-1", "room-a")]

        uow.deliveries.answered("bk-1", "room-a", "accepted", DeliveryState.ACCEPTED, at(2))
        uow.commit()
        # Accepted rooms are looked at again only when last seen long enough ago.
        assert uow.deliveries.awaiting_answers(at(2), accepted_before=at(2)) == []
        later = at(2) + timedelta(minutes=11)
        assert [d.calendar for d in uow.deliveries.awaiting_answers(
            later, accepted_before=later - timedelta(minutes=10))] == ["room-a"]
        uow.deliveries.looked_at("bk-1", "room-a", later)
        uow.commit()
        room = uow.deliveries.of("bk-1", "room-a")
        assert room is not None
        assert (room.answered_at, room.updated_at, room.answer) == (later, at(2), "accepted")
