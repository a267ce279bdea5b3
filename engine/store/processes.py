"""The configs processes run with, and the processes that run.

Every process records the fingerprint of its config (with the calendars it
names) when it starts and reloads, and refreshes its own row while it runs.
A fingerprint's ``first_seen_at`` is when any process first ran with it, so
the *newest* config is the one first seen last among the configs of the
processes still running: a process restarted with an older file does not
become the newest by starting later while the others run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from engine.core.model import as_utc
from engine.store.dialects import insert_ignoring_duplicates
from engine.store.schema import config_fingerprints, processes


@dataclass(frozen=True, slots=True)
class ConfigSeen:
    """A config some process ran with: its fingerprint, its calendars, and
    when a process first ran with it."""

    fingerprint: str
    calendars: tuple[str, ...]
    first_seen_at: datetime


@dataclass(frozen=True, slots=True)
class ProcessSeen:
    """A process that recorded itself: its lease holder name, host, config
    fingerprint, when it started and when it last said it runs."""

    holder: str
    host: str
    fingerprint: str
    started_at: datetime
    seen_at: datetime


class ProcessRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def record(self, *, holder: str, host: str, fingerprint: str, calendars: Sequence[str],
               now: datetime, newest: bool = False) -> None:
        """Record that ``holder`` runs with config ``fingerprint`` from ``now``;
        ``newest``: count the config as first seen now even if seen before."""
        now = as_utc(now)
        self._connection.execute(
            insert_ignoring_duplicates(self._connection, config_fingerprints, ["fingerprint"]),
            {"fingerprint": fingerprint, "calendars": json.dumps(sorted(calendars)),
             "first_seen_at": now},
        )
        if newest:
            self._connection.execute(
                update(config_fingerprints)
                .where(config_fingerprints.c.fingerprint == fingerprint)
                .values(first_seen_at=now))
        changed = self._connection.execute(
            update(processes).where(processes.c.holder == holder)
            .values(fingerprint=fingerprint, host=host, seen_at=now)
        )
        if changed.rowcount == 0:
            self._connection.execute(processes.insert().values(
                holder=holder, host=host, fingerprint=fingerprint, started_at=now, seen_at=now))

    def touch(self, holder: str, now: datetime) -> bool:
        """``holder`` still runs at ``now``; ``False`` when it has no row."""
        result = self._connection.execute(
            update(processes).where(processes.c.holder == holder).values(seen_at=as_utc(now)))
        return result.rowcount == 1

    def leave(self, holder: str) -> None:
        """``holder`` stops."""
        self._connection.execute(delete(processes).where(processes.c.holder == holder))

    def newest_config(self, alive_since: datetime) -> ConfigSeen | None:
        """The config first seen last among those of the processes that said
        they run at ``alive_since`` or later (ties: the greater fingerprint)."""
        alive = select(processes.c.fingerprint).where(processes.c.seen_at >= as_utc(alive_since))
        row = self._connection.execute(
            select(config_fingerprints)
            .where(config_fingerprints.c.fingerprint.in_(alive))
            .order_by(config_fingerprints.c.first_seen_at.desc(),
                      config_fingerprints.c.fingerprint.desc())
            .limit(1)
        ).one_or_none()
        if row is None:
            return None
        return ConfigSeen(row.fingerprint, tuple(json.loads(row.calendars)),
                          as_utc(row.first_seen_at))

    def running(self, seen_since: datetime) -> list[ProcessSeen]:
        """Processes that said they run at ``seen_since`` or later, oldest first."""
        rows = self._connection.execute(
            select(processes).where(processes.c.seen_at >= as_utc(seen_since))
            .order_by(processes.c.started_at, processes.c.holder)
        )
        return [ProcessSeen(row.holder, row.host, row.fingerprint, as_utc(row.started_at),
                            as_utc(row.seen_at)) for row in rows]
