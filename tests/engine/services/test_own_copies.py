"""calpool's own copies coming back through sync (issue 20): each copy has a
UID of its own, every copy carries the booking id, and sync recognises them
by that — also copies written before per-copy UIDs, which a cancel still
removes.  On the in-memory connector; the CalDAV servers' side of the same
rule is in ``tests/connectors/caldav/test_copies_on_real_servers.py``."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from connectors.memory import MemoryProvider, booking_uid, copy_uid
from engine.core.model import BookingStatus, Interval
from engine.store import Store
from tests.engine.services.booking_harness import ANN, NOW, SLOT, make_site
from tests.engine.services.memory_calendars import put_event

WAIT = timedelta(seconds=20)
DAY = Interval(SLOT - timedelta(hours=12), SLOT + timedelta(hours=12))


def test_each_copy_has_its_own_uid_and_sync_counts_none_of_them_twice(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store)
    booking = site.bookings.book_and_wait("consult", SLOT, ANN, "", NOW, confirm_within=WAIT)
    assert booking.status is BookingStatus.CONFIRMED

    [owner] = site.events("alice")
    [room] = site.events("room-a")
    assert owner["UID"] == booking_uid(booking.id)  # the UID the attendee sees
    assert room["UID"] == copy_uid(booking.id, site.ids["room-a"])
    assert owner["X-CALPOOL-BOOKING"] == room["X-CALPOOL-BOOKING"] == booking.id

    site.sync_all()
    with store.reader() as uow:
        counted = uow.events.busy_intervals(["alice", "room-a"], DAY)
        own = uow.events.busy_intervals(["alice", "room-a"], DAY, include_own=True)
    # The reservation counts; its copies back from sync are recognised as calpool's.
    assert counted == {"alice": [], "room-a": []}
    assert {key: len(spans) for key, spans in own.items()} == {"alice": 1, "room-a": 1}


def test_a_copy_written_the_old_way_is_recognised_and_cancelled(
    provider: MemoryProvider, store: Store
) -> None:
    """Upgrade: a booking whose room copy still has the owner's UID (as
    every copy had before issue 20) is recognised by sync and removed by a
    cancel."""
    site = make_site(provider, store)
    booking = site.bookings.book_and_wait("consult", SLOT, ANN, "", NOW, confirm_within=WAIT)
    [stored] = site.stored("room-a")
    put_event(provider, site.ids["room-a"], stored.id,
              dataclasses.replace(stored.event, uid=booking_uid(booking.id)))
    assert [e["UID"] for e in site.events("room-a")] == [booking_uid(booking.id)]

    site.sync_all()
    with store.reader() as uow:
        assert uow.events.busy_intervals(["room-a"], DAY) == {"room-a": []}

    site.bookings.cancel(booking.id, NOW)
    assert site.events("alice") == [] and site.events("room-a") == []
