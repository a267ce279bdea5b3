"""Bookings, their status history and their reservations.

A reservation is one row per calendar a booking holds (owner, ``with``
people, one room per pool).  Invariant 3 — no two active reservations of a
calendar overlap — is kept by the database: on PostgreSQL the exclusion
constraint of revision 0002 refuses the insert; on SQLite the overlap check
below runs inside the ``BEGIN IMMEDIATE`` transaction that already holds
the database's write lock, so no other writer can slip in between check and
insert.  Cancelled and failed bookings release their reservations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection, Row, Select, delete, exists, func, select, update
from sqlalchemy.exc import DBAPIError

from engine.core.model import Attendee, Booking, BookingStatus, Interval, as_utc
from engine.core.report import RoomStint, StintEnd, StintStart
from engine.store.calendars import CalendarRepository
from engine.store.dialects import insert_many, is_exclusion_violation, is_postgresql
from engine.store.emails import EmailRepository
from engine.store.errors import BookingExists, ReservationConflict, StoreError, UnknownBooking
from engine.store.records import Assignment, StatusChange
from engine.store.schema import (
    booking_history,
    booking_rooms,
    booking_with,
    bookings,
    calendars,
    reservations,
    room_assignments,
)
from engine.store.webhooks import WebhookRepository

# The booking events besides the statuses (confirmed, cancelled, failed).
CREATED = "created"
RESCHEDULED = "rescheduled"
ROOM_CHANGED = "room_changed"

_ACTIVE = [status.value for status in BookingStatus if status.is_active]
_CHUNK = 500


class BookingRepository:
    def __init__(self, connection: Connection, calendars_repo: CalendarRepository,
                 events: WebhookRepository, emails: EmailRepository) -> None:
        self._connection = connection
        self._calendars = calendars_repo
        self._webhooks = events
        self._emails = emails

    # ---- writing ---------------------------------------------------------------------------

    def reserve(self, booking: Booking, *, detail: str = "") -> None:
        """Store ``booking`` with its first history entry and a reservation of
        each of its calendars (holding time only while the status is active).

        All or nothing: on :class:`ReservationConflict` (an active booking
        overlaps one of the calendars) or :class:`BookingExists` nothing of
        the booking is written and the unit of work stays usable, e.g. to try
        another room.
        """
        with self._connection.begin_nested():
            if self.get(booking.id) is not None:
                raise BookingExists(booking.id)
            keys = _distinct(booking.calendars)
            # Locks the calendar rows in key order (PostgreSQL): bookings that
            # share a calendar take turns instead of deadlocking on the constraint.
            self._calendars.ensure(keys)
            self._calendars.bump_versions(keys)
            self._connection.execute(bookings.insert(), _booking_row(booking))
            insert_many(
                self._connection,
                booking_with,
                [
                    {"booking_id": booking.id, "position": position, "calendar_key": key}
                    for position, key in enumerate(booking.with_)
                ],
            )
            self._insert_rooms(booking.id, booking.rooms)
            self._begin_stints(booking.id, booking.rooms, booking.booked_at, StintStart.BOOKED)
            self._record(booking.id, CREATED, booking.booked_at)
            self._add_history(booking.id, booking.booked_at, booking.status, detail)
            self._hold(booking.id, keys, booking.interval, active=booking.status.is_active)
            self._stamp(booking.id)

    def set_status(
        self, booking_id: str, status: BookingStatus, at: datetime, *, detail: str = ""
    ) -> Booking:
        """Move a booking to ``status`` with a history entry; leaving the active
        states releases its reservations.  Setting the status it already has
        changes nothing.  Raises :class:`UnknownBooking`, and
        :class:`StoreError` for reviving a cancelled or failed booking (its
        calendars may be taken by now: book again instead)."""
        current = self._status_for_update(booking_id)
        if current is status:
            return self._require(booking_id)
        if status.is_active and not current.is_active:
            raise StoreError(f"booking {booking_id} is {current.value}; it cannot become {status}")
        self._connection.execute(
            update(bookings).where(bookings.c.id == booking_id).values(status=status.value)
        )
        self._add_history(booking_id, at, status, detail)
        self._record(booking_id, status.value, at)
        if not status.is_active:
            held = self._connection.execute(
                update(reservations)
                .where(reservations.c.booking_id == booking_id, reservations.c.active.is_(True))
                .values(active=False)
                .returning(reservations.c.calendar_key)
            ).scalars()
            self._calendars.bump_versions(list(held))
            self._stamp(booking_id)
            self._end_stints(booking_id, None, at, StintEnd(status.value))
        return self._require(booking_id)

    def move(
        self,
        booking_id: str,
        *,
        start: datetime,
        end: datetime,
        rooms: Mapping[str, str],
        at: datetime,
        detail: str = "rescheduled",
    ) -> Booking:
        """Reschedule an active booking to ``[start, end)`` with ``rooms``,
        re-reserving every calendar.  All or nothing, like :meth:`reserve`."""
        with self._connection.begin_nested():
            status = self._status_for_update(booking_id)
            if not status.is_active:
                raise StoreError(f"booking {booking_id} is {status.value}; it cannot be moved")
            before = self._require(booking_id)
            interval = Interval(start, end)
            if interval.duration.total_seconds() <= 0:
                raise ValueError("a booking must end after it starts")
            keys = _distinct((before.owner, *before.with_, *rooms.values()))
            self._calendars.ensure(keys)
            self._calendars.bump_versions({*keys, *before.calendars})
            self._connection.execute(
                delete(reservations).where(reservations.c.booking_id == booking_id)
            )
            self._connection.execute(
                delete(booking_rooms).where(booking_rooms.c.booking_id == booking_id)
            )
            self._connection.execute(
                update(bookings)
                .where(bookings.c.id == booking_id)
                .values(start_at=interval.start, end_at=interval.end)
            )
            self._insert_rooms(booking_id, rooms)
            swapped = {pool: room for pool, room in rooms.items() if before.rooms.get(pool) != room}
            for pool in swapped:
                self._end_stints(booking_id, pool, at, StintEnd.REASSIGNED)
            self._begin_stints(booking_id, swapped, at, StintStart.REASSIGNED)
            if interval != before.interval:
                self._record(booking_id, RESCHEDULED, at)
            if swapped:
                self._record(booking_id, ROOM_CHANGED, at)
            self._add_history(booking_id, at, status, detail)
            self._hold(booking_id, keys, interval, active=True)
            self._stamp(booking_id)
        return self._require(booking_id)

    def lock(self, booking_id: str) -> BookingStatus | None:
        """The booking's status, its row locked until the transaction ends
        (PostgreSQL; a SQLite writer holds the database's write lock
        anyway), or ``None`` when there is no such booking.  Whoever changes
        a booking because of its outbox jobs locks it first, so two workers
        finishing its last two jobs take turns and the later one sees both."""
        try:
            return self._status_for_update(booking_id)
        except UnknownBooking:
            return None

    def purge_ended_before(self, cutoff: datetime) -> int:
        """Delete bookings (with attendee data, history, reservations and
        outbox jobs) that ended before ``cutoff``; returns how many."""
        result = self._connection.execute(
            delete(bookings).where(bookings.c.end_at < as_utc(cutoff))
        )
        return int(result.rowcount)

    # ---- reading ---------------------------------------------------------------------------

    def count_by_status(self) -> Mapping[str, int]:
        """How many bookings the store holds in each status (absent: none)."""
        query = select(bookings.c.status, func.count()).group_by(bookings.c.status)
        return {str(status): int(count) for status, count in self._connection.execute(query)}

    def get(self, booking_id: str) -> Booking | None:
        found = self._load(select(bookings).where(bookings.c.id == booking_id))
        return found[0] if found else None

    def history(self, booking_id: str) -> list[StatusChange]:
        rows = self._connection.execute(
            select(booking_history.c.at, booking_history.c.status, booking_history.c.detail)
            .where(booking_history.c.booking_id == booking_id)
            .order_by(booking_history.c.id)
        )
        return [StatusChange(at, BookingStatus(status), detail) for at, status, detail in rows]

    def find(
        self,
        *,
        window: Interval | None = None,
        calendar: str | None = None,
        statuses: Iterable[BookingStatus] | None = None,
        event_type: str | None = None,
    ) -> list[Booking]:
        """Bookings overlapping ``window`` that involve ``calendar`` (as owner,
        ``with`` person or room), in the given statuses, by start."""
        query = select(bookings)
        if window is not None:
            query = query.where(bookings.c.start_at < window.end, bookings.c.end_at > window.start)
        if calendar is not None:
            query = query.where(
                exists().where(
                    reservations.c.booking_id == bookings.c.id,
                    reservations.c.calendar_key == calendar,
                )
            )
        if statuses is not None:
            query = query.where(bookings.c.status.in_([status.value for status in statuses]))
        if event_type is not None:
            query = query.where(bookings.c.event_type == event_type)
        return self._load(query.order_by(bookings.c.start_at, bookings.c.id))

    def active_touching(self, window: Interval, calendar: str | None = None) -> list[Booking]:
        """Active (pending or confirmed) bookings overlapping ``window``."""
        return self.find(window=window, calendar=calendar, statuses=_active_statuses())

    def changed_since(self, seen: Mapping[str, int | None]) -> set[str]:
        """Ids of the bookings whose reservation of a calendar in ``seen``
        changed after the version given for it (``None``: every booking
        holding that calendar now).  A reservation carries its calendar's
        version from the transaction that wrote it, and that transaction
        holds the calendar's row until it commits, so a reader that saw
        version ``v`` sees every change stamped ``v`` or lower."""
        found: set[str] = set()
        for key, version in seen.items():
            condition = reservations.c.calendar_key == key
            condition = condition & (reservations.c.active.is_(True) if version is None
                                     else reservations.c.version > version)
            found.update(str(booking_id) for booking_id in self._connection.scalars(
                select(reservations.c.booking_id).where(condition)))
        return found

    def active_by_id(self, booking_ids: Iterable[str]) -> list[Booking]:
        """The active (pending or confirmed) bookings among ``booking_ids``."""
        ids = sorted(set(booking_ids))
        found: list[Booking] = []
        for first in range(0, len(ids), _CHUNK):
            found.extend(self._load(select(bookings).where(
                bookings.c.id.in_(ids[first:first + _CHUNK]), bookings.c.status.in_(_ACTIVE))))
        return found

    def reserved_intervals(
        self, calendar_keys: Iterable[str], window: Interval
    ) -> Mapping[str, list[Interval]]:
        """Time held by active reservations per calendar within ``window``, by start."""
        keys = sorted(set(calendar_keys))
        result: dict[str, list[Interval]] = {key: [] for key in keys}
        for first in range(0, len(keys), _CHUNK):
            rows = self._connection.execute(
                select(reservations.c.calendar_key, reservations.c.start_at, reservations.c.end_at)
                .where(
                    reservations.c.calendar_key.in_(keys[first : first + _CHUNK]),
                    reservations.c.active.is_(True),
                    reservations.c.start_at < window.end,
                    reservations.c.end_at > window.start,
                )
                .order_by(reservations.c.calendar_key, reservations.c.start_at)
            )
            for key, start, end in rows:
                result[key].append(Interval(start, end))
        return result

    def assignments(self, pool: str, since: datetime) -> list[Assignment]:
        """Rooms of ``pool`` assigned by bookings made at or after ``since``
        (cancelled and failed bookings do not count), oldest first."""
        rows = self._connection.execute(
            select(booking_rooms.c.calendar_key, bookings.c.booked_at, bookings.c.id)
            .join(bookings, bookings.c.id == booking_rooms.c.booking_id)
            .where(
                booking_rooms.c.pool == pool,
                bookings.c.booked_at >= as_utc(since),
                bookings.c.status.in_(_ACTIVE),
            )
            .order_by(bookings.c.booked_at, bookings.c.id)
        )
        return [Assignment(room, booked_at, booking_id) for room, booked_at, booking_id in rows]

    def last_assigned(self, pool: str) -> Mapping[str, datetime]:
        """Each room's most recent assignment in ``pool`` (by booking time);
        rooms never assigned are absent."""
        rows = self._connection.execute(
            select(booking_rooms.c.calendar_key, func.max(bookings.c.booked_at))
            .join(bookings, bookings.c.id == booking_rooms.c.booking_id)
            .where(booking_rooms.c.pool == pool, bookings.c.status.in_(_ACTIVE))
            .group_by(booking_rooms.c.calendar_key)
        )
        # max() keeps the column's type, so values arrive as aware datetimes.
        return {room: last for room, last in rows}

    def stints(self, pool: str, cycle: Interval) -> list[RoomStint]:
        """The rooms of ``pool`` held by any booking that began or ended
        within ``cycle``, oldest first."""
        within = (room_assignments.c.assigned_at >= cycle.start) & (
            room_assignments.c.assigned_at < cycle.end)
        ended = (room_assignments.c.ended_at >= cycle.start) & (
            room_assignments.c.ended_at < cycle.end)
        rows = self._connection.execute(
            select(room_assignments.c.booking_id, room_assignments.c.room,
                   room_assignments.c.assigned_at, room_assignments.c.how,
                   room_assignments.c.ended_at, room_assignments.c.ended_how)
            .where(room_assignments.c.pool == pool, within | ended)
            .order_by(room_assignments.c.assigned_at, room_assignments.c.id)
        )
        return [RoomStint(booking_id, room, assigned_at, StintStart(how), ended_at,
                          StintEnd(ended_how) if ended_how is not None else None)
                for booking_id, room, assigned_at, how, ended_at, ended_how in rows]

    def last_assigned_before(self, pool: str, before: datetime) -> Mapping[str, datetime]:
        """Each room's latest assignment in ``pool`` (booked or swapped in,
        any status) before ``before``; rooms never assigned are absent."""
        rows = self._connection.execute(
            select(room_assignments.c.room, func.max(room_assignments.c.assigned_at))
            .where(room_assignments.c.pool == pool,
                   room_assignments.c.assigned_at < as_utc(before))
            .group_by(room_assignments.c.room)
        )
        return {room: last for room, last in rows}

    # ---- internals -------------------------------------------------------------------------

    def _begin_stints(self, booking_id: str, rooms: Mapping[str, str], at: datetime,
                      how: StintStart) -> None:
        insert_many(
            self._connection,
            room_assignments,
            [{"booking_id": booking_id, "pool": pool, "room": room, "assigned_at": at,
              "how": how.value} for pool, room in rooms.items()],
        )

    def _end_stints(self, booking_id: str, pool: str | None, at: datetime,
                    how: StintEnd) -> None:
        """End the booking's open stints (of ``pool``, or all)."""
        condition = (room_assignments.c.booking_id == booking_id) & (
            room_assignments.c.ended_at.is_(None))
        if pool is not None:
            condition = condition & (room_assignments.c.pool == pool)
        self._connection.execute(
            update(room_assignments).where(condition).values(ended_at=at, ended_how=how.value))

    def _hold(
        self, booking_id: str, keys: Sequence[str], interval: Interval, *, active: bool
    ) -> None:
        """One reservation row per calendar; an inactive booking's rows only
        record which calendars it involved."""
        for key in keys:
            holder = self._overlapping_holder(key, interval) if active else None
            if holder is not None:
                raise ReservationConflict(key, booking_id, holder)
            row = {
                "booking_id": booking_id,
                "calendar_key": key,
                "start_at": interval.start,
                "end_at": interval.end,
                "active": active,
            }
            try:
                with self._connection.begin_nested():
                    self._connection.execute(reservations.insert(), row)
            except DBAPIError as error:
                if not is_exclusion_violation(error):
                    raise
                raise ReservationConflict(
                    key, booking_id, self._overlapping_holder(key, interval)
                ) from error

    def _stamp(self, booking_id: str) -> None:
        """Mark the booking's reservations with their calendars' versions
        (bumped earlier in this transaction; see :meth:`changed_since`)."""
        self._connection.execute(
            update(reservations)
            .where(reservations.c.booking_id == booking_id)
            .values(version=select(calendars.c.version)
                    .where(calendars.c.key == reservations.c.calendar_key)
                    .scalar_subquery())
        )

    def _overlapping_holder(self, key: str, interval: Interval) -> str | None:
        found = self._connection.execute(
            select(reservations.c.booking_id)
            .where(
                reservations.c.calendar_key == key,
                reservations.c.active.is_(True),
                reservations.c.start_at < interval.end,
                reservations.c.end_at > interval.start,
            )
            .limit(1)
        ).scalar_one_or_none()
        return None if found is None else str(found)

    def _insert_rooms(self, booking_id: str, rooms: Mapping[str, str]) -> None:
        insert_many(
            self._connection,
            booking_rooms,
            [
                {"booking_id": booking_id, "pool": pool, "calendar_key": room}
                for pool, room in rooms.items()
            ],
        )

    def _record(self, booking_id: str, kind: str, at: datetime) -> None:
        """An event of the booking, for its webhooks and its attendee's emails."""
        self._webhooks.record(booking_id, kind, at)
        self._emails.follow(booking_id, kind, at)

    def _add_history(
        self, booking_id: str, at: datetime, status: BookingStatus, detail: str
    ) -> None:
        self._connection.execute(
            booking_history.insert(),
            {"booking_id": booking_id, "at": as_utc(at), "status": status.value, "detail": detail},
        )

    def _status_for_update(self, booking_id: str) -> BookingStatus:
        query = select(bookings.c.status).where(bookings.c.id == booking_id)
        if is_postgresql(self._connection):
            query = query.with_for_update()
        found = self._connection.execute(query).scalar_one_or_none()
        if found is None:
            raise UnknownBooking(booking_id)
        return BookingStatus(found)

    def _require(self, booking_id: str) -> Booking:
        booking = self.get(booking_id)
        if booking is None:
            raise UnknownBooking(booking_id)
        return booking

    def _load(self, query: Select[tuple[object, ...]]) -> list[Booking]:
        rows = self._connection.execute(query).all()
        ids = [row.id for row in rows]
        with_of: dict[str, list[str]] = {booking_id: [] for booking_id in ids}
        rooms_of: dict[str, dict[str, str]] = {booking_id: {} for booking_id in ids}
        for first in range(0, len(ids), _CHUNK):
            chunk = ids[first : first + _CHUNK]
            for booking_id, key in self._connection.execute(
                select(booking_with.c.booking_id, booking_with.c.calendar_key)
                .where(booking_with.c.booking_id.in_(chunk))
                .order_by(booking_with.c.booking_id, booking_with.c.position)
            ):
                with_of[booking_id].append(key)
            for booking_id, pool, room in self._connection.execute(
                select(
                    booking_rooms.c.booking_id, booking_rooms.c.pool, booking_rooms.c.calendar_key
                )
                .where(booking_rooms.c.booking_id.in_(chunk))
                .order_by(booking_rooms.c.booking_id, booking_rooms.c.pool)
            ):
                rooms_of[booking_id][pool] = room
        return [_booking(row, with_of[row.id], rooms_of[row.id]) for row in rows]


def _active_statuses() -> list[BookingStatus]:
    return [status for status in BookingStatus if status.is_active]


def _distinct(keys: Iterable[str]) -> list[str]:
    return sorted(set(keys))


def _booking_row(booking: Booking) -> dict[str, object]:
    return {
        "id": booking.id,
        "event_type": booking.event_type,
        "start_at": booking.start,
        "end_at": booking.end,
        "owner": booking.owner,
        "status": booking.status.value,
        "booked_at": booking.booked_at,
        "attendee_name": booking.attendee.name if booking.attendee else None,
        "attendee_email": booking.attendee.email if booking.attendee else None,
        "notes": booking.notes,
    }


def _booking(row: Row[tuple[object, ...]], with_: list[str], rooms: dict[str, str]) -> Booking:
    values = row._mapping
    attendee = None
    if values["attendee_email"] is not None:
        attendee = Attendee(name=values["attendee_name"] or "", email=values["attendee_email"])
    return Booking(
        id=values["id"],
        event_type=values["event_type"],
        start=values["start_at"],
        end=values["end_at"],
        owner=values["owner"],
        with_=tuple(with_),
        rooms=rooms,
        status=BookingStatus(values["status"]),
        booked_at=values["booked_at"],
        attendee=attendee,
        notes=values["notes"],
    )
