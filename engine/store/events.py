"""The cache of busy events, and applying a sync batch."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    String,
    any_,
    bindparam,
    delete,
    func,
    select,
    update,
)

from engine.core.model import ChangeSet, Interval, RemoteEvent, as_utc
from engine.store.calendars import CalendarRepository, healed
from engine.store.dialects import insert_many, is_postgresql, notify_change
from engine.store.errors import DuplicateInstance
from engine.store.schema import busy_events, calendars

# Stay far below SQLite's bound-parameter limit in ``IN (…)`` lists.
_CHUNK = 500


class EventRepository:
    def __init__(self, connection: Connection, calendars_repo: CalendarRepository) -> None:
        self._connection = connection
        self._calendars = calendars_repo

    def apply_changes(
        self, calendar: str, changes: ChangeSet, window: Interval, synced_at: datetime
    ) -> int:
        """Apply one sync batch to ``calendar`` and return its version, moved
        unless the batch is an empty incremental one.

        Every cached instance of each source listed in ``changes.objects`` is
        replaced by the listed instances (none: the source is gone); with
        ``changes.full`` every unlisted source is gone too.  The cursor, the
        window, the last successful sync and the version change with the
        events, in the caller's transaction: commit the unit of work to make
        all of it visible at once, or none of it.

        Raises ``ValueError`` (before writing anything) when an event's
        ``source`` differs from the source it is listed under, and
        :class:`DuplicateInstance` (a ``ValueError`` too) when one source
        lists the same instance key twice.
        """
        rows = _rows_of(changes.objects)
        synced_at = as_utc(synced_at, what="synced_at")
        calendar_id = self._calendars.lock_id(calendar)
        if changes.full:
            self._connection.execute(
                delete(busy_events).where(busy_events.c.calendar_id == calendar_id)
            )
        elif is_postgresql(self._connection):
            # One array parameter, not an IN list: a prepared IN (…500 params…)
            # gets a generic plan that compares each row with every value.
            self._connection.execute(
                delete(busy_events).where(
                    busy_events.c.calendar_id == calendar_id,
                    busy_events.c.source == any_(bindparam("sources", type_=ARRAY(String))),
                ),
                {"sources": sorted(changes.objects)},
            )
        else:
            sources = sorted(changes.objects)
            for start in range(0, len(sources), _CHUNK):
                self._connection.execute(
                    delete(busy_events).where(
                        busy_events.c.calendar_id == calendar_id,
                        busy_events.c.source.in_(sources[start : start + _CHUNK]),
                    )
                )
        insert_many(
            self._connection, busy_events, [{"calendar_id": calendar_id, **row} for row in rows]
        )
        unreadable = self._unreadable_after(calendar_id, changes)
        version = self._connection.execute(
            update(calendars)
            .where(calendars.c.id == calendar_id)
            .values(
                **({} if unreadable is None else {
                    "unreadable": json.dumps(unreadable, sort_keys=True) if unreadable else None}),
                cursor=changes.cursor,
                window_start=window.start,
                window_end=window.end,
                last_success_at=synced_at,
                last_attempt_at=synced_at,
                last_error=None,
                last_error_at=None,
                # Only a change of events (or a heal) moves the version: every
                # process reloads a calendar whose version moved, and most
                # syncs bring nothing.
                version=calendars.c.version + (
                    1 if changes.full or changes.objects else healed()),
            )
            .returning(calendars.c.version)
        ).scalar_one()
        notify_change(self._connection)  # a new version, or at least a new success time
        return int(version)

    def _unreadable_after(self, calendar_id: int, changes: ChangeSet) -> dict[str, str] | None:
        """The calendar's unreadable objects once ``changes`` apply: a full
        listing says all of them; an incremental one replaces what it says of
        each object it lists (read now, gone, or unreadable still).  ``None``:
        an incremental batch that lists nothing changes nothing (most syncs;
        the stored set is not even read)."""
        if changes.full:
            return dict(changes.unreadable)
        if not changes.objects and not changes.unreadable:
            return None
        stored = self._connection.execute(
            select(calendars.c.unreadable).where(calendars.c.id == calendar_id)
        ).scalar_one_or_none()
        known: dict[str, str] = json.loads(stored) if stored else {}
        for source in changes.objects:
            known.pop(source, None)
        known.update(changes.unreadable)
        return known

    def in_window(self, calendar: str, window: Interval) -> list[RemoteEvent]:
        """Every cached event of ``calendar`` overlapping ``window``, by start."""
        query = (
            select(busy_events)
            .join(calendars, calendars.c.id == busy_events.c.calendar_id)
            .where(calendars.c.key == calendar, *_overlapping(window))
            .order_by(busy_events.c.start_at, busy_events.c.source, busy_events.c.instance)
        )
        return [
            RemoteEvent(
                source=row.source,
                uid=row.uid,
                instance=row.instance,
                start=row.start_at,
                end=row.end_at,
                busy=row.busy,
                etag=row.etag,
                booking_id=row.booking_id,
            )
            for row in self._connection.execute(query)
        ]

    def busy_intervals(
        self, calendar_keys: Iterable[str], window: Interval, *, include_own: bool = False
    ) -> Mapping[str, list[Interval]]:
        """Busy time of each calendar overlapping ``window``, sorted by start.

        Events calpool wrote for a booking (``booking_id`` set) are left out
        unless ``include_own``: the booking's reservation already counts, and
        counting the event as well would count it twice.  Events marked free
        are never busy.  A calendar without a row maps to an empty list.
        """
        keys = sorted(set(calendar_keys))
        result: dict[str, list[Interval]] = {key: [] for key in keys}
        conditions = [busy_events.c.busy.is_(True), *_overlapping(window)]
        if not include_own:
            conditions.append(busy_events.c.booking_id.is_(None))
        for start in range(0, len(keys), _CHUNK):
            query = (
                select(calendars.c.key, busy_events.c.start_at, busy_events.c.end_at)
                .join(calendars, calendars.c.id == busy_events.c.calendar_id)
                .where(calendars.c.key.in_(keys[start : start + _CHUNK]), *conditions)
                .order_by(calendars.c.key, busy_events.c.start_at, busy_events.c.end_at)
            )
            for key, begin, end in self._connection.execute(query):
                result[key].append(Interval(begin, end))
        return result

    def count(self, calendar: str) -> int:
        calendar_id = self._calendars.id_of(calendar)
        if calendar_id is None:
            return 0
        query = select(func.count()).where(busy_events.c.calendar_id == calendar_id)
        return int(self._connection.execute(query).scalar_one())

    def drop_outside(self, calendar: str, window: Interval) -> int:
        """Forget cached events of ``calendar`` entirely outside ``window``
        (the window rolled forward); returns how many went."""
        calendar_id = self._calendars.id_of(calendar)
        if calendar_id is None:
            return 0
        result = self._connection.execute(
            delete(busy_events).where(
                busy_events.c.calendar_id == calendar_id,
                (busy_events.c.end_at <= window.start) | (busy_events.c.start_at >= window.end),
            )
        )
        if result.rowcount:
            self._calendars.bump_versions([calendar])
        return int(result.rowcount)


def _overlapping(window: Interval) -> list[Any]:
    """Half-open overlap with ``window``, as :meth:`Interval.overlaps`."""
    return [busy_events.c.start_at < window.end, busy_events.c.end_at > window.start]


def _rows_of(objects: Mapping[str, tuple[RemoteEvent, ...]]) -> list[dict[str, Any]]:
    by_identity: dict[tuple[str, str], dict[str, Any]] = {}
    for source, instances in objects.items():
        for event in instances:
            if event.source != source:
                raise ValueError(f"event of source {event.source!r} listed under source {source!r}")
            if event.identity in by_identity:
                raise DuplicateInstance(event.source, event.instance)
            by_identity[event.identity] = {
                "source": event.source,
                "instance": event.instance,
                "uid": event.uid,
                "start_at": event.start,
                "end_at": event.end,
                "busy": event.busy,
                "etag": event.etag,
                "booking_id": event.booking_id,
            }
    return list(by_identity.values())
