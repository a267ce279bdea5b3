"""Rooms that answer (issue 15), on the in-memory provider: invited rooms of
the owner's account are attendees of the owner's event, not copies; they
accept, decline, stay silent, or decline after confirmation, and calpool
reassigns within the pool, updates the owner's event in place, records the
history and the delivery records."""

from __future__ import annotations

from datetime import timedelta

from connectors.memory import MemoryProvider
from connectors.memory.events import Answer
from engine.core.model import AssignmentMethod, BookingStatus
from engine.ports import CalendarConnector
from engine.services.limits import CoolingDown
from engine.store import DeliveryHow, DeliveryState, Store
from tests.engine.services.booking_harness import (
    ANN,
    NOW,
    SLOT,
    FlakyConnector,
    Site,
    make_site,
)

ROOMS = ["room-a", "room-b", "room-c"]


def invited_site(provider: MemoryProvider, store: Store, rooms: list[str] = ROOMS) -> Site:
    return make_site(provider, store, pools={"rooms": (rooms, AssignmentMethod.PRIORITY)},
                     invited=rooms)


def book(site: Site) -> str:
    """Book and run its writes here (no waiting request's thread around)."""
    booking = site.bookings.book("consult", SLOT, ANN, "", NOW)
    site.bookings.outbox.drain(NOW, booking_id=booking.id)
    return booking.id


def owner_event(site: Site):  # type: ignore[no-untyped-def]
    (stored,) = site.stored("alice")
    return stored


def answer(site: Site, room: str, given: Answer) -> None:
    site.provider.answer(site.ids["alice"], owner_event(site).id, f"{room}@example.com", given)


def records(site: Site, booking_id: str) -> dict[str, tuple[str, str]]:
    return {r.calendar: (r.how.value, r.state.value)
            for r in site.bookings.deliveries(booking_id)}


def details(site: Site, booking_id: str) -> list[str]:
    return [change.detail for change in site.bookings.history(booking_id)]


def test_an_invited_room_is_an_attendee_of_the_owners_event_and_its_accept_confirms(
    provider: MemoryProvider, store: Store
) -> None:
    site = invited_site(provider, store)
    booking_id = book(site)

    # Written into the owner's calendar only; the room is invited, not written.
    assert site.bookings.get(booking_id).status is BookingStatus.PENDING
    assert [site.stored(room) for room in ROOMS] == [[], [], []]
    attendees = {p.email: p.answer for p in owner_event(site).event.attendees}
    assert attendees["room-a@example.com"] is Answer.NEEDS_ACTION
    assert records(site, booking_id) == {"alice": ("written", "written"),
                                         "room-a": ("invited", "pending")}

    answer(site, "room-a", Answer.ACCEPTED)
    report = site.room_answers().check(NOW + timedelta(seconds=10))

    assert report.accepted == [f"{booking_id}/room-a"]
    assert site.bookings.get(booking_id).status is BookingStatus.CONFIRMED
    assert records(site, booking_id)["room-a"] == ("invited", "accepted")


def test_a_declining_room_is_replaced_in_its_pool_and_the_owners_event_updated_once(
    provider: MemoryProvider, store: Store
) -> None:
    site = invited_site(provider, store)
    booking_id = book(site)
    first = owner_event(site)

    answer(site, "room-a", Answer.DECLINED)
    report = site.room_answers().check(NOW + timedelta(seconds=10))

    booking = site.bookings.get(booking_id)
    assert report.reassigned == [f"{booking_id}/room-a->room-b"]
    assert booking.rooms == {"rooms": "room-b"}
    assert booking.status is BookingStatus.PENDING  # room-b has yet to answer
    updated = owner_event(site)  # one event, updated in place
    assert (updated.id, updated.event.uid) == (first.id, first.event.uid)
    assert updated.event.sequence == 1
    emails = {p.email for p in updated.event.attendees}
    assert "room-b@example.com" in emails and "room-a@example.com" not in emails
    assert any("room room-a declined the invitation; reassigned to room-b" in d
               for d in details(site, booking_id))
    assert records(site, booking_id) == {"alice": ("written", "written"),
                                         "room-a": ("invited", "declined"),
                                         "room-b": ("invited", "pending")}
    assert [site.stored(room) for room in ROOMS] == [[], [], []]

    answer(site, "room-b", Answer.ACCEPTED)
    site.room_answers().check(NOW + timedelta(seconds=20))
    assert site.bookings.get(booking_id).status is BookingStatus.CONFIRMED


def test_when_every_room_declines_the_booking_fails_and_its_event_is_removed(
    provider: MemoryProvider, store: Store
) -> None:
    site = invited_site(provider, store, rooms=["room-a", "room-b"])
    booking_id = book(site)

    answer(site, "room-a", Answer.DECLINED)
    site.room_answers().check(NOW + timedelta(seconds=10))
    answer(site, "room-b", Answer.DECLINED)
    report = site.room_answers().check(NOW + timedelta(seconds=20))

    assert report.failed == [booking_id]
    booking = site.bookings.get(booking_id)
    assert booking.status is BookingStatus.FAILED
    assert "no other room of pool rooms is free" in details(site, booking_id)[-1]
    assert site.stored("alice") == []  # compensated
    assert records(site, booking_id) == {"alice": ("written", "removed"),
                                         "room-a": ("invited", "declined"),
                                         "room-b": ("invited", "declined")}


def test_a_silent_room_counts_as_declined_after_room_answer_within(
    provider: MemoryProvider, store: Store
) -> None:
    site = invited_site(provider, store)
    booking_id = book(site)

    # Within the two minutes nothing happens ...
    early = site.room_answers().check(NOW + timedelta(minutes=1, seconds=59))
    assert early.reassigned == [] and site.bookings.get(booking_id).rooms == {"rooms": "room-a"}
    # ... after them the room is replaced.
    late = site.room_answers().check(NOW + timedelta(minutes=2, seconds=1))

    assert late.reassigned == [f"{booking_id}/room-a->room-b"]
    assert any("room room-a did not answer within 2 min; reassigned to room-b" in d
               for d in details(site, booking_id))


def test_a_room_declining_an_hour_after_confirmation_is_replaced(
    provider: MemoryProvider, store: Store
) -> None:
    site = invited_site(provider, store)
    booking_id = book(site)
    answer(site, "room-a", Answer.ACCEPTED)
    site.room_answers().check(NOW + timedelta(seconds=10))
    assert site.bookings.get(booking_id).status is BookingStatus.CONFIRMED

    answer(site, "room-a", Answer.DECLINED)
    report = site.room_answers().check(NOW + timedelta(hours=1))

    assert report.reassigned == [f"{booking_id}/room-a->room-b"]
    booking = site.bookings.get(booking_id)
    assert booking.rooms == {"rooms": "room-b"}
    assert any("room room-a declined the invitation after accepting it; reassigned to room-b"
               in d for d in details(site, booking_id))
    assert records(site, booking_id)["room-a"] == ("invited", "declined")


def test_cancel_removes_the_owners_event_and_with_it_the_invitation(
    provider: MemoryProvider, store: Store
) -> None:
    site = invited_site(provider, store)
    booking_id = book(site)
    site.bookings.cancel(booking_id, NOW)
    assert site.stored("alice") == []
    assert records(site, booking_id) == {"alice": ("written", "removed"),
                                         "room-a": ("invited", "removed")}
    assert site.room_answers().check(NOW + timedelta(minutes=5)).reassigned == []


def test_written_rooms_get_records_with_the_providers_id(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store)
    booking_id = book(site)
    found = {r.calendar: r for r in site.bookings.deliveries(booking_id)}
    assert {k: (r.how, r.state) for k, r in found.items()} == {
        "alice": (DeliveryHow.WRITTEN, DeliveryState.WRITTEN),
        "room-a": (DeliveryHow.WRITTEN, DeliveryState.WRITTEN)}
    assert found["room-a"].source == site.stored("room-a")[0].id
    assert found["room-a"].etag == site.stored("room-a")[0].etag


def test_a_job_of_a_cooling_down_account_waits_unsent_and_holds_no_other(
    provider: MemoryProvider, store: Store
) -> None:
    flaky: list[FlakyConnector] = []

    def wrap(inner: CalendarConnector) -> CalendarConnector:
        flaky.append(FlakyConnector(inner))
        return flaky[0]

    site = make_site(provider, store, wrap=wrap)
    flaky[0].failures[site.ids["room-a"]] = [
        # The account's limit refusing the call unsent (a provider's own 429
        # counts as an attempt: test_outbox_accounts).
        CoolingDown("cooling down", retry_after=600, calendar=site.ids["room-a"])]
    booking = site.bookings.book("consult", SLOT, ANN, "", NOW)

    report = site.bookings.outbox.drain(NOW, booking_id=booking.id)

    assert (report.done, report.retried, report.dead) == (1, 1, 0)  # the owner's went on
    with store.reader() as uow:
        jobs = {job.payload["calendar"]: (state, job) for state, job in
                uow.outbox.for_booking(booking.id)}
    state, job = jobs["room-a"]
    assert state == "pending" and job.attempts == 0  # not an attempt: never sent
    assert job.due_at == NOW + timedelta(seconds=600)
    assert jobs["alice"][0] == "done"
    # Due again after the cool-down, it is written then.
    site.bookings.outbox.drain(NOW + timedelta(seconds=601), booking_id=booking.id)
    assert site.bookings.get(booking.id).status is BookingStatus.CONFIRMED


def test_a_decline_after_confirmation_is_seen_through_the_owners_sync(
    provider: MemoryProvider, store: Store
) -> None:
    site = invited_site(provider, store)
    booking_id = book(site)
    answer(site, "room-a", Answer.ACCEPTED)
    site.clock.now = NOW + timedelta(seconds=10)
    site.sync_all()  # the accept comes back through sync too
    assert site.bookings.get(booking_id).status is BookingStatus.CONFIRMED

    answer(site, "room-a", Answer.DECLINED)
    site.clock.now = NOW + timedelta(minutes=1)  # before any scheduled re-read is due
    assert not site.sync.sync_calendar("alice").failed

    booking = site.bookings.get(booking_id)
    assert booking.rooms == {"rooms": "room-b"}
    assert any("room room-a declined the invitation after accepting it" in d
               for d in details(site, booking_id))
