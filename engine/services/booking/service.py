"""Booking: reserve a slot and a room, then let the outbox write the events.

The state machine (interface.md)::

    pending ──all provider writes done──▶ confirmed ──cancel──▶ cancelled
       │                                                 ▲
       ├──a write failed past retries, or a room turned  │
       │  busy and no other member of its pool is free ─▶ failed (events compensated)
       └──cancel─────────────────────────────────────────┘

:meth:`BookingService.book` checks the start against the in-memory busy
cache (refreshed first, so another process's commits count), optionally
asks the providers live, assigns one room per pool by the pool's method and
then, in ONE unit of work, reserves the owner, the ``with`` people and the
rooms, stores the booking with its history and queues one outbox job per
provider write.  The store refuses overlapping reservations (invariant 3);
a room lost to a concurrent booking is replaced by the next free member of
its pool before the request gives up.  From that commit on the booking
counts against availability (invariant 7) and is durable (invariant 5):
the outbox (:mod:`engine.services.outbox`) finishes or compensates it.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as WaitedLongEnough
from datetime import datetime, timedelta

from engine.core.model import Attendee, Booking, BookingStatus, EventType, Interval, as_utc
from engine.core.slots import SlotRejection
from engine.errors import ConnectorError
from engine.ports import CalendarConnector, CalendarRef
from engine.services.availability import BusyCache
from engine.services.booking.errors import (
    BookingNotFound,
    InvalidBooking,
    ProviderUnavailable,
    SlotUnavailable,
    UnknownEventType,
)
from engine.services.booking.outcome import BookingOutcome
from engine.services.booking.rules import (
    check_attendee,
    check_daily_limit,
    check_slot,
    hold_rooms,
    new_booking_id,
)
from engine.services.drafts import Catalog, queue_removal, queue_writes
from engine.services.outbox import OutboxWorker
from engine.store import Delivery, StatusChange, Store, UnitOfWork

Clock = Callable[[], datetime]
# Called inside the reservation's unit of work, before its commit: whatever
# it writes there is committed with the booking or not at all.
OnReserved = Callable[[UnitOfWork, Booking], None]

# How long book_and_wait sleeps when the booking's jobs are claimed by
# another worker or wait for a retry.
_POLL = 0.05
# Provider writes that book_and_wait runs off the caller's thread, so that a
# stalled provider cannot hold the answer past ``confirm_within``.
_WRITERS = 8


class BookingService:
    """Books, cancels and lists bookings; see the module docstring."""

    def __init__(
        self,
        store: Store,
        cache: BusyCache,
        catalog: Catalog,
        outbox: OutboxWorker,
        *,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._cache = cache
        self.catalog = catalog
        self.outbox = outbox
        self._clock = clock
        self._rng = rng or random.SystemRandom()
        self._writers = ThreadPoolExecutor(_WRITERS, thread_name_prefix="booking-writes")

    # ---- booking ----------------------------------------------------------------------------

    def book(
        self, event_type_key: str, start: datetime, attendee: Attendee, notes: str, now: datetime,
        *, on_reserved: OnReserved | None = None,
    ) -> Booking:
        """Reserve ``start`` for ``attendee`` (see the module docstring) and
        return the pending booking.  Raises :class:`UnknownEventType`,
        :class:`InvalidBooking` (malformed, or off the slot grid),
        :class:`SlotUnavailable` and :class:`ProviderUnavailable`.
        ``on_reserved`` runs in the reservation's transaction."""
        event_type = self._event_type(event_type_key)
        check_attendee(attendee)
        start = as_utc(start, what="start")
        rooms_available = check_slot(self._store, self._cache, self.catalog, event_type, start,
                                     now=now)
        end = start + event_type.duration
        if event_type.live_recheck:
            rooms_available = self._live_recheck(event_type, start, end, rooms_available)
        return self._reserve(event_type, start, end, attendee, notes, rooms_available, now,
                             on_reserved)

    def book_and_wait(
        self,
        event_type_key: str,
        start: datetime,
        attendee: Attendee,
        notes: str,
        now: datetime,
        *,
        confirm_within: timedelta,
        on_reserved: OnReserved | None = None,
    ) -> Booking:
        """:meth:`book`, then run the booking's outbox jobs until it is
        confirmed or failed, or ``confirm_within`` has passed: then it is
        returned pending, and a provider call in flight goes on in the
        background (the outbox finishes what it leaves)."""
        booking = self.book(event_type_key, start, attendee, notes, now, on_reserved=on_reserved)
        deadline = time.monotonic() + confirm_within.total_seconds()
        while True:
            try:
                drain = self._writers.submit(self.outbox.drain, self._clock(),
                                             booking_id=booking.id)
            except RuntimeError:  # closed by a reload or stop meanwhile
                return self.get(booking.id)
            with contextlib.suppress(WaitedLongEnough):
                drain.result(timeout=max(0.0, deadline - time.monotonic()))
            booking = self.get(booking.id)
            if booking.status is not BookingStatus.PENDING or time.monotonic() >= deadline:
                return booking
            time.sleep(min(_POLL, max(0.0, deadline - time.monotonic())))

    def attempt(
        self,
        event_type_key: str,
        start: datetime,
        attendee: Attendee,
        notes: str,
        now: datetime,
        *,
        confirm_within: timedelta,
        on_reserved: OnReserved | None = None,
    ) -> BookingOutcome:
        """:meth:`book_and_wait` as one :class:`BookingOutcome`: the booking
        as it stands, or the refusal.  Raises only :class:`UnknownEventType`
        (the caller names its own input) and store errors."""
        try:
            booking = self.book_and_wait(event_type_key, start, attendee, notes, now,
                                         confirm_within=confirm_within, on_reserved=on_reserved)
        except (InvalidBooking, SlotUnavailable, ProviderUnavailable) as refused:
            return BookingOutcome.refusal(refused)
        return self.outcome(booking)

    def outcome(self, booking: Booking) -> BookingOutcome:
        """``booking`` as it stands, with its history."""
        return BookingOutcome.of_booking(booking, self.history(booking.id))

    def close(self) -> None:
        """Take no more provider writes off callers' threads (on reload and
        stop).  A write running goes on to its end; a waiting caller gets its
        booking pending, and the outbox finishes it."""
        self._writers.shutdown(wait=False, cancel_futures=True)

    def cancel(self, booking_id: str, now: datetime) -> Booking:
        """Cancel: release the reservations and remove the events from every
        calendar (through the outbox, drained here once).  Idempotent; a
        failed booking stays failed (its events were compensated)."""
        with self._store.unit_of_work() as uow:
            booking = uow.bookings.get(booking_id)
            if booking is None:
                raise BookingNotFound(booking_id)
            if not booking.status.is_active:
                return booking
            booking = uow.bookings.set_status(
                booking_id, BookingStatus.CANCELLED, now, detail="cancelled"
            )
            queue_removal(uow, self.catalog, booking, now)
            uow.commit()
        self.outbox.drain(now, booking_id=booking_id)
        return self.get(booking_id)

    # ---- reading ----------------------------------------------------------------------------

    def get(self, booking_id: str) -> Booking:
        with self._store.reader() as uow:
            booking = uow.bookings.get(booking_id)
        if booking is None:
            raise BookingNotFound(booking_id)
        return booking

    def history(self, booking_id: str) -> list[StatusChange]:
        with self._store.reader() as uow:
            return uow.bookings.history(booking_id)

    def deliveries(self, booking_id: str) -> list[Delivery]:
        """Where the booking's event is, calendar by calendar (delivery records)."""
        with self._store.reader() as uow:
            return uow.deliveries.for_booking(booking_id)

    def list(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        calendar: str | None = None,
        status: Iterable[BookingStatus] | None = None,
    ) -> list[Booking]:
        """Bookings overlapping ``[start, end)`` (open where ``None``) that
        involve ``calendar``, in the given statuses, by start."""
        window = None
        if start is not None or end is not None:
            window = Interval(
                start or datetime.fromisoformat("1970-01-01T00:00:00+00:00"),
                end or datetime.fromisoformat("9999-01-01T00:00:00+00:00"),
            )
        with self._store.reader() as uow:
            return uow.bookings.find(window=window, calendar=calendar, statuses=status)

    # ---- internals --------------------------------------------------------------------------

    def _event_type(self, key: str) -> EventType:
        event_type = self.catalog.event_types.get(key)
        if event_type is None:
            raise UnknownEventType(key)
        return event_type

    def _reserve(
        self,
        event_type: EventType,
        start: datetime,
        end: datetime,
        attendee: Attendee,
        notes: str,
        rooms_available: Mapping[str, Sequence[str]],
        now: datetime,
        on_reserved: OnReserved | None = None,
    ) -> Booking:
        with self._store.unit_of_work() as uow:
            check_daily_limit(uow, self.catalog, event_type, start)

            def reserve(rooms: dict[str, str]) -> Booking:
                booking = Booking(
                    id=new_booking_id(),
                    event_type=event_type.key,
                    start=start,
                    end=end,
                    owner=event_type.owner,
                    with_=event_type.with_,
                    rooms=rooms,
                    booked_at=now,
                    attendee=attendee,
                    notes=notes,
                )
                uow.bookings.reserve(booking, detail="reserved")
                return booking

            booking = hold_rooms(uow, self.catalog, event_type, rooms_available, reserve,
                                 now=now, rng=self._rng)
            queue_writes(uow, self.catalog, booking, now)
            if on_reserved is not None:
                on_reserved(uow, booking)
            uow.commit()
        return booking

    def _live_recheck(
        self,
        event_type: EventType,
        start: datetime,
        end: datetime,
        rooms_available: Mapping[str, Sequence[str]],
    ) -> dict[str, tuple[str, ...]]:
        """Ask the providers of the owner, the ``with`` people and the
        candidate rooms live; drop busy rooms, refuse a busy person."""
        window = Interval(start - event_type.buffer_before, end + event_type.buffer_after)
        rooms = (room for members in rooms_available.values() for room in members)
        keys = [*event_type.persons, *rooms]
        busy, failed = self._busy_now(keys, window)
        people_failed = [person for person in event_type.persons if person in failed]
        if people_failed:
            raise ProviderUnavailable(
                f"the live free/busy check of {people_failed[0]} failed: "
                f"{failed[people_failed[0]]}")
        if busy[event_type.owner]:
            raise SlotUnavailable(SlotRejection.OWNER_BUSY)
        if any(busy[person] for person in event_type.with_):
            raise SlotUnavailable(SlotRejection.PERSON_BUSY)
        found = {pool: tuple(r for r in rooms if not busy[r])
                 for pool, rooms in rooms_available.items()}
        if any(not rooms for rooms in found.values()):
            raise SlotUnavailable(SlotRejection.NO_ROOM)
        return found

    def _busy_now(
        self, keys: Sequence[str], window: Interval
    ) -> tuple[dict[str, bool], dict[str, ConnectorError]]:
        """Whether each calendar is busy in ``window``, asked live, one call
        per connector; a calendar the provider could not answer for counts
        as busy (a room is never offered unchecked) and is named in the
        second mapping with its error."""
        groups: dict[int, tuple[CalendarConnector, list[tuple[str, CalendarRef]]]] = {}
        for key in dict.fromkeys(keys):
            binding = self.catalog.bindings[key]
            if binding.connector is None:
                raise ProviderUnavailable(f"cannot ask calendar {key} live: {binding.reason}")
            groups.setdefault(id(binding.connector), (binding.connector, []))[1].append(
                (key, binding.ref))
        busy: dict[str, bool] = {}
        failed: dict[str, ConnectorError] = {}
        for connector, members in groups.values():
            try:
                answer = connector.free_busy([ref for _, ref in members], window)
            except ConnectorError as exc:
                raise ProviderUnavailable(f"the live free/busy check failed: {exc}") from exc
            for key, ref in members:
                if ref.id in answer.errors:
                    busy[key], failed[key] = True, answer.errors[ref.id]
                    continue
                busy[key] = any(span.overlaps(window) for span in answer.busy.get(ref.id, ()))
        return busy, failed


