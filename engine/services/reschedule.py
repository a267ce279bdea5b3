"""Rescheduling: move an active booking to another start of its event type.

The new start is checked by the rules of a new booking
(:func:`engine.core.slots.check_start`), with the booking itself left out
of the busy time: its own reservation (and its own events coming back
through sync, which never count) must not block a move that overlaps the
old time.  Each pool keeps its room when that room is free at the new time;
otherwise another free member is chosen by the pool's method.

In ONE unit of work the store moves the reservations (``bookings.move``:
release the old, hold the new, a history entry) and the outbox gets the
provider work: a write of the moved event into every calendar of the
booking, under a higher iCalendar ``SEQUENCE`` than anything written
before (so the provider updates the event in place: same id, same UID, no
duplicate), and a delete from each calendar the booking left (a room
swapped for another).  A crash after that commit loses nothing: the
outbox finishes the jobs, and repeating a write is harmless (invariant 4).

Only pending and confirmed bookings move; the status stays as it is.  A
moved event that a provider refuses past retries fails the booking like any
write (invariant 5: the events are removed, the failure recorded).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime

from engine.core.model import Booking, EventType, as_utc
from engine.services.availability import BusyCache
from engine.services.booking import (
    BookingError,
    BookingNotFound,
    BookingOutcome,
    InvalidBooking,
    SlotUnavailable,
    check_daily_limit,
    check_slot,
    hold_rooms,
)
from engine.services.drafts import (
    Catalog,
    invitations,
    next_sequence,
    queue_delete,
    queue_writes,
    targets,
)
from engine.services.outbox import OutboxWorker
from engine.store import Store, StoreError, UnitOfWork, UnknownBooking


class BookingNotReschedulable(BookingError):
    """The booking cannot move (HTTP 409): it is cancelled or failed, or its
    event type is no longer configured."""

    def __init__(self, booking_id: str, detail: str) -> None:
        super().__init__(detail)
        self.booking_id = booking_id
        self.detail = detail


class RescheduleService:
    """Moves bookings; see the module docstring."""

    def __init__(
        self,
        store: Store,
        cache: BusyCache,
        catalog: Catalog,
        outbox: OutboxWorker,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._cache = cache
        self._catalog = catalog
        self._outbox = outbox
        self._rng = rng or random.SystemRandom()

    def reschedule(self, booking_id: str, start: datetime, now: datetime, *,
                   drain: bool = True) -> Booking:
        """Move ``booking_id`` to ``start`` and return it as stored after the
        move (and, with ``drain``, after running its outbox jobs once).
        Raises :class:`BookingNotFound`, :class:`BookingNotReschedulable`,
        :class:`InvalidBooking` (a start off the slot grid) and
        :class:`SlotUnavailable`.  Moving to the start it has changes
        nothing."""
        booking = self._get(booking_id)
        event_type = self._movable(booking)
        start = as_utc(start, what="start")
        end = start + event_type.duration
        if (start, end) == (booking.start, booking.end):
            return booking
        rooms_available = check_slot(self._store, self._cache, self._catalog, event_type, start,
                                     now=now, moving=booking.id)
        self._move(booking, event_type, start, end, rooms_available, now)
        if drain:
            self._outbox.drain(now, booking_id=booking.id)
        return self._get(booking_id)

    def attempt(self, booking_id: str, start: datetime, now: datetime) -> BookingOutcome:
        """:meth:`reschedule` as a :class:`BookingOutcome`: the moved
        booking as it stands, or why it cannot move there.  Raises
        :class:`BookingNotFound` and :class:`BookingNotReschedulable`."""
        try:
            moved = self.reschedule(booking_id, start, now)
        except (InvalidBooking, SlotUnavailable) as refused:
            return BookingOutcome.refusal(refused)
        with self._store.reader() as uow:
            return BookingOutcome.of_booking(moved, uow.bookings.history(booking_id))

    # ---- internals --------------------------------------------------------------------------

    def _get(self, booking_id: str) -> Booking:
        with self._store.reader() as uow:
            booking = uow.bookings.get(booking_id)
        if booking is None:
            raise BookingNotFound(booking_id)
        return booking

    def _movable(self, booking: Booking) -> EventType:
        if not booking.status.is_active:
            raise BookingNotReschedulable(
                booking.id, f"booking {booking.id} is {booking.status.value}; only pending and "
                            "confirmed bookings can be rescheduled")
        event_type = self._catalog.event_types.get(booking.event_type)
        if event_type is None:
            raise BookingNotReschedulable(
                booking.id, f"the event type {booking.event_type!r} of booking {booking.id} is "
                            "no longer configured")
        return event_type

    def _move(
        self,
        booking: Booking,
        event_type: EventType,
        start: datetime,
        end: datetime,
        rooms_available: Mapping[str, Sequence[str]],
        now: datetime,
    ) -> Booking:
        with self._store.unit_of_work() as uow:
            check_daily_limit(uow, self._catalog, event_type, start, moving=booking.id)

            def move(rooms: dict[str, str]) -> Booking:
                return uow.bookings.move(booking.id, start=start, end=end, rooms=rooms, at=now,
                                         detail=_detail(booking, start, rooms))

            try:
                # Each pool keeps its room when that room is free then.
                moved = hold_rooms(uow, self._catalog, event_type, rooms_available, move,
                                   now=now, rng=self._rng, keep=booking.rooms)
            except UnknownBooking as gone:
                raise BookingNotFound(booking.id) from gone
            except StoreError as inactive:
                # Cancelled (or failed) since it was read.
                raise BookingNotReschedulable(booking.id, str(inactive)) from inactive
            self._queue(uow, booking, moved, now)
            uow.commit()
        return moved

    def _queue(self, uow: UnitOfWork, before: Booking, moved: Booking, now: datetime) -> None:
        """Writes of the moved event everywhere it belongs now, under a
        SEQUENCE above every earlier write; deletes where it no longer does."""
        sequence = next_sequence(uow, moved.id)
        queue_writes(uow, self._catalog, moved, now, sequence=sequence)
        staying = {target.calendar for target in targets(moved, self._catalog.delivers)}
        for target in targets(before, self._catalog.delivers):
            if target.calendar not in staying:
                queue_delete(uow, self._catalog, moved, target, now)
        invited_now = {t.calendar for t in invitations(moved, self._catalog.delivers)}
        for target in invitations(before, self._catalog.delivers):
            if target.calendar not in invited_now:
                # Off the owner's event with its update: no copy to delete.
                uow.deliveries.removed(moved.id, target.calendar, now)


def _detail(before: Booking, start: datetime, rooms: Mapping[str, str]) -> str:
    """The history entry of a move: from when to when, and any room changed."""
    text = f"rescheduled from {before.start.isoformat()} to {start.isoformat()}"
    changed = [f"{pool}: {room} instead of {before.rooms[pool]}"
               for pool, room in rooms.items()
               if pool in before.rooms and before.rooms[pool] != room]
    return "; ".join([text, *changed])
