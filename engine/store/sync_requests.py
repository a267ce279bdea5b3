"""The "sync requested" mark of each calendar (revision 0005).

A push notification asks for a sync; the calendar's sync, in whichever
process holds or takes its lease, answers it.  The mark is a pair of
counters so that no request is lost to a sync already running: a
notification raises ``requested``; a sync reads ``requested`` before it
fetches (:meth:`SyncRequestRepository.requested`) and writes that number as
``served`` in the transaction of its batch (:meth:`serve`).  A notification
that arrived meanwhile leaves ``requested > served``: still outstanding.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from engine.core.model import as_utc
from engine.store.calendars import CalendarRepository
from engine.store.dialects import insert_ignoring_duplicates
from engine.store.schema import calendars, sync_requests


class SyncRequestRepository:
    def __init__(self, connection: Connection, calendars_repo: CalendarRepository) -> None:
        self._connection = connection
        self._calendars = calendars_repo

    def request(self, calendar: str, at: datetime) -> None:
        """Mark ``calendar``: a sync is wanted (a notification said it changed)."""
        calendar_id = self._row(calendar)
        self._connection.execute(
            update(sync_requests)
            .where(sync_requests.c.calendar_id == calendar_id)
            .values(requested=sync_requests.c.requested + 1, requested_at=as_utc(at))
        )

    def requested(self, calendar: str) -> int:
        """The request number a sync starting now answers (read it before
        fetching, pass it to :meth:`serve` with the batch)."""
        found = self._connection.execute(
            select(sync_requests.c.requested)
            .join(calendars, calendars.c.id == sync_requests.c.calendar_id)
            .where(calendars.c.key == calendar)
        ).scalar_one_or_none()
        return int(found or 0)

    def serve(self, calendar: str, requested: int) -> None:
        """Clear the mark up to ``requested`` (in the sync's own transaction)."""
        if requested <= 0:
            return
        calendar_id = self._row(calendar)
        self._connection.execute(
            update(sync_requests)
            .where(sync_requests.c.calendar_id == calendar_id,
                   sync_requests.c.served < requested)
            .values(served=requested)
        )

    def outstanding(self) -> list[str]:
        """Calendars marked and not yet synced since, longest waiting first."""
        rows = self._connection.execute(
            select(calendars.c.key)
            .join(sync_requests, calendars.c.id == sync_requests.c.calendar_id)
            .where(sync_requests.c.requested > sync_requests.c.served)
            .order_by(sync_requests.c.requested_at, calendars.c.key)
        )
        return [str(row.key) for row in rows]

    def is_outstanding(self, calendar: str) -> bool:
        found = self._connection.execute(
            select(sync_requests.c.requested > sync_requests.c.served)
            .join(calendars, calendars.c.id == sync_requests.c.calendar_id)
            .where(calendars.c.key == calendar)
        ).scalar_one_or_none()
        return bool(found)

    def _row(self, calendar: str) -> int:
        self._calendars.ensure([calendar])
        calendar_id = self._calendars.id_of(calendar)
        assert calendar_id is not None  # ensured above
        self._connection.execute(
            insert_ignoring_duplicates(self._connection, sync_requests, ["calendar_id"]),
            {"calendar_id": calendar_id, "requested": 0, "served": 0},
        )
        return calendar_id
