"""Sync leases: one process syncs a calendar at a time (invariant 8).

A lease is a row with a holder and an expiry.  Taking it is one conditional
``UPDATE … WHERE holder = me OR expires_at <= now``: on PostgreSQL the row
lock makes a second taker re-check the condition after the first commits;
on SQLite the write transaction is serialized.  Either way at most one
holder gets ``True``.  Take, renew and release a lease in their own short
unit of work and commit at once, so other processes see it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, ScalarSelect, or_, select, update

from engine.core.model import as_utc
from engine.store.calendars import CalendarRepository
from engine.store.dialects import insert_ignoring_duplicates
from engine.store.schema import calendars, sync_leases

_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


class LeaseRepository:
    def __init__(self, connection: Connection, calendars_repo: CalendarRepository) -> None:
        self._connection = connection
        self._calendars = calendars_repo

    def try_acquire(self, calendar: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """Take (or extend) the lease of ``calendar`` for ``holder`` unless
        another holder's lease is still running at ``now``."""
        now = as_utc(now)
        self._calendars.ensure([calendar])
        calendar_id = self._calendars.id_of(calendar)
        self._connection.execute(
            insert_ignoring_duplicates(self._connection, sync_leases, ["calendar_id"]),
            {"calendar_id": calendar_id, "holder": None, "expires_at": _NEVER},
        )
        result = self._connection.execute(
            update(sync_leases)
            .where(
                sync_leases.c.calendar_id == calendar_id,
                or_(
                    sync_leases.c.holder == holder,
                    sync_leases.c.holder.is_(None),
                    sync_leases.c.expires_at <= now,
                ),
            )
            .values(holder=holder, expires_at=now + ttl)
        )
        return result.rowcount == 1

    def renew(self, calendar: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """Extend a lease ``holder`` still holds; ``False`` when it was lost."""
        now = as_utc(now)
        result = self._connection.execute(
            update(sync_leases)
            .where(
                sync_leases.c.calendar_id == _calendar_id(calendar),
                sync_leases.c.holder == holder,
                sync_leases.c.expires_at > now,
            )
            .values(expires_at=now + ttl)
        )
        return result.rowcount == 1

    def release(self, calendar: str, holder: str) -> bool:
        """Give the lease up; ``False`` when ``holder`` did not hold it."""
        result = self._connection.execute(
            update(sync_leases)
            .where(
                sync_leases.c.calendar_id == _calendar_id(calendar),
                sync_leases.c.holder == holder,
            )
            .values(holder=None, expires_at=_NEVER)
        )
        return result.rowcount == 1

    def holder(self, calendar: str, now: datetime) -> str | None:
        """Who holds the lease of ``calendar`` at ``now`` (``None``: nobody)."""
        found = self._connection.execute(
            select(sync_leases.c.holder).where(
                sync_leases.c.calendar_id == _calendar_id(calendar),
                sync_leases.c.expires_at > as_utc(now),
            )
        ).scalar_one_or_none()
        return None if found is None else str(found)


def _calendar_id(calendar: str) -> ScalarSelect[Any]:
    return select(calendars.c.id).where(calendars.c.key == calendar).scalar_subquery()
