"""The attendee's emails of a booking (``email_deliveries``).

Mail follows a booking only when the booking's transaction wrote a
``waiting`` confirmation row (:meth:`EmailRepository.await_confirmation`,
called by the manage-token issuer when ``[smtp]`` is set), which holds the
raw manage token.  From then on the booking repository passes each event
of the booking to :meth:`EmailRepository.follow`, in the event's own
transaction:

- ``confirmed``: the waiting row becomes due now;
- ``failed``: the waiting row is dropped (no email, token cleared);
- ``cancelled``: before the confirmation went out, the waiting row is
  dropped; after, a cancellation row is due now;
- ``rescheduled``: after the confirmation, a reschedule row is due now
  (before it, the confirmation will tell the new time).

Due rows are claimed like webhook deliveries: for a while, each claim an
attempt, skipping rows another worker holds on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, func, or_, select, update

from engine.core.model import as_utc
from engine.store.dialects import is_postgresql
from engine.store.records import EmailDelivery
from engine.store.schema import email_deliveries

MAX_ERROR_LENGTH = 2000
CONFIRMED = "confirmed"
RESCHEDULED = "rescheduled"
CANCELLED = "cancelled"
FAILED = "failed"

_table = email_deliveries.c


class EmailRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def await_confirmation(self, booking_id: str, manage_token: str, now: datetime) -> None:
        """The confirmation of ``booking_id``, sent once it is confirmed."""
        self._connection.execute(email_deliveries.insert().values(
            booking_id=booking_id, kind=CONFIRMED, state="waiting", manage_token=manage_token,
            attempts=0, created_at=as_utc(now)))

    def follow(self, booking_id: str, kind: str, at: datetime) -> None:
        """An event of ``booking_id`` (the booking repository's call); see the
        module docstring."""
        at = as_utc(at)
        states: dict[str, int] = dict(self._connection.execute(
            select(_table.state, func.count()).where(_table.booking_id == booking_id)
            .group_by(_table.state)).all())
        if not states:
            return  # mail does not follow this booking
        waiting = states.get("waiting", 0) > 0
        if kind == CONFIRMED and waiting:
            self._connection.execute(
                update(email_deliveries)
                .where(_table.booking_id == booking_id, _table.state == "waiting")
                .values(state="pending", due_at=at))
        elif kind in (FAILED, CANCELLED) and waiting:
            self._connection.execute(
                update(email_deliveries)
                .where(_table.booking_id == booking_id, _table.state == "waiting")
                .values(state="dropped", manage_token=None, finished_at=at))
        elif kind in (RESCHEDULED, CANCELLED) and not waiting:
            self._connection.execute(email_deliveries.insert().values(
                booking_id=booking_id, kind=kind, state="pending", attempts=0, due_at=at,
                created_at=at))

    def claim(self, worker: str, now: datetime, *, hold_for: timedelta,
              limit: int = 10) -> list[EmailDelivery]:
        """Claim up to ``limit`` due emails for ``worker`` until ``now +
        hold_for``; each claim counts as an attempt."""
        now = as_utc(now)
        query = (
            select(_table.id)
            .where(_table.state == "pending", _table.due_at <= now,
                   or_(_table.claimed_until.is_(None), _table.claimed_until <= now))
            .order_by(_table.due_at, _table.id)
            .limit(limit)
        )
        if is_postgresql(self._connection):
            query = query.with_for_update(skip_locked=True)
        ids = list(self._connection.scalars(query))
        if not ids:
            return []
        self._connection.execute(
            update(email_deliveries).where(_table.id.in_(ids))
            .values(claimed_by=worker, claimed_until=now + hold_for,
                    attempts=_table.attempts + 1))
        rows = self._connection.execute(
            select(email_deliveries).where(_table.id.in_(ids)).order_by(_table.due_at, _table.id))
        return [_delivery(row) for row in rows]

    def keep_message(self, delivery_id: int, message: str) -> None:
        """The message of the first attempt, sent unchanged on every retry."""
        self._connection.execute(update(email_deliveries)
                                 .where(_table.id == delivery_id, _table.message.is_(None))
                                 .values(message=message))

    def complete(self, delivery_id: int, worker: str, now: datetime) -> bool:
        """The server accepted the message: never sent again."""
        return self._release(delivery_id, worker, state="done", finished_at=as_utc(now),
                             manage_token=None, message=None)

    def fail(self, delivery_id: int, worker: str, error: str, *, retry_at: datetime | None,
             now: datetime) -> bool:
        """A failed attempt: retry at ``retry_at``, or give up (``failed``)."""
        if retry_at is None:
            return self._release(delivery_id, worker, state="failed", finished_at=as_utc(now),
                                 manage_token=None, message=None,
                                 last_error=error[:MAX_ERROR_LENGTH])
        return self._release(delivery_id, worker, due_at=as_utc(retry_at),
                             last_error=error[:MAX_ERROR_LENGTH])

    def counts(self) -> dict[str, int]:
        """Emails by state."""
        rows = self._connection.execute(
            select(_table.state, func.count()).group_by(_table.state))
        return {state: int(count) for state, count in rows}

    def deliveries(self, booking_id: str | None = None) -> list[EmailDelivery]:
        """Every email (of ``booking_id``), oldest first (for status and tests)."""
        query = select(email_deliveries).order_by(_table.id)
        if booking_id is not None:
            query = query.where(_table.booking_id == booking_id)
        return [_delivery(row) for row in self._connection.execute(query)]

    def _release(self, delivery_id: int, worker: str, **values: Any) -> bool:
        result = self._connection.execute(
            update(email_deliveries)
            .where(_table.id == delivery_id, _table.claimed_by == worker,
                   _table.state == "pending")
            .values(claimed_by=None, claimed_until=None, **values))
        return result.rowcount == 1


def _delivery(row: Row[Any]) -> EmailDelivery:
    return EmailDelivery(
        id=int(row.id), booking_id=row.booking_id, kind=row.kind, state=row.state,
        attempts=int(row.attempts), created_at=row.created_at, manage_token=row.manage_token,
        message=row.message, last_error=row.last_error)
