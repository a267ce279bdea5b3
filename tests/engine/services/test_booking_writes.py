"""Booking end to end on a real Radicale: the events land once in every
calendar, cancel takes them out, a room taken on the provider is swapped,
failures are compensated.  Each test looks at the server itself, not only
at calpool's database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.memory import MemoryProvider, booking_uid, copy_uid
from engine.core.model import AssignmentMethod, BookingStatus, Interval
from engine.core.slots import SlotRejection
from engine.errors import PermanentError, TransientError
from engine.services.booking import (
    InvalidBooking,
    SlotUnavailable,
    UnknownEventType,
)
from engine.services.outbox import OutboxPolicy
from engine.store import Store
from tests.engine.services.booking_harness import (
    ANN,
    NOW,
    SLOT,
    FlakyConnector,
    Site,
    consult,
    make_site,
    uid_of,
)
from tests.engine.services.memory_calendars import plain_event, put_event

WAIT = timedelta(seconds=20)


def statuses(site: Site, booking_id: str) -> list[str]:
    return [change.status.value for change in site.bookings.history(booking_id)]


def test_booking_lands_once_in_owner_room_and_with_person_with_one_uid(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store, persons=("alice", "bob"),
                     event_types=[consult(with_=("bob",))])

    booking = site.bookings.book_and_wait("consult", SLOT, ANN, "bring the plans", NOW,
                                          confirm_within=WAIT)

    assert booking.status is BookingStatus.CONFIRMED
    assert booking.rooms == {"rooms": "room-a"}
    uid = uid_of(booking.id)
    assert site.uids("alice") == [uid]
    assert site.uids("room-a") == [uid]
    assert site.uids("bob") == [uid]
    assert site.uids("room-b") == []
    owner_event = site.events("alice")[0]
    # The owner's copy keeps the UID the attendee sees; the others have their own.
    assert owner_event["UID"] == booking_uid(booking.id)
    assert site.events("room-a")[0]["UID"] == copy_uid(booking.id, site.ids["room-a"])
    assert site.events("bob")[0]["UID"] == copy_uid(booking.id, site.ids["bob"])
    assert owner_event["SUMMARY"] == "Consultation with Ann Example"
    assert owner_event["DESCRIPTION"] == "Booked through calpool. bring the plans"
    assert owner_event["LOCATION"] == "Room room-a"
    assert "mailto:ann@example.com" in owner_event["attendees"]
    assert "mailto:bob@example.com" in owner_event["attendees"]
    assert statuses(site, booking.id) == ["pending", "confirmed"]

    # A second drain (a retry after a crash, say) writes nothing twice.
    site.bookings.outbox.drain(NOW)
    assert site.uids("alice") == [uid] and site.uids("room-a") == [uid]

    cancelled = site.bookings.cancel(booking.id, NOW)

    assert cancelled.status is BookingStatus.CANCELLED
    assert site.uids("alice") == site.uids("room-a") == site.uids("bob") == []
    assert site.bookings.cancel(booking.id, NOW).status is BookingStatus.CANCELLED
    assert statuses(site, booking.id) == ["pending", "confirmed", "cancelled"]


def test_a_booking_counts_at_once_and_its_event_is_not_counted_twice(
    provider: MemoryProvider, store: Store
) -> None:
    """Invariant 7: the reservation holds the room before any write or
    sync; after the sync brings calpool's own event back, cancelling frees
    the slot again at once (the event was never counted as busy)."""
    site = make_site(provider, store)
    window = Interval(SLOT, SLOT + timedelta(minutes=30))

    def offered() -> tuple[str, ...]:
        answer = site.slots.slots("consult", window, now=NOW)
        return answer.slots[0].rooms_available["rooms"] if answer.slots else ()

    assert offered() == ("room-a", "room-b")
    booking = site.bookings.book("consult", SLOT, ANN, "", NOW)
    assert offered() == ()  # alice herself is taken now, before any provider write

    site.bookings.outbox.drain(NOW)
    site.sync_all()
    with store.reader() as uow:
        own = uow.events.in_window("room-a", window)
    assert [event.booking_id for event in own] == [booking.id]
    assert offered() == ()

    site.bookings.cancel(booking.id, NOW)
    assert offered() == ("room-a", "room-b")


def test_a_slot_query_after_a_booking_no_longer_offers_its_room(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store, persons=("alice", "carol"),
                     event_types=[consult(), consult("intro", owner="carol")])
    window = Interval(SLOT, SLOT + timedelta(minutes=30))

    site.bookings.book("consult", SLOT, ANN, "", NOW)

    [slot] = site.slots.slots("intro", window, now=NOW).slots
    assert slot.rooms_available["rooms"] == ("room-b",)


def test_a_room_taken_on_the_provider_after_the_last_sync_is_swapped(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store)
    site.sync_all()
    put_event(provider, site.ids["room-a"], "walk-in",
              plain_event("walk-in", SLOT - timedelta(minutes=15), SLOT + timedelta(minutes=15)))

    booking = site.bookings.book_and_wait("consult", SLOT, ANN, "", NOW, confirm_within=WAIT)

    assert booking.status is BookingStatus.CONFIRMED
    assert booking.rooms == {"rooms": "room-b"}
    uid = uid_of(booking.id)
    assert site.uids("room-b") == [uid]
    assert site.uids("room-a") == ["walk-in"]
    # The owner's event was written naming room A first, then updated.
    [owner_event] = site.events("alice")
    assert (owner_event["name"], owner_event["LOCATION"]) == (uid, "Room room-b")
    details = [change.detail for change in site.bookings.history(booking.id)]
    assert "room room-a busy on the provider; reassigned to room-b" in details
    assert statuses(site, booking.id)[-1] == "confirmed"


def test_no_free_room_left_fails_the_booking_and_removes_the_owner_event(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store)
    site.sync_all()
    for room in ("room-a", "room-b"):
        put_event(provider, site.ids[room], f"taken-{room}",
                  plain_event(f"taken-{room}", SLOT, SLOT + timedelta(hours=1)))

    booking = site.bookings.book_and_wait("consult", SLOT, ANN, "", NOW, confirm_within=WAIT)

    assert booking.status is BookingStatus.FAILED
    assert site.uids("alice") == []
    assert site.uids("room-a") == ["taken-room-a"] and site.uids("room-b") == ["taken-room-b"]
    last = site.bookings.history(booking.id)[-1]
    assert last.status is BookingStatus.FAILED
    assert "no other room of pool rooms is free" in last.detail
    # A failed booking holds nothing: the slot is bookable again by the cache.
    with store.reader() as uow:
        assert uow.bookings.active_touching(booking.interval) == []


def test_transient_write_errors_retry_with_backoff_then_confirm(
    provider: MemoryProvider, store: Store
) -> None:
    flaky: list[FlakyConnector] = []

    def wrap(inner: object) -> FlakyConnector:
        flaky.append(FlakyConnector(inner))  # type: ignore[arg-type]
        return flaky[0]

    site = make_site(provider, store, wrap=wrap)  # type: ignore[arg-type]
    connector = flaky[0]
    connector.failures[site.ids["room-a"]] = [TransientError("503"), TransientError("503")]

    booking = site.bookings.book("consult", SLOT, ANN, "", NOW)
    first = site.bookings.outbox.drain(NOW)

    assert (first.done, first.retried) == (1, 1)  # the owner's event, the room's retry
    assert site.bookings.get(booking.id).status is BookingStatus.PENDING
    with store.reader() as uow:
        [(state, room_job)] = [(s, j) for s, j in uow.outbox.for_booking(booking.id)
                               if j.payload["calendar"] == "room-a"]
    assert state == "pending" and room_job.due_at > NOW
    assert site.bookings.outbox.drain(NOW).jobs == 0  # not due yet

    site.clock.now = NOW + timedelta(hours=1)
    site.bookings.outbox.drain(site.clock.now)
    site.bookings.outbox.drain(site.clock.now + timedelta(hours=1))

    assert site.bookings.get(booking.id).status is BookingStatus.CONFIRMED
    assert site.uids("room-a") == [uid_of(booking.id)]


def test_a_permanent_write_error_fails_the_booking_and_compensates(
    provider: MemoryProvider, store: Store
) -> None:
    flaky: list[FlakyConnector] = []

    def wrap(inner: object) -> FlakyConnector:
        flaky.append(FlakyConnector(inner))  # type: ignore[arg-type]
        return flaky[0]

    site = make_site(provider, store, wrap=wrap,  # type: ignore[arg-type]
                     policy=OutboxPolicy(max_attempts=2))
    flaky[0].failures[site.ids["room-a"]] = [PermanentError("the server refuses the event")]

    booking = site.bookings.book_and_wait("consult", SLOT, ANN, "", NOW, confirm_within=WAIT)

    assert booking.status is BookingStatus.FAILED
    assert "the server refuses the event" in site.bookings.history(booking.id)[-1].detail
    assert site.uids("alice") == [] and site.uids("room-a") == []
    # Giving up after max_attempts transient failures fails the same way.
    flaky[0].failures[site.ids["room-a"]] = [TransientError("503")] * 2
    again = site.bookings.book("consult", SLOT, ANN, "", NOW)
    site.bookings.outbox.drain(NOW)
    site.bookings.outbox.drain(NOW + timedelta(days=1))
    assert site.bookings.get(again.id).status is BookingStatus.FAILED
    assert site.uids("alice") == [] and site.uids("room-a") == []


def test_live_recheck_asks_the_providers_before_reserving(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store, event_types=[consult(live_recheck=True)])
    site.sync_all()
    put_event(provider, site.ids["room-a"], "late",
              plain_event("late", SLOT, SLOT + timedelta(minutes=30)))

    booking = site.bookings.book("consult", SLOT, ANN, "", NOW)
    assert booking.rooms == {"rooms": "room-b"}  # room A dropped before reserving

    later = SLOT + timedelta(hours=2)
    put_event(provider, site.ids["alice"], "dentist",
              plain_event("dentist", later, later + timedelta(minutes=30)))
    with pytest.raises(SlotUnavailable) as refused:
        site.bookings.book("consult", later, ANN, "", NOW)
    assert refused.value.reason is SlotRejection.OWNER_BUSY


def test_bad_requests_are_refused_before_anything_is_stored(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store, pools={"rooms": (["room-a"], AssignmentMethod.PRIORITY)})

    with pytest.raises(InvalidBooking) as off_grid:
        site.bookings.book("consult", SLOT + timedelta(minutes=10), ANN, "", NOW)
    assert off_grid.value.field == "start"
    with pytest.raises(SlotUnavailable) as past:
        site.bookings.book("consult", NOW - timedelta(hours=2), ANN, "", NOW)
    assert past.value.reason is SlotRejection.PAST
    with pytest.raises(UnknownEventType):
        site.bookings.book("nope", SLOT, ANN, "", NOW)
    with pytest.raises(InvalidBooking) as email:
        site.bookings.book("consult", SLOT, ANN.__class__("Ann", "not-an-address"), "", NOW)
    assert email.value.field == "attendee.email"
    assert site.bookings.list() == []

    site.bookings.book("consult", SLOT, ANN, "", NOW)
    carol = SLOT + timedelta(minutes=30)
    site.bookings.book("consult", carol, ANN, "", NOW)
    assert [b.start for b in site.bookings.list(start=carol)] == [carol]
    assert len(site.bookings.list(calendar="room-a")) == 2
    assert site.bookings.list(status=[BookingStatus.CONFIRMED]) == []
