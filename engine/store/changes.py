"""Hearing another process's changes at once (PostgreSQL LISTEN/NOTIFY).

Every transaction that moves a calendar's version or sync state sends
``NOTIFY calpool_changes`` (delivered at its commit, see
:func:`engine.store.dialects.notify_change`).  A :class:`ChangeFeed` listens
on its own connection in a thread and calls ``on_change`` for each
notification, so a process reloads what another process booked or synced
within milliseconds, before its next query has to.  The per-query version
check stays: a notification lost while the feed reconnects is caught there.
SQLite has no feed (one host; the version check is all).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from engine.store.dialects import CHANGES_CHANNEL

log = logging.getLogger(__name__)

RECONNECT_AFTER = 1.0  # seconds
WAKE_EVERY = 0.5  # seconds: how often the thread looks whether it should stop


class ChangeFeed:
    """``on_change`` is called from the feed's thread, once per
    notification (it must be thread-safe and quick)."""

    def __init__(self, engine: Engine, on_change: Callable[[], object]) -> None:
        self._engine = engine
        self._on_change = on_change
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="change feed", daemon=True)
        self.heard = 0

    def start(self) -> ChangeFeed:
        self._thread.start()
        return self

    def wait_listening(self, timeout: float) -> bool:
        """Whether the feed listens (within ``timeout`` seconds)."""
        return self._listening.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5 * WAKE_EVERY)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # the database went away: reconnect, the check covers the gap
                self._listening.clear()
                log.warning("the change feed lost its connection (%s); reconnecting",
                            " ".join(str(exc).split())[:200])
                self._stop.wait(RECONNECT_AFTER)

    def _listen(self) -> None:
        raw = self._engine.raw_connection()
        connection: Any = raw.driver_connection
        raw.detach()  # a connection that LISTENs never goes back to the pool
        try:
            connection.rollback()
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANGES_CHANNEL}")
            self._listening.set()
            while not self._stop.is_set():
                for _ in connection.notifies(timeout=WAKE_EVERY, stop_after=1):
                    self.heard += 1
                    try:
                        self._on_change()
                    except Exception:  # a failed refresh is retried by the next query
                        log.exception("refreshing after a change notification failed")
        finally:
            self._listening.clear()
            raw.close()
