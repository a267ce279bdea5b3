"""Calendar rows and their sync state."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Row,
    Select,
    case,
    func,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import RowMapping

from engine.core.model import Interval, as_utc
from engine.store.dialects import insert_ignoring_duplicates, is_postgresql, notify_change
from engine.store.records import SyncState
from engine.store.schema import calendars, leases

# Keep error text bounded: it is shown in `calpool status`, not a log archive.
MAX_ERROR_LENGTH = 2000


def healed() -> ColumnElement[Any]:
    """1 when the calendar's last attempt failed, else 0: what a successful
    sync that changes no event adds to its version.  The change mark leaves
    success stamps out, and the error the sync clears must not look like an
    older state, so other processes reload a healed calendar."""
    return case((calendars.c.last_error_at.is_not(None), 1), else_=0)


class CalendarRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def ensure(self, keys: Iterable[str]) -> None:
        """Create a row (version 0, never synced) for every key that has none."""
        rows = [{"key": key} for key in sorted(set(keys))]
        if rows:
            statement = insert_ignoring_duplicates(self._connection, calendars, ["key"])
            self._connection.execute(statement, rows)

    def keys(self) -> list[str]:
        return list(self._connection.scalars(select(calendars.c.key).order_by(calendars.c.key)))

    def remove(self, key: str) -> bool:
        """Forget a calendar with its cached events, lease and channels."""
        self._connection.execute(leases.delete().where(leases.c.name == f"sync:{key}"))
        result = self._connection.execute(calendars.delete().where(calendars.c.key == key))
        return result.rowcount > 0

    def lock_id(self, key: str) -> int:
        """The row id of ``key`` (created if missing), locked until the transaction
        ends on PostgreSQL, so writers of one calendar take turns."""
        self.ensure([key])
        query = select(calendars.c.id).where(calendars.c.key == key)
        if is_postgresql(self._connection):
            query = query.with_for_update()
        return int(self._connection.execute(query).scalar_one())

    def id_of(self, key: str) -> int | None:
        found = self._connection.execute(
            select(calendars.c.id).where(calendars.c.key == key)
        ).scalar_one_or_none()
        return None if found is None else int(found)

    def sync_state(self, key: str) -> SyncState | None:
        row = self._connection.execute(
            select(calendars).where(calendars.c.key == key)
        ).one_or_none()
        return None if row is None else _sync_state(row)

    def sync_states(self) -> list[SyncState]:
        rows = self._connection.execute(select(calendars).order_by(calendars.c.key))
        return [_sync_state(row) for row in rows]

    def versions(self, keys: Iterable[str] | None = None) -> Mapping[str, int]:
        """Each calendar's change counter (one small query per slot query)."""
        query = select(calendars.c.key, calendars.c.version)
        if keys is not None:
            query = query.where(calendars.c.key.in_(sorted(set(keys))))
        return {key: int(version) for key, version in self._connection.execute(query)}

    def change_mark(self) -> tuple[int, ...]:
        """A fingerprint of every calendar's version and last error, one row:
        equal fingerprints mean neither moved in between (the per-query check
        of the slot path, far cheaper than reading every state).

        Versions only grow, so ``sum(version)`` moves with every change to
        busy time or bookings; the count and ``sum(id)`` move when calendars
        come or go; a failed sync leaves the version alone but stamps
        ``last_error_at``, which the sum of stamps follows (a count of error
        stamps too, as a heal clears them).  A sync that changes nothing
        moves nothing here: it only stamps ``last_success_at`` (with the
        cursor, window and last attempt, none of them covered), so the polls
        of hundreds of unchanged calendars do not make every slot query read
        every state again.  A reader that shows staleness reads the states
        anew when its copy would call a calendar stale
        (``BusyCache.refresh``): a success stamp it missed can only make a
        calendar look older, never fresher.
        """
        # The statement is built once per dialect: building it each time
        # cost a quarter of the check.
        row = self._connection.execute(_change_mark_query(is_postgresql(self._connection))).one()
        return tuple(int(value or 0) for value in row)

    def bump_versions(self, keys: Iterable[str]) -> None:
        """Move the change counter of each existing calendar in ``keys``.

        Rows are updated in key order so two transactions touching the same
        calendars lock them in the same order and cannot deadlock.
        """
        ordered = sorted(set(keys))
        for key in ordered:
            self._connection.execute(
                update(calendars)
                .where(calendars.c.key == key)
                .values(version=calendars.c.version + 1)
            )
        if ordered:
            notify_change(self._connection)

    def record_attempt(self, key: str, at: datetime) -> None:
        self.ensure([key])
        self._connection.execute(
            update(calendars).where(calendars.c.key == key).values(last_attempt_at=as_utc(at))
        )

    def record_failure(self, key: str, at: datetime, error: str) -> None:
        """Note a failed sync; the cursor and the cached events stay as they were."""
        self.ensure([key])
        self._connection.execute(
            update(calendars)
            .where(calendars.c.key == key)
            .values(
                last_attempt_at=as_utc(at),
                last_error=error[:MAX_ERROR_LENGTH],
                last_error_at=as_utc(at),
            )
        )

    def record_unchanged(
        self, cursors: Mapping[str, str], window: Interval, at: datetime
    ) -> dict[str, int]:
        """Record a successful sync that found nothing new for each calendar
        of ``cursors`` (key → cursor) whose stored cursor and window are
        still those: the cursor and events stay, the success time moves and
        an error is cleared (which moves the version, as in
        ``EventRepository.apply_changes``).  Returns the version of each
        calendar recorded; one whose row moved on meanwhile is left out.
        Rows are updated in key order (no deadlock with a concurrent batch)."""
        at = as_utc(at)
        recorded: dict[str, int] = {}
        for key in sorted(cursors):
            version = self._connection.execute(
                update(calendars)
                .where(calendars.c.key == key, calendars.c.cursor == cursors[key],
                       calendars.c.window_start == window.start,
                       calendars.c.window_end == window.end)
                .values(
                    last_success_at=at, last_attempt_at=at, last_error=None, last_error_at=None,
                    version=calendars.c.version + healed(),
                )
                .returning(calendars.c.version)
            ).scalar_one_or_none()
            if version is not None:
                recorded[key] = int(version)
        if recorded:
            notify_change(self._connection)  # new success times, perhaps a healed error
        return recorded

    def reset_cursor(self, key: str) -> None:
        """Drop the cursor (it expired): the next sync of ``key`` is a full one."""
        self._connection.execute(
            update(calendars).where(calendars.c.key == key).values(cursor=None)
        )


@cache
def _change_mark_query(postgresql: bool) -> Select[tuple[Any, ...]]:
    def stamps(column: Column[datetime]) -> ColumnElement[Any]:
        # Microseconds as a number: SQLite keeps them so already.
        if postgresql:
            return func.sum(func.extract("epoch", column) * 1_000_000)
        return func.sum(type_coerce(column, BigInteger))

    return select(
        func.count(), func.sum(calendars.c.id), func.sum(calendars.c.version),
        func.count(calendars.c.last_error_at), stamps(calendars.c.last_error_at),
    )


def _sync_state(row: Row[tuple[object, ...]] | RowMapping) -> SyncState:
    values = row._mapping if isinstance(row, Row) else row
    window = None
    if values["window_start"] is not None and values["window_end"] is not None:
        window = Interval(values["window_start"], values["window_end"])
    return SyncState(
        calendar=values["key"],
        cursor=values["cursor"],
        window=window,
        last_success_at=values["last_success_at"],
        last_attempt_at=values["last_attempt_at"],
        last_error=values["last_error"],
        last_error_at=values["last_error_at"],
        version=int(values["version"]),
        unreadable=json.loads(values["unreadable"]) if values["unreadable"] else {},
    )
