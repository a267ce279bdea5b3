"""Outbox claims are kept alive while their batch runs (issue 18).

A worker claims a batch of jobs for ``hold_for`` and extends the claims of
the jobs it has not finished from a heartbeat, so a batch of slow provider
calls that takes many times ``hold_for`` keeps its later jobs: a second
worker draining meanwhile (another process) finds nothing to do, and every
write is made once.  A worker that dies stops beating: its jobs are taken
over once ``hold_for`` has passed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

from engine.core.model import BookingStatus
from engine.ports import CalendarRef, EventDraft, WrittenEvent
from engine.services.availability import BusyCache
from engine.services.drafts import Catalog
from engine.services.outbox import DrainReport, OutboxPolicy, OutboxWorker
from engine.store import Store
from tests.engine.services.test_outbox_settle import (
    NOW,
    Killed,
    RecordingConnector,
    _catalog,
    _reserve,
    _status,
)

HOLD = timedelta(seconds=0.3)


class SlowConnector(RecordingConnector):
    """Each write takes ``pause`` seconds (a slow provider) and is counted;
    with ``die`` the first write kills the worker instead."""

    def __init__(self, pause: float, *, die: bool = False) -> None:
        super().__init__()
        self.pause = pause
        self.die = die
        self.writes: Counter[tuple[str, str]] = Counter()
        self.writing = threading.Event()  # set once the first write began

    def create_event(self, calendar: CalendarRef, draft: EventDraft) -> WrittenEvent:
        if self.die:
            self.die = False
            raise Killed("the process died during its first write")
        self.writes[(calendar.id, draft.booking_id)] += 1
        self.writing.set()
        time.sleep(self.pause)
        return super().create_event(calendar, draft)

    update_event = create_event


def _worker(store: Store, catalog: Catalog, name: str) -> OutboxWorker:
    return OutboxWorker(store, BusyCache(catalog.calendars), catalog,
                        policy=OutboxPolicy(hold_for=HOLD), name=name)


def test_a_batch_slower_than_its_claim_keeps_its_jobs(store: Store) -> None:
    connector = SlowConnector(pause=HOLD.total_seconds() * 1.5)
    catalog = _catalog(connector)
    booking = _reserve(store, catalog, "b1", hour=1)
    first, second = _worker(store, catalog, "first"), _worker(store, catalog, "second")
    started = time.monotonic()
    done: list[DrainReport] = []
    draining = threading.Thread(target=lambda: done.append(first.drain(NOW)))
    draining.start()
    # The first worker claims the batch before the second looks: on a busy
    # machine the thread may start late, and the second would claim first.
    assert connector.writing.wait(timeout=30)
    taken_by_second = 0
    while draining.is_alive():
        # The second worker's clock runs with the real one from NOW, as
        # another process's would.
        later = NOW + timedelta(seconds=time.monotonic() - started)
        taken_by_second += second.drain(later).jobs
        time.sleep(0.02)
    draining.join()

    ran_for = time.monotonic() - started
    assert ran_for > 3 * HOLD.total_seconds()  # three writes of 1.5 × hold_for each
    assert done[0].done == 3
    assert taken_by_second == 0
    assert set(connector.writes.values()) == {1}, connector.writes
    assert len(connector.writes) == 3
    assert _status(store, booking.id) is BookingStatus.CONFIRMED


def test_the_jobs_of_a_worker_that_died_are_taken_over_after_hold_for(store: Store) -> None:
    connector = SlowConnector(pause=0.0, die=True)
    catalog = _catalog(connector)
    booking = _reserve(store, catalog, "b2", hour=2)
    try:
        _worker(store, catalog, "dying").drain(NOW)
    except Killed:
        pass
    else:
        raise AssertionError("the first write was meant to kill the worker")
    heir = _worker(store, catalog, "heir")
    assert heir.drain(NOW + HOLD / 2).jobs == 0  # still claimed by the dead worker
    assert heir.drain(NOW + HOLD).done == 3
    assert _status(store, booking.id) is BookingStatus.CONFIRMED
