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


class Heartbeat:
    """Calls ``beat`` every ``interval`` seconds from a thread of its own
    until stopped, to keep something the work holds (a lease, the claims of
    outbox jobs) from running out while the work takes its time.  ``beat``
    answers whether the thing is still held; the first ``False`` marks it
    :attr:`lost` and ends the beating.  A beat that raises (the database
    unreachable for a moment) is logged and the next one tries again: the
    hold may well outlast the outage."""

    def __init__(self, what: str, interval: float, beat: Callable[[], bool]) -> None:
        self.what = what
        self._interval = interval
        self._beat_once = beat
        self._stop = threading.Event()
        self._lost = threading.Event()
        self.beats = 0
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {what}", daemon=True)

    @property
    def lost(self) -> bool:
        """Whether a beat found the thing gone (another may hold it now)."""
        return self._lost.is_set()

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating; returns once no beat is under way."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                held = self._beat_once()
            except Exception as exc:
                log.warning("heartbeat of %s failed: %s", self.what, exc)
                continue
            if not held:
                log.warning("%s was lost while its work ran", self.what)
                self._lost.set()
                return
            self.beats += 1


class HeldLease:
    """A lease this process took; renewed from a thread until released.
    Use it as a context manager: leaving the block releases the lease."""

    def __init__(self, keeper: LeaseKeeper, name: str) -> None:
        self._keeper = keeper
        self.name = name
        self._given_up = False
        self._heartbeat = Heartbeat(f"lease {name}", keeper.ttl.total_seconds() / 3,
                                    lambda: keeper.renew(name))

    @property
    def lost(self) -> bool:
        """Whether a heartbeat found the lease gone (another may hold it)."""
        return self._heartbeat.lost

    @property
    def beats(self) -> int:
        return self._heartbeat.beats

    def start(self) -> HeldLease:
        self._heartbeat.start()
        return self

    def given_up(self) -> None:
        """The holder released the lease in a transaction of its own (a sync
        batch's, to spare a commit): leaving the block only stops the heartbeat."""
        self._given_up = True

    def release(self) -> None:
        """Stop the heartbeat and give the lease up."""
        self._heartbeat.stop()
        if not self._given_up:
            self._keeper.release(self.name)

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
