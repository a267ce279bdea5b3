"""Rescheduling end to end on Radicale: the events move in place (same UID,
higher SEQUENCE, one per calendar), rooms are kept where free and swapped
where not, an overlapping move is not blocked by the booking itself, and a
crash between the move and its provider writes heals on the next drain.
Each test looks at the server itself, not only at calpool's database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from connectors.memory import MemoryProvider
from engine.core.model import Attendee, BookingStatus, Interval
from engine.core.slots import SlotRejection
from engine.ports import CalendarConnector, CalendarRef, EventDraft, WrittenEvent
from engine.services.booking import BookingNotFound, InvalidBooking, SlotUnavailable
from engine.services.outbox import OutboxPolicy, OutboxWorker
from engine.services.reschedule import BookingNotReschedulable, RescheduleService
from engine.store import Store
from tests.engine.services.booking_harness import (
    ANN,
    NOW,
    SLOT,
    Site,
    consult,
    make_site,
    uid_of,
)
from tests.engine.services.memory_calendars import plain_event, put_event

WAIT = timedelta(seconds=20)
QUARTER = consult(step=timedelta(minutes=15))
BEN = Attendee("Ben Other", "ben@example.com")


def mover(site: Site, outbox: OutboxWorker | None = None) -> RescheduleService:
    return RescheduleService(site.store, site.bookings._cache, site.bookings.catalog,
                             outbox or site.bookings.outbox)


def on_server(site: Site, key: str) -> list[tuple[str, datetime, int]]:
    """(name, DTSTART, SEQUENCE) of each event the provider holds in ``key``'s
    calendar, read on the provider directly; calpool's copies named by their
    booking (``uid_of``), others by UID."""
    found = []
    for stored in site.stored(key):
        start = stored.event.start
        assert isinstance(start, datetime), stored
        booking = stored.event.booking_id
        name = uid_of(booking) if booking else stored.event.uid
        found.append((name, start, stored.event.sequence))
    return sorted(found)


def test_a_quarter_hour_move_overlapping_the_old_time_keeps_the_room(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store, event_types=[QUARTER])
    booking = site.bookings.book_and_wait("consult", SLOT, ANN, "", NOW, confirm_within=WAIT)
    assert booking.rooms == {"rooms": "room-a"}
    later = SLOT + timedelta(minutes=15)

    moved = mover(site).reschedule(booking.id, later, NOW)

    assert (moved.start, moved.end) == (later, later + timedelta(minutes=30))
    assert moved.rooms == {"rooms": "room-a"} and moved.status is BookingStatus.CONFIRMED
    uid = uid_of(booking.id)
    for key in ("alice", "room-a"):
        [(found_uid, start, sequence)] = on_server(site, key)
        assert (found_uid, start) == (uid, later) and sequence >= 1, key
    assert on_server(site, "room-b") == []
    last = site.bookings.history(booking.id)[-1]
    assert last.status is BookingStatus.CONFIRMED
    assert last.detail == f"rescheduled from {SLOT.isoformat()} to {later.isoformat()}"
    with store.reader() as uow:
        assert uow.bookings.reserved_intervals(["alice", "room-a"], Interval(SLOT, later)) == {
            "alice": [], "room-a": []}


def test_a_move_to_where_the_room_is_busy_takes_another_room_of_the_pool(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store)
    booking = site.bookings.book_and_wait("consult", SLOT, ANN, "", NOW, confirm_within=WAIT)
    later = SLOT + timedelta(hours=2)
    put_event(provider, site.ids["room-a"], "meeting",
              plain_event("meeting", later, later + timedelta(hours=1)))
    site.sync_all()

    moved = mover(site).reschedule(booking.id, later, NOW)

    assert moved.rooms == {"rooms": "room-b"}
    uid = uid_of(booking.id)
    assert [entry[:2] for entry in on_server(site, "alice")] == [(uid, later)]
    assert [entry[:2] for entry in on_server(site, "room-b")] == [(uid, later)]
    assert site.uids("room-a") == ["meeting"]  # our old copy is gone, theirs stays
    [owner_event] = site.events("alice")
    assert owner_event["LOCATION"] == "Room room-b"
    assert site.bookings.history(booking.id)[-1].detail.endswith("rooms: room-b instead of room-a")


def test_a_room_held_by_another_booking_then_is_swapped_and_the_old_time_freed(
    provider: MemoryProvider, store: Store
) -> None:
    later = SLOT + timedelta(hours=1)
    other = consult("other", owner="bob")
    site = make_site(provider, store, persons=("alice", "bob"), event_types=[consult(), other])
    first = site.bookings.book_and_wait("consult", SLOT, ANN, "", NOW, confirm_within=WAIT)
    blocking = site.bookings.book_and_wait("other", later, BEN, "", NOW, confirm_within=WAIT)
    assert blocking.rooms == {"rooms": "room-a"} == first.rooms

    moved = mover(site).reschedule(first.id, later, NOW)

    assert moved.rooms == {"rooms": "room-b"}
    assert sorted(site.uids("room-a")) == [uid_of(blocking.id)]
    assert site.uids("room-b") == [uid_of(first.id)]
    # The old time is bookable again, room-a included.
    again = site.bookings.book("consult", SLOT, BEN, "", NOW)
    assert again.rooms == {"rooms": "room-a"}


def test_an_unavailable_new_start_changes_nothing(provider: MemoryProvider, store: Store) -> None:
    site = make_site(provider, store)
    booking = site.bookings.book_and_wait("consult", SLOT, ANN, "", NOW, confirm_within=WAIT)
    later = SLOT + timedelta(hours=1)
    put_event(provider, site.ids["alice"], "dentist",
              plain_event("dentist", later, later + timedelta(hours=1)))
    site.sync_all()
    before = on_server(site, "alice")

    with pytest.raises(SlotUnavailable) as refused:
        mover(site).reschedule(booking.id, later, NOW)
    assert refused.value.reason is SlotRejection.OWNER_BUSY
    with pytest.raises(SlotUnavailable) as past:
        mover(site).reschedule(booking.id, NOW - timedelta(hours=1), NOW)
    assert past.value.reason is SlotRejection.PAST
    with pytest.raises(InvalidBooking):
        mover(site).reschedule(booking.id, SLOT + timedelta(minutes=10), NOW)

    assert site.bookings.get(booking.id) == booking
    assert on_server(site, "alice") == before
    assert [c.status.value for c in site.bookings.history(booking.id)] == ["pending", "confirmed"]


def test_cancelled_failed_and_unknown_bookings_cannot_be_rescheduled(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store)
    site.sync_all()
    booking = site.bookings.book_and_wait("consult", SLOT, ANN, "", NOW, confirm_within=WAIT)
    site.bookings.cancel(booking.id, NOW)
    for room in ("room-a", "room-b"):
        put_event(provider, site.ids[room], f"taken-{room}",
                  plain_event(f"taken-{room}", SLOT + timedelta(hours=3),
                            SLOT + timedelta(hours=4)))
    failed = site.bookings.book_and_wait("consult", SLOT + timedelta(hours=3), ANN, "", NOW,
                                         confirm_within=WAIT)
    assert failed.status is BookingStatus.FAILED

    for gone in (booking, failed):
        with pytest.raises(BookingNotReschedulable, match=gone.status.value):
            mover(site).reschedule(gone.id, SLOT + timedelta(hours=6), NOW)
    with pytest.raises(BookingNotFound):
        mover(site).reschedule("no-such-booking", SLOT, NOW)
    assert site.uids("alice") == []


def test_moving_to_the_same_start_changes_nothing(provider: MemoryProvider, store: Store) -> None:
    site = make_site(provider, store)
    booking = site.bookings.book_and_wait("consult", SLOT, ANN, "", NOW, confirm_within=WAIT)

    assert mover(site).reschedule(booking.id, SLOT, NOW) == booking
    assert len(site.bookings.history(booking.id)) == 2


class Crash(BaseException):
    """The process dies (not an error the outbox could catch and retry)."""


class CrashOnUpdate:
    """The real connector, until the first event update: then the process 'dies'."""

    def __init__(self, inner: CalendarConnector) -> None:
        self._inner = inner
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def update_event(self, calendar: CalendarRef, draft: EventDraft, *,
                     etag: str | None = None, source: str = "") -> WrittenEvent:
        if self.armed:
            self.armed = False
            raise Crash
        return self._inner.update_event(calendar, draft, etag=etag, source=source)


def test_a_crash_between_the_move_and_its_writes_heals_on_the_next_drain(
    provider: MemoryProvider, store: Store
) -> None:
    """The move commits, the first provider update dies with the process;
    a fresh worker (after the dead one's claims run out) finishes: exactly
    one event per calendar, at the new time."""
    crashing: list[CrashOnUpdate] = []

    def wrap(inner: CalendarConnector) -> CalendarConnector:
        crashing.append(CrashOnUpdate(inner))
        return crashing[0]  # type: ignore[return-value]

    policy = OutboxPolicy(hold_for=timedelta(minutes=5))
    site = make_site(provider, store, wrap=wrap, policy=policy)
    booking = site.bookings.book_and_wait("consult", SLOT, ANN, "", NOW, confirm_within=WAIT)
    later = SLOT + timedelta(hours=2)
    put_event(provider, site.ids["room-a"], "meeting",
              plain_event("meeting", later, later + timedelta(hours=1)))
    site.sync_all()
    crashing[0].armed = True

    with pytest.raises(Crash):
        mover(site).reschedule(booking.id, later, NOW)

    # Committed: the booking holds the new time and room-b; the server still
    # has the old events.
    assert site.bookings.get(booking.id).rooms == {"rooms": "room-b"}
    assert [entry[1] for entry in on_server(site, "alice")] == [SLOT]
    fresh = OutboxWorker(store, site.bookings._cache, site.bookings.catalog, policy=policy,
                         name="after-restart")
    assert fresh.drain(NOW).jobs == 0  # the dead worker's claims still hold its jobs
    fresh.drain(NOW + timedelta(minutes=6))

    uid = uid_of(booking.id)
    assert [entry[:2] for entry in on_server(site, "alice")] == [(uid, later)]
    assert [entry[:2] for entry in on_server(site, "room-b")] == [(uid, later)]
    assert site.uids("room-a") == ["meeting"]
    with store.reader() as uow:
        assert all(state == "done" for state, _ in uow.outbox.for_booking(booking.id))
    assert site.bookings.get(booking.id).status is BookingStatus.CONFIRMED


def test_a_move_beyond_the_daily_limit_is_refused_but_within_its_own_day_allowed(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store, event_types=[consult(max_per_day=1)])
    booking = site.bookings.book_and_wait("consult", SLOT, ANN, "", NOW, confirm_within=WAIT)
    next_day = site.bookings.book_and_wait("consult", SLOT + timedelta(days=1), BEN, "", NOW,
                                           confirm_within=WAIT)

    moved = mover(site).reschedule(booking.id, SLOT + timedelta(hours=1), NOW)
    assert moved.start == SLOT + timedelta(hours=1)
    with pytest.raises(SlotUnavailable) as refused:
        mover(site).reschedule(booking.id, next_day.start + timedelta(hours=1), NOW)
    assert refused.value.reason is SlotRejection.DAILY_LIMIT
