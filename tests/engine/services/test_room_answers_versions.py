"""Rooms that answer, the cases beside ``test_room_answers``: the owner's
event is written once per change, also when the room's answer gave it a new
version (the recorded etag follows the answer, so the conditional update
does not meet 412 first), and an invited room that something else holds on
its provider is replaced before the invitation goes out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connectors.memory import Answer, MemoryProvider, booking_object_id
from engine.core.model import AssignmentMethod, Booking, BookingStatus
from engine.services.room_answers import RoomAnswers
from engine.store import Store
from tests.engine.services.booking_harness import ANN, NOW, SLOT, FlakyConnector, Site, make_site
from tests.engine.services.memory_calendars import plain_event, put_event

ROOMS = ["room-a", "room-b", "room-c"]


def invited_site(provider: MemoryProvider, store: Store, **kwargs: Any) -> Site:
    return make_site(provider, store, pools={"rooms": (ROOMS, AssignmentMethod.PRIORITY)},
                     invited=ROOMS, wrap=FlakyConnector, **kwargs)


def answers(site: Site) -> RoomAnswers:
    assert site.answers is not None
    return site.answers


def book(site: Site) -> Booking:
    booking = site.bookings.book("consult", SLOT, ANN, "", NOW)
    site.bookings.outbox.drain(NOW)
    return site.bookings.get(booking.id)


def answer(site: Site, booking: Booking, room: str, what: Answer) -> None:
    site.provider.answer(site.ids["alice"], booking_object_id(booking.id),
                         f"{room}@example.com", what)


def owner_event(site: Site) -> Any:
    [stored] = site.stored("alice")
    return stored.event


def deliveries(site: Site, booking: Booking) -> list[tuple[str, str, str]]:
    return [(d.calendar, d.how.value, d.state.value)
            for d in site.bookings.deliveries(booking.id)]


def details(site: Site, booking: Booking) -> list[str]:
    return [change.detail for change in site.bookings.history(booking.id)]


def owner_writes(site: Site) -> list[str]:
    connector = site.connector
    assert isinstance(connector, FlakyConnector)
    return [what for what, calendar in connector.calls if calendar == site.ids["alice"]]


def test_room_declined_reassigns_within_pool(provider: MemoryProvider, store: Store) -> None:
    site = invited_site(provider, store)
    booking = book(site)

    answer(site, booking, "room-a", Answer.DECLINED)
    answers(site).check(NOW + timedelta(seconds=10))
    site.bookings.outbox.drain(NOW + timedelta(seconds=10))

    moved = site.bookings.get(booking.id)
    assert moved.rooms == {"rooms": "room-b"}
    assert moved.status is BookingStatus.PENDING  # room-b is yet to answer
    assert "room room-a declined the invitation; reassigned to room-b" in details(site, booking)
    # The owner's event was updated once, in place: same object and UID,
    # a higher SEQUENCE, naming the new room only; no second event.
    [stored] = site.stored("alice")
    assert stored.event.sequence == 1
    assert [p.email for p in stored.event.rooms] == ["room-b@example.com"]
    assert owner_writes(site) == ["create", "update"]
    assert all(site.stored(room) == [] for room in ROOMS)
    assert deliveries(site, booking) == [("alice", "written", "written"),
                                         ("room-a", "invited", "declined"),
                                         ("room-b", "invited", "pending")]

    answer(site, booking, "room-b", Answer.ACCEPTED)
    answers(site).check(NOW + timedelta(seconds=20))
    assert site.bookings.get(booking.id).status is BookingStatus.CONFIRMED
    assert owner_writes(site) == ["create", "update"]


def test_a_confirmed_booking_whose_room_declines_an_hour_later_is_reassigned(
    provider: MemoryProvider, store: Store,
) -> None:
    site = invited_site(provider, store)
    booking = book(site)
    answer(site, booking, "room-a", Answer.ACCEPTED)
    answers(site).check(NOW + timedelta(seconds=10))
    assert site.bookings.get(booking.id).status is BookingStatus.CONFIRMED

    later = NOW + timedelta(hours=1)
    answer(site, booking, "room-a", Answer.DECLINED)
    answers(site).check(later)
    site.bookings.outbox.drain(later)

    moved = site.bookings.get(booking.id)
    assert moved.status is BookingStatus.CONFIRMED
    assert moved.rooms == {"rooms": "room-b"}
    assert ("room room-a declined the invitation after accepting it; reassigned to room-b"
            in details(site, booking))
    assert [p.email for p in owner_event(site).rooms] == ["room-b@example.com"]
    assert owner_writes(site) == ["create", "update"]


def test_an_invited_room_busy_on_its_provider_is_replaced_before_the_invitation(
    provider: MemoryProvider, store: Store,
) -> None:
    """Something calpool has not synced yet holds room-a: the owner's event
    goes out inviting room-b instead, written once."""
    site = invited_site(provider, store)
    put_event(provider, site.ids["room-a"], "standup",
              plain_event("standup", SLOT - timedelta(minutes=15), SLOT + timedelta(minutes=15)))

    booking = book(site)

    assert booking.rooms == {"rooms": "room-b"}
    assert "room room-a busy on the provider; reassigned to room-b" in details(site, booking)
    assert [p.email for p in owner_event(site).rooms] == ["room-b@example.com"]
    assert owner_event(site).sequence == 0
    assert owner_writes(site) == ["create"]
    assert deliveries(site, booking) == [("alice", "written", "written"),
                                         ("room-a", "invited", "removed"),
                                         ("room-b", "invited", "pending")]
