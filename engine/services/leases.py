"""Holding a named lease while working, with a heartbeat (invariant 8).

Several processes on one database share the work through leases
(:mod:`engine.store.leases`): the sync of a calendar (``sync:<calendar>``)
and the jobs that must run in one process at a time (``job:retention``,
``job:window-roll``, ``job:channels``).  A holder renews its lease every
third of ``ttl`` from a thread beside the work, so a long first listing
keeps its lease however long it takes; a process that dies stops renewing,
and another takes the lease over once ``ttl`` has passed since the last
heartbeat.  A heartbeat that finds the lease gone (the database was
unreachable for longer than ``ttl``) marks it :attr:`HeldLease.lost`, and
the work checks that before it commits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import TypeVar

from engine.store import Store, UnitOfWork

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
T = TypeVar("T")

RETENTION = "job:retention"
WINDOW_ROLL = "job:window-roll"
CHANNELS = "job:channels"


class HeldLease:
    """A lease this process took; renewed from a thread until released.
    Use it as a context manager: leaving the block releases the lease."""

    def __init__(self, keeper: LeaseKeeper, name: str) -> None:
        self._keeper = keeper
        self.name = name
        self._stop = threading.Event()
        self._lost = threading.Event()
        self.beats = 0
        self._given_up = False
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {name}", daemon=True)

    @property
    def lost(self) -> bool:
        """Whether a heartbeat found the lease gone (another may hold it)."""
        return self._lost.is_set()

    def start(self) -> HeldLease:
        self._thread.start()
        return self

    def given_up(self) -> None:
        """The holder released the lease in a transaction of its own (a sync
        batch's, to spare a commit): leaving the block only stops the heartbeat."""
        self._given_up = True

    def release(self) -> None:
        """Stop the heartbeat and give the lease up."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        if not self._given_up:
            self._keeper.release(self.name)

    def _beat(self) -> None:
        interval = self._keeper.ttl.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                renewed = self._keeper.renew(self.name)
            except Exception as exc:  # the database may be back before the lease runs out
                log.warning("heartbeat of lease %s failed: %s", self.name, exc)
                continue
            if not renewed:
                log.warning("lease %s was lost while its work ran", self.name)
                self._lost.set()
                return
            self.beats += 1

    def __enter__(self) -> HeldLease:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()


class LeaseKeeper:
    """Takes, renews and releases the leases of one process (``holder``)."""

    def __init__(self, store: Store, holder: str, ttl: timedelta, *,
                 clock: Clock) -> None:
        self._store = store
        self.holder = holder
        self.ttl = ttl
        self._clock = clock

    def try_hold(self, name: str, *,
                 also: Callable[[UnitOfWork], None] | None = None) -> HeldLease | None:
        """Take lease ``name`` and start its heartbeat; ``None`` when another
        process holds it.  ``also`` runs in the taking transaction once the
        lease is taken (a sync's attempt record: one commit, not two)."""
        with self._store.unit_of_work() as uow:
            taken = uow.leases.try_acquire(name, self.holder, self.ttl, self._clock())
            if taken and also is not None:
                also(uow)
            uow.commit()
        return HeldLease(self, name).start() if taken else None

    def renew(self, name: str) -> bool:
        with self._store.unit_of_work() as uow:
            renewed = uow.leases.renew(name, self.holder, self.ttl, self._clock())
            uow.commit()
        return renewed

    def release(self, name: str) -> None:
        with self._store.unit_of_work() as uow:
            uow.leases.release(name, self.holder)
            uow.commit()

    def run_exclusive(self, name: str, work: Callable[[], T]) -> T | None:
        """Run ``work`` while holding lease ``name``; ``None`` (and nothing
        run) when another process holds it."""
        held = self.try_hold(name)
        if held is None:
            log.debug("%s runs in another process; skipped here", name)
            return None
        with held:
            return work()
