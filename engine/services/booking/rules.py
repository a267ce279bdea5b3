"""The rules a booking, a link and a reschedule check alike: the slot by the
busy cache, the daily limit inside the write transaction, the attendee, and
holding one room per pool against concurrent bookings."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from engine.core.model import Attendee, EventType, Interval
from engine.core.slots import SlotRejection, check_start
from engine.services.availability import BusyCache
from engine.services.booking.errors import InvalidBooking, SlotUnavailable
from engine.services.drafts import Catalog
from engine.services.rooms import choose_room
from engine.store import ReservationConflict, Store, UnitOfWork

# What a reservation returns through hold_rooms: a new booking, a moved one.
Held = TypeVar("Held")


def new_booking_id() -> str:
    """Random and URL-safe; the provider ids are derived from it."""
    return secrets.token_hex(16)


def check_slot(
    store: Store,
    cache: BusyCache,
    catalog: Catalog,
    event_type: EventType,
    start: datetime,
    *,
    now: datetime,
    moving: str | None = None,
) -> Mapping[str, tuple[str, ...]]:
    """The free members of each pool for ``start``, by the busy cache
    (refreshed first, so another process's commits count); raises
    :class:`InvalidBooking` for a start off the slot grid and
    :class:`SlotUnavailable` for any other rejection.  ``moving`` is a
    booking being rescheduled: its own reservation does not block it."""
    cache.refresh(store)
    snapshot = cache.snapshot()
    bookings = snapshot.bookings
    if moving is not None:
        bookings = tuple(other for other in bookings if other.id != moving)
    verdict = check_start(
        event_type,
        start,
        calendars=catalog.calendars,
        pools=catalog.pools,
        busy=snapshot.busy,
        bookings=bookings,
        now=now,
    )
    if verdict.reason is SlotRejection.OFF_GRID:
        raise InvalidBooking("start", "the start is not on the event type's slot grid")
    if verdict.reason is not None:
        raise SlotUnavailable(verdict.reason)
    return verdict.rooms_available


def hold_rooms(
    uow: UnitOfWork,
    catalog: Catalog,
    event_type: EventType,
    rooms_available: Mapping[str, Sequence[str]],
    hold: Callable[[dict[str, str]], Held],
    *,
    now: datetime,
    rng: random.Random,
    keep: Mapping[str, str] | None = None,
) -> Held:
    """Assign one room per pool among ``rooms_available`` and return
    ``hold(rooms)``, the reservation in ``uow``.  A room in ``keep`` stays
    when it is free; otherwise the pool's method chooses.  A room lost to a
    concurrent booking (``hold`` raises :class:`ReservationConflict`: the
    cache had not seen it yet) is replaced by the next free member of its
    pool; a person lost, or a pool left without a member, raises
    :class:`SlotUnavailable`."""
    candidates = {pool: list(members) for pool, members in rooms_available.items()}

    def choose(pool: str, current: str | None = None) -> str:
        if current is not None and current in candidates[pool]:
            return current
        return choose_room(uow, catalog.pools[pool], candidates[pool], now=now, rng=rng)

    rooms = {pool: choose(pool, (keep or {}).get(pool)) for pool in candidates}
    while True:
        try:
            return hold(rooms)
        except ReservationConflict as conflict:
            pool = _lost(conflict.calendar_key, event_type, rooms)
            candidates[pool].remove(conflict.calendar_key)
            if not candidates[pool]:
                raise SlotUnavailable(SlotRejection.NO_ROOM) from conflict
            rooms = {**rooms, pool: choose(pool)}


def _lost(calendar: str, event_type: EventType, rooms: Mapping[str, str]) -> str:
    """The pool whose room a concurrent booking took; a person taken ends
    the attempt with that person's reason."""
    if calendar == event_type.owner:
        raise SlotUnavailable(SlotRejection.OWNER_BUSY)
    if calendar in event_type.with_:
        raise SlotUnavailable(SlotRejection.PERSON_BUSY)
    return next(pool for pool, room in rooms.items() if room == calendar)


def check_daily_limit(uow: UnitOfWork, catalog: Catalog, event_type: EventType, start: datetime,
                      *, moving: str | None = None) -> None:
    """The daily limit again, inside the write transaction: the cache
    check cannot see a booking of another slot committed meanwhile.
    ``moving`` is a booking being rescheduled: it does not count against
    its own new day."""
    if event_type.max_per_day <= 0:
        return
    zone = ZoneInfo(catalog.calendars[event_type.owner].timezone)
    day = start.astimezone(zone).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    window = Interval(midnight, datetime.combine(day + timedelta(days=1), midnight.time(),
                                                 tzinfo=zone))
    same_day = [
        booking
        for booking in uow.bookings.active_touching(window, event_type.owner)
        if booking.event_type == event_type.key
        and booking.owner == event_type.owner
        and booking.start.astimezone(zone).date() == day
        and booking.id != moving
    ]
    if len(same_day) >= event_type.max_per_day:
        raise SlotUnavailable(SlotRejection.DAILY_LIMIT)


def check_attendee(attendee: Attendee) -> None:
    """Raise :class:`InvalidBooking` for an attendee without a name or an
    email address (links check a prefilled attendee with it too)."""
    if not attendee.name.strip():
        raise InvalidBooking("attendee.name", "the attendee's name must not be empty")
    local, at, domain = attendee.email.strip().partition("@")
    if not (local and at and domain) or any(c.isspace() for c in attendee.email.strip()):
        raise InvalidBooking("attendee.email", f"{attendee.email!r} is not an email address")
