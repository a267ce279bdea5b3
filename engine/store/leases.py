"""Named leases: one holder at a time for a sync or a job (invariant 8).

A lease is a row named for what it guards (``sync:<calendar>``,
``job:retention``, ``job:window-roll``, ``job:channels``) with a holder, an
expiry and the holder's last heartbeat.  Taking it reads the row and then
writes it, in one short transaction: on PostgreSQL the read is ``SELECT …
FOR UPDATE SKIP LOCKED``, so a second taker does not wait for the first's
commit but sees no row and gives up at once; on SQLite the unit of work
holds the write lock from its first statement, so takers are serialized.
Either way at most one holder gets ``True``, and a lease whose holder died
is free once its expiry has passed.  Take, renew (the heartbeat) and
release a lease in their own unit of work and commit at once, so other
processes see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update

from engine.core.model import as_utc
from engine.store.dialects import insert_ignoring_duplicates, is_postgresql
from engine.store.schema import leases

_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def sync_lease(calendar: str) -> str:
    """The name of the lease that guards the sync of ``calendar``."""
    return f"sync:{calendar}"


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease that is held: by whom, until when, and its last heartbeat."""

    name: str
    holder: str
    expires_at: datetime
    heartbeat_at: datetime | None


class LeaseRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def try_acquire(self, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """Take (or extend) lease ``name`` for ``holder`` unless another
        holder's lease is still running at ``now`` (or another process is
        taking it in this very moment: PostgreSQL skips the locked row)."""
        now = as_utc(now)
        row = self._locked(name)
        if row is None:
            # Locked by another taker right now, or never taken: only the
            # second may insert (an insert would queue behind a locked row).
            exists = self._connection.execute(
                select(leases.c.name).where(leases.c.name == name)).first()
            if exists is not None:
                return False
            self._connection.execute(
                insert_ignoring_duplicates(self._connection, leases, ["name"]),
                {"name": name, "holder": None, "expires_at": _NEVER},
            )
            row = self._locked(name)
            if row is None:
                return False
        if row.holder is not None and row.holder != holder and as_utc(row.expires_at) > now:
            return False
        self._connection.execute(
            update(leases).where(leases.c.name == name)
            .values(holder=holder, expires_at=now + ttl, heartbeat_at=now)
        )
        return True

    def _locked(self, name: str) -> Row[Any] | None:
        query = select(leases).where(leases.c.name == name)
        if is_postgresql(self._connection):
            query = query.with_for_update(skip_locked=True)
        found: Row[Any] | None = self._connection.execute(query).one_or_none()
        return found

    def renew(self, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """The heartbeat: extend a lease ``holder`` still holds; ``False``
        when it was lost (it ran out, and perhaps another took it)."""
        now = as_utc(now)
        result = self._connection.execute(
            update(leases)
            .where(leases.c.name == name, leases.c.holder == holder, leases.c.expires_at > now)
            .values(expires_at=now + ttl, heartbeat_at=now)
        )
        return result.rowcount == 1

    def release(self, name: str, holder: str) -> bool:
        """Give the lease up; ``False`` when ``holder`` did not hold it."""
        result = self._connection.execute(
            update(leases)
            .where(leases.c.name == name, leases.c.holder == holder)
            .values(holder=None, expires_at=_NEVER)
        )
        return result.rowcount == 1

    def holder(self, name: str, now: datetime) -> str | None:
        """Who holds lease ``name`` at ``now`` (``None``: nobody)."""
        found = self._connection.execute(
            select(leases.c.holder).where(leases.c.name == name,
                                          leases.c.expires_at > as_utc(now))
        ).scalar_one_or_none()
        return None if found is None else str(found)

    def held(self, now: datetime) -> list[Lease]:
        """Every lease held at ``now``, by name."""
        rows = self._connection.execute(
            select(leases).where(leases.c.holder.is_not(None), leases.c.expires_at > as_utc(now))
            .order_by(leases.c.name)
        )
        return [Lease(row.name, row.holder, as_utc(row.expires_at),
                      None if row.heartbeat_at is None else as_utc(row.heartbeat_at))
                for row in rows]

    def forget(self, name: str) -> None:
        """Drop the row of ``name`` (its calendar left the store)."""
        self._connection.execute(delete(leases).where(leases.c.name == name))
