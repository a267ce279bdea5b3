"""Booking events and the webhook deliveries made of them.

The booking repository writes an event row in the transaction of each
change (so an event exists exactly when its change committed); a
dispatcher turns each event into one delivery per endpoint that wants it
(``fan_out``), then claims due deliveries like the outbox claims jobs: for
a while, skipping rows another worker is claiming on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, delete, func, or_, select, update

from engine.core.model import as_utc
from engine.store.dialects import insert_many, is_postgresql
from engine.store.records import BookingEvent, WebhookDelivery
from engine.store.schema import booking_events, webhook_deliveries

MAX_ERROR_LENGTH = 2000


class WebhookRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def record(self, booking_id: str, kind: str, at: datetime) -> None:
        """An event of ``booking_id`` (the booking repository's call)."""
        self._connection.execute(
            booking_events.insert().values(booking_id=booking_id, type=kind, at=as_utc(at)))

    def undispatched(self, limit: int) -> list[BookingEvent]:
        """Events not yet turned into deliveries, oldest first."""
        rows = self._connection.execute(
            select(booking_events).where(booking_events.c.dispatched.is_(False))
            .order_by(booking_events.c.id).limit(limit))
        return [BookingEvent(int(row.id), row.booking_id, row.type, row.at) for row in rows]

    def fan_out(self, event: BookingEvent, endpoints: Iterable[str], now: datetime) -> None:
        """One delivery of ``event`` per endpoint, due now; the event is
        dispatched (an event no endpoint wants is deleted)."""
        rows = [{"event_id": event.id, "endpoint": endpoint, "state": "pending", "attempts": 0,
                 "due_at": as_utc(now), "created_at": as_utc(now)} for endpoint in endpoints]
        if not rows:
            self._connection.execute(delete(booking_events).where(booking_events.c.id == event.id))
            return
        insert_many(self._connection, webhook_deliveries, rows)
        self._connection.execute(update(booking_events).where(booking_events.c.id == event.id)
                                 .values(dispatched=True))

    def claim(self, worker: str, now: datetime, *, hold_for: timedelta,
              limit: int = 10) -> list[WebhookDelivery]:
        """Claim up to ``limit`` due deliveries for ``worker`` until ``now +
        hold_for``; each claim counts as an attempt."""
        now = as_utc(now)
        query = (
            select(webhook_deliveries.c.id)
            .where(webhook_deliveries.c.state == "pending", webhook_deliveries.c.due_at <= now,
                   or_(webhook_deliveries.c.claimed_until.is_(None),
                       webhook_deliveries.c.claimed_until <= now))
            .order_by(webhook_deliveries.c.due_at, webhook_deliveries.c.id)
            .limit(limit)
        )
        if is_postgresql(self._connection):
            query = query.with_for_update(skip_locked=True)
        ids = list(self._connection.scalars(query))
        if not ids:
            return []
        self._connection.execute(
            update(webhook_deliveries).where(webhook_deliveries.c.id.in_(ids))
            .values(claimed_by=worker, claimed_until=now + hold_for,
                    attempts=webhook_deliveries.c.attempts + 1))
        rows = self._connection.execute(
            select(webhook_deliveries, booking_events.c.booking_id, booking_events.c.type,
                   booking_events.c.at)
            .join(booking_events, booking_events.c.id == webhook_deliveries.c.event_id)
            .where(webhook_deliveries.c.id.in_(ids))
            .order_by(webhook_deliveries.c.due_at, webhook_deliveries.c.id))
        return [_delivery(row) for row in rows]

    def keep_body(self, delivery_id: int, body: str) -> None:
        """The body of the first attempt, sent unchanged on every retry."""
        self._connection.execute(update(webhook_deliveries)
                                 .where(webhook_deliveries.c.id == delivery_id,
                                        webhook_deliveries.c.body.is_(None))
                                 .values(body=body))

    def complete(self, delivery_id: int, worker: str, now: datetime) -> bool:
        return self._release(delivery_id, worker, state="done", finished_at=as_utc(now))

    def fail(self, delivery_id: int, worker: str, error: str, *, retry_at: datetime | None,
             now: datetime) -> bool:
        """A failed attempt: retry at ``retry_at``, or give up (``failed``)."""
        if retry_at is None:
            return self._release(delivery_id, worker, state="failed", finished_at=as_utc(now),
                                 last_error=error[:MAX_ERROR_LENGTH])
        return self._release(delivery_id, worker, due_at=as_utc(retry_at),
                             last_error=error[:MAX_ERROR_LENGTH])

    def counts(self) -> dict[str, int]:
        """Deliveries by state (``pending``, ``done``, ``failed``)."""
        rows = self._connection.execute(
            select(webhook_deliveries.c.state, func.count()).group_by(webhook_deliveries.c.state))
        return {state: int(count) for state, count in rows}

    def deliveries(self) -> list[WebhookDelivery]:
        """Every delivery, oldest first (for status and tests)."""
        rows = self._connection.execute(
            select(webhook_deliveries, booking_events.c.booking_id, booking_events.c.type,
                   booking_events.c.at)
            .join(booking_events, booking_events.c.id == webhook_deliveries.c.event_id)
            .order_by(webhook_deliveries.c.id))
        return [_delivery(row) for row in rows]

    def _release(self, delivery_id: int, worker: str, **values: Any) -> bool:
        result = self._connection.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id == delivery_id,
                   webhook_deliveries.c.claimed_by == worker,
                   webhook_deliveries.c.state == "pending")
            .values(claimed_by=None, claimed_until=None, **values))
        return result.rowcount == 1


def _delivery(row: Row[Any]) -> WebhookDelivery:
    return WebhookDelivery(
        id=int(row.id), event_id=int(row.event_id), endpoint=row.endpoint, state=row.state,
        attempts=int(row.attempts), booking_id=row.booking_id, type=row.type, at=row.at,
        created_at=row.created_at, body=row.body, last_error=row.last_error)
