"""What `calpool run` says about its polls.

The first pass over every calendar shows its progress (a bar on a terminal,
a line per tenth of the calendars in a log: :class:`daemon.progress.SyncProgress`);
every later cycle, one info line once each calendar was polled once:
calendars synced, changed, failed, objects skipped, how long the cycle took.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TextIO

from daemon.progress import SyncProgress
from engine.services.sync import SyncReport
from engine.services.sync_tally import SyncTally

log = logging.getLogger("calpool.sync")


class PollCycles:
    """Counts the scheduled polls of ``keys`` in cycles: a cycle ends when
    every key was polled (or found not due) once since it began."""

    def __init__(
        self,
        keys: Iterable[str],
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        terminal: bool | None = None,
        first: bool = True,
    ) -> None:
        self._keys = frozenset(keys)
        self._clock = clock
        self._lock = threading.Lock()
        # A reloaded config starts at cycle 1: its calendars synced before.
        self.cycle = 0 if first else 1
        self._seen: set[str] = set()
        self._tally = SyncTally(len(self._keys))
        self._began: float | None = None
        self._first: SyncProgress | None = None
        if self._keys and first:
            self._first = SyncProgress(
                stream or _null_stream(), len(self._keys), title="first sync", clock=clock,
                emit=log.info, terminal=terminal if stream is not None else False)

    def start(self) -> None:
        if self._first is not None:
            self._first.start()

    def stop(self) -> None:
        if self._first is not None:
            self._first.stop()

    def polled(self, key: str, report: SyncReport | None, seconds: float) -> None:
        """One scheduled poll of ``key``: its report, or ``None`` when it was not due."""
        with self._lock:
            if self._began is None:
                self._began = self._clock()
            if report is not None:
                self._tally.add(report, seconds)
            if self.cycle == 0 and self._first is not None and report is not None \
                    and key not in self._seen:
                self._first.add(report, seconds)
            self._seen.add(key)
            if not self._keys <= self._seen:
                return
            elapsed = self._clock() - self._began
            tally, cycle = self._tally, self.cycle
            self.cycle += 1
            self._seen = set()
            self._tally = SyncTally(len(self._keys))
            self._began = None
            first, self._first = (self._first, None) if cycle == 0 else (None, self._first)
        if first is not None:
            first.stop()
        what = "first sync" if cycle == 0 else f"poll cycle {cycle}"
        log.info("%s: %s", what, tally.summary_line(elapsed))


def _null_stream() -> TextIO:
    return io.StringIO()
