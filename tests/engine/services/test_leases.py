"""Named leases with a heartbeat: a long sync keeps its calendar, a dead
holder's lease is taken over within ``lease_ttl``, a job runs in one
process at a time.  Real threads and a real clock, a short ``lease_ttl``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.memory import MemoryConnector, MemoryProvider
from engine.core.model import ChangeSet, Interval
from engine.ports import CalendarRef
from engine.services.leases import LeaseKeeper
from engine.services.sync import CalendarBinding, SyncReport, SyncService, SyncWindow
from engine.store import Store
from tests.engine.services.memory_calendars import fresh_calendar, plain_event, put_event

TTL = timedelta(seconds=0.3)
WINDOW = SyncWindow(past=timedelta(days=1), future=timedelta(days=30))
BOUND = 10.0  # seconds: generous, the waits below end as soon as their condition holds


def utc_now() -> datetime:
    return datetime.now(UTC)


class SlowListing(MemoryConnector):
    """A memory connector whose window listing waits until the test lets it
    go: a first listing that takes longer than the lease's ttl."""

    def __init__(self, provider: MemoryProvider) -> None:
        super().__init__(provider)
        self.listing = threading.Event()
        self.go_on = threading.Event()

    def list_window(self, calendar: CalendarRef, window: Interval) -> ChangeSet:
        self.listing.set()
        assert self.go_on.wait(BOUND)
        return super().list_window(calendar, window)


def sync_service(store: Store, key: str, calendar: str, connector: MemoryConnector,
                 holder: str) -> SyncService:
    binding = CalendarBinding(key, CalendarRef(calendar, "UTC"), connector)
    return SyncService(store, {key: binding}, window=WINDOW, clock=utc_now,
                       leases=LeaseKeeper(store, holder, TTL, clock=utc_now))


@pytest.fixture
def calendar(provider: MemoryProvider) -> Iterator[str]:
    key = fresh_calendar(provider, "leased")
    now = utc_now()
    put_event(provider, key, "a", plain_event("a", now + timedelta(hours=1),
                                              now + timedelta(hours=2)))
    yield key


def test_a_long_first_listing_keeps_its_lease(
    provider: MemoryProvider, store: Store, calendar: str
) -> None:
    """Regression: the lease was renewed only at commit, so a first listing
    longer than the lease let a second process fetch the same calendar."""
    slow = SlowListing(provider)
    first = sync_service(store, "room", calendar, slow, "first")
    second = sync_service(store, "room", calendar, MemoryConnector(provider), "second")
    reports: list[SyncReport] = []
    worker = threading.Thread(target=lambda: reports.append(first.sync_calendar("room")))
    worker.start()
    assert slow.listing.wait(BOUND)

    started = time.monotonic()
    tries = 0
    while time.monotonic() - started < 4 * TTL.total_seconds():  # well past the ttl
        assert second.sync_calendar("room").outcome == "skipped"
        tries += 1
    slow.go_on.set()
    worker.join(BOUND)

    assert [report.outcome for report in reports] == ["synced"]
    assert tries > 1
    with store.reader() as uow:
        assert uow.leases.held(utc_now()) == []  # released when done


def test_a_dead_holders_lease_is_taken_over_within_the_ttl(
    provider: MemoryProvider, store: Store, calendar: str
) -> None:
    with store.unit_of_work() as uow:  # taken by a process that then died: no heartbeat
        assert uow.leases.try_acquire("sync:room", "dead", TTL, utc_now())
        uow.commit()
    died = time.monotonic()
    survivor = sync_service(store, "room", calendar, MemoryConnector(provider), "survivor")

    outcome = survivor.sync_calendar("room").outcome
    while outcome == "skipped" and time.monotonic() - died < BOUND:
        outcome = survivor.sync_calendar("room").outcome
    took_over = time.monotonic() - died

    assert outcome == "synced"
    assert TTL.total_seconds() * 0.9 <= took_over <= TTL.total_seconds() + 2


def test_a_job_runs_in_one_process_at_a_time(store: Store) -> None:
    one = LeaseKeeper(store, "one", TTL, clock=utc_now)
    two = LeaseKeeper(store, "two", TTL, clock=utc_now)
    running, finish = threading.Event(), threading.Event()
    ran: list[str] = []

    def long_job() -> str:
        running.set()
        assert finish.wait(BOUND)
        ran.append("one")
        return "done"

    results: list[str | None] = []
    worker = threading.Thread(
        target=lambda: results.append(one.run_exclusive("job:retention", long_job)))
    worker.start()
    assert running.wait(BOUND)
    started = time.monotonic()
    while time.monotonic() - started < 3 * TTL.total_seconds():  # the heartbeat holds it
        assert two.run_exclusive("job:retention", lambda: ran.append("two")) is None
    finish.set()
    worker.join(BOUND)

    assert results == ["done"] and ran == ["one"]
    assert two.run_exclusive("job:retention", lambda: "two ran") == "two ran"  # released
