"""Delivery records: one row per (booking, calendar), written in the
transaction of the outbox job or room answer it records."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, select, update

from engine.core.model import BookingStatus, as_utc
from engine.store.records import Delivery, DeliveryHow, DeliveryState
from engine.store.schema import bookings, deliveries

_ACTIVE = (BookingStatus.PENDING.value, BookingStatus.CONFIRMED.value)


class DeliveryRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def plan(self, booking_id: str, calendar: str, how: DeliveryHow, now: datetime) -> None:
        """``calendar`` gets (again) a part in the booking: its row is
        ``pending``; a row there already keeps where its copy is (an update
        replaces that copy in place), a removed one starts anew."""
        now = as_utc(now)
        existing = self.of(booking_id, calendar)
        if existing is None:
            self._connection.execute(deliveries.insert().values(
                booking_id=booking_id, calendar=calendar, how=how.value,
                state=DeliveryState.PENDING.value, since=now, updated_at=now))
            return
        values: dict[str, Any] = {"how": how.value, "state": DeliveryState.PENDING.value,
                                  "updated_at": now}
        if existing.state is DeliveryState.REMOVED or existing.how is not how:
            values.update(since=now, answer=None, answered_at=None)
        self._update(booking_id, calendar, **values)

    def written(self, booking_id: str, calendar: str, *, source: str, etag: str,
                sequence: int, now: datetime) -> None:
        """The copy in ``calendar`` is written (an invited room's row follows
        the owner's event it is an attendee of, so its source is that)."""
        self._update(booking_id, calendar, state=DeliveryState.WRITTEN.value, source=source,
                     etag=etag, sequence=sequence, updated_at=as_utc(now))

    def invited(self, booking_id: str, calendar: str, *, source: str, etag: str,
                sequence: int, now: datetime) -> None:
        """The owner's event naming the invited room ``calendar`` is written
        (at ``source``): the room's answer is awaited, or kept as given."""
        self._update(booking_id, calendar, source=source, etag=etag, sequence=sequence,
                     updated_at=as_utc(now))

    def answered(self, booking_id: str, calendar: str, answer: str, state: DeliveryState,
                 now: datetime) -> None:
        now = as_utc(now)
        self._update(booking_id, calendar, answer=answer, answered_at=now, state=state.value,
                     updated_at=now)

    def saw_version(self, booking_id: str, calendar: str, *, source: str, etag: str) -> None:
        """The copy in ``calendar`` was read at ``etag`` (an invited room's
        answer gives the owner's event a new version): the next conditional
        update of it starts from that version, instead of meeting 412 and
        sending the update twice.  Only where the copy is still at ``source``."""
        self._connection.execute(update(deliveries).where(and_(
            deliveries.c.booking_id == booking_id, deliveries.c.calendar == calendar,
            deliveries.c.source == source)).values(etag=etag))

    def removed(self, booking_id: str, calendar: str, now: datetime, *,
                state: DeliveryState = DeliveryState.REMOVED) -> None:
        """Taken out (``state``: ``removed``, or ``declined`` for a room that
        left the booking by declining: the document says why)."""
        self._update(booking_id, calendar, state=state.value, updated_at=as_utc(now))

    def of(self, booking_id: str, calendar: str) -> Delivery | None:
        row = self._connection.execute(select(deliveries).where(
            deliveries.c.booking_id == booking_id, deliveries.c.calendar == calendar)).first()
        return _delivery(row) if row is not None else None

    def for_booking(self, booking_id: str) -> list[Delivery]:
        rows = self._connection.execute(
            select(deliveries).where(deliveries.c.booking_id == booking_id)
            .order_by(deliveries.c.since, deliveries.c.calendar))
        return [_delivery(row) for row in rows]

    def for_bookings(self, booking_ids: Collection[str]) -> dict[str, list[Delivery]]:
        found: dict[str, list[Delivery]] = {booking_id: [] for booking_id in booking_ids}
        ids = list(found)
        for start in range(0, len(ids), 500):  # bounded IN lists
            rows = self._connection.execute(
                select(deliveries).where(deliveries.c.booking_id.in_(ids[start:start + 500]))
                .order_by(deliveries.c.since, deliveries.c.calendar))
            for row in rows:
                found[row.booking_id].append(_delivery(row))
        return found

    def awaiting_answers(self, now: datetime, *, limit: int = 200) -> list[Delivery]:
        """Invited rooms of active bookings not over yet whose answer is
        still to come or is a decline not acted on, oldest first."""
        query = (
            select(deliveries)
            .join(bookings, bookings.c.id == deliveries.c.booking_id)
            .where(
                deliveries.c.how == DeliveryHow.INVITED.value,
                deliveries.c.state.in_(
                    (DeliveryState.PENDING.value, DeliveryState.ACCEPTED.value,
                     DeliveryState.DECLINED.value)),
                bookings.c.status.in_(_ACTIVE),
                bookings.c.end_at > as_utc(now),
            )
            .order_by(deliveries.c.updated_at)
            .limit(limit)
        )
        return [_delivery(row) for row in self._connection.execute(query)]

    def _update(self, booking_id: str, calendar: str, **values: Any) -> None:
        self._connection.execute(update(deliveries).where(and_(
            deliveries.c.booking_id == booking_id, deliveries.c.calendar == calendar,
        )).values(**values))


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        booking_id=row.booking_id, calendar=row.calendar, how=DeliveryHow(row.how),
        state=DeliveryState(row.state), source=row.source, etag=row.etag,
        sequence=row.sequence, answer=row.answer,
        answered_at=as_utc(row.answered_at) if row.answered_at is not None else None,
        since=as_utc(row.since), updated_at=as_utc(row.updated_at),
    )

