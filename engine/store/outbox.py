"""The outbox: provider writes queued in the same transaction as the booking.

A worker claims due jobs for a while (``claimed_until``), extends the
claims of its batch from a heartbeat while the batch runs, and a claim that
runs out (the worker died) makes the job claimable again, so every job is done at
least once — the provider writes are idempotent, so at least once is enough.
On PostgreSQL, claiming skips rows another worker is claiming right now
(``FOR UPDATE SKIP LOCKED``); on SQLite claims are serialized anyway.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, exists, func, or_, select, update

from engine.core.model import as_utc
from engine.store.dialects import is_postgresql
from engine.store.records import OutboxJob
from engine.store.schema import bookings, outbox

MAX_ERROR_LENGTH = 2000


class OutboxRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        due_at: datetime,
        now: datetime,
        booking_id: str | None = None,
    ) -> int:
        """Queue a job (in the caller's transaction) and return its id.
        ``payload`` must be JSON-serializable."""
        return int(
            self._connection.execute(
                outbox.insert()
                .values(
                    kind=kind,
                    payload=json.dumps(dict(payload), sort_keys=True),
                    state="pending",
                    attempts=0,
                    due_at=as_utc(due_at),
                    created_at=as_utc(now),
                    booking_id=booking_id,
                )
                .returning(outbox.c.id)
            ).scalar_one()
        )

    def claim(
        self,
        worker: str,
        now: datetime,
        *,
        hold_for: timedelta,
        limit: int = 10,
        booking_id: str | None = None,
    ) -> list[OutboxJob]:
        """Claim up to ``limit`` due jobs for ``worker`` until ``now + hold_for``,
        oldest due first; each claim counts as an attempt.  With
        ``booking_id`` only that booking's jobs (a request waiting for them)."""
        now = as_utc(now)
        query = (
            select(outbox.c.id)
            .where(
                outbox.c.state == "pending",
                outbox.c.due_at <= now,
                or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until <= now),
            )
            .order_by(outbox.c.due_at, outbox.c.id)
            .limit(limit)
        )
        if booking_id is not None:
            query = query.where(outbox.c.booking_id == booking_id)
        if is_postgresql(self._connection):
            query = query.with_for_update(skip_locked=True)
        ids = list(self._connection.scalars(query))
        if not ids:
            return []
        self._connection.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids))
            .values(claimed_by=worker, claimed_until=now + hold_for, attempts=outbox.c.attempts + 1)
        )
        rows = self._connection.execute(
            select(outbox).where(outbox.c.id.in_(ids)).order_by(outbox.c.due_at, outbox.c.id)
        )
        return [_job(row) for row in rows]

    def extend_claims(self, job_ids: Sequence[int], worker: str, until: datetime) -> int:
        """Hold ``worker``'s claims of ``job_ids`` until ``until`` (the
        heartbeat of a batch that is still running); returns how many it
        still held."""
        if not job_ids:
            return 0
        result = self._connection.execute(
            update(outbox)
            .where(outbox.c.id.in_(list(job_ids)), outbox.c.claimed_by == worker,
                   outbox.c.state == "pending")
            .values(claimed_until=as_utc(until))
        )
        return int(result.rowcount)

    def complete(self, job_id: int, worker: str, now: datetime) -> bool:
        """Mark a claimed job done; ``False`` when ``worker`` no longer holds it."""
        return self._release(job_id, worker, state="done", finished_at=as_utc(now))

    def fail(self, job_id: int, worker: str, error: str, *, retry_at: datetime | None) -> bool:
        """Record a failed attempt: retry at ``retry_at``, or give the job up
        (state ``dead``) when it is ``None``."""
        if retry_at is None:
            return self._release(job_id, worker, state="dead", last_error=error[:MAX_ERROR_LENGTH])
        return self._release(
            job_id, worker, due_at=as_utc(retry_at), last_error=error[:MAX_ERROR_LENGTH]
        )

    def defer(self, job_id: int, worker: str, reason: str, *, until: datetime) -> bool:
        """Put a claimed job back, due at ``until``, without counting the
        attempt: it was never sent (its account is cooling down)."""
        return self._release(job_id, worker, due_at=as_utc(until),
                             attempts=outbox.c.attempts - 1, last_error=reason[:MAX_ERROR_LENGTH])

    def get(self, job_id: int) -> tuple[str, OutboxJob] | None:
        """The job's state (``pending``, ``done``, ``dead``) and the job."""
        row = self._connection.execute(select(outbox).where(outbox.c.id == job_id)).one_or_none()
        return None if row is None else (row.state, _job(row))

    def for_booking(self, booking_id: str) -> list[tuple[str, OutboxJob]]:
        rows = self._connection.execute(
            select(outbox).where(outbox.c.booking_id == booking_id).order_by(outbox.c.id)
        )
        return [(row.state, _job(row)) for row in rows]

    def bookings_done_in(self, kind: str, status: str) -> list[str]:
        """Ids of the bookings in ``status`` that have jobs of ``kind`` and
        every one of them ``done`` (oldest booking first): after a write,
        a booking still ``pending`` with all its writes done was left
        behind by a crash or a path that forgot to confirm it."""
        jobs_of = outbox.c.booking_id == bookings.c.id
        query = (
            select(bookings.c.id)
            .where(
                bookings.c.status == status,
                exists().where(jobs_of, outbox.c.kind == kind),
                ~exists().where(and_(jobs_of, outbox.c.kind == kind, outbox.c.state != "done")),
            )
            .order_by(bookings.c.booked_at, bookings.c.id)
        )
        return [str(found) for found in self._connection.scalars(query)]

    def pending_count(self) -> int:
        query = select(func.count()).select_from(outbox).where(outbox.c.state == "pending")
        return int(self._connection.execute(query).scalar_one())

    def oldest_pending_created_at(self) -> datetime | None:
        """When the oldest job still waiting was queued (``None``: none waits)."""
        query = select(func.min(outbox.c.created_at)).where(outbox.c.state == "pending")
        found: datetime | None = self._connection.execute(query).scalar_one()
        return found

    def _release(self, job_id: int, worker: str, **values: Any) -> bool:
        """Update a job ``worker`` holds and end its claim."""
        result = self._connection.execute(
            update(outbox)
            .where(
                outbox.c.id == job_id, outbox.c.claimed_by == worker, outbox.c.state == "pending"
            )
            .values(claimed_by=None, claimed_until=None, **values)
        )
        return result.rowcount == 1


def _job(row: Row[Any]) -> OutboxJob:
    return OutboxJob(
        id=int(row.id),
        kind=row.kind,
        payload=json.loads(row.payload),
        booking_id=row.booking_id,
        attempts=int(row.attempts),
        due_at=row.due_at,
        last_error=row.last_error,
    )
