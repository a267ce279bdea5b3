"""The sync service against the in-memory provider and a real SQLite store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from connectors.memory import MemoryConnector, MemoryProvider
from engine.core.busy import BusyTimeline
from engine.core.model import ChangeSet, Interval
from engine.core.zones import from_us
from engine.ports import CalendarRef
from engine.services.availability import BusyCache
from engine.services.sync import CalendarBinding, SyncService, SyncWindow
from engine.store import Store
from tests.engine.services.memory_calendars import (
    delete_event,
    fresh_calendar,
    plain_event,
    put_event,
)

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
WINDOW = SyncWindow(past=timedelta(days=1), future=timedelta(days=30))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def connector_for(provider: MemoryProvider) -> MemoryConnector:
    return MemoryConnector(provider)


def service(
    store: Store,
    bindings: dict[str, CalendarBinding],
    *,
    clock: Callable[[], datetime] = lambda: NOW,
    window: SyncWindow = WINDOW,
    cache: BusyCache | None = None,
    on_fetched: Callable[[str, ChangeSet], None] | None = None,
) -> SyncService:
    return SyncService(
        store, bindings, window=window, cache=cache, clock=clock, on_fetched=on_fetched
    )


def bind(key: str, calendar_id: str, connector: MemoryConnector) -> dict[str, CalendarBinding]:
    return {key: CalendarBinding(key, CalendarRef(calendar_id, "Europe/Berlin"), connector)}


def cached(store: Store, key: str) -> list[tuple[str, datetime, datetime]]:
    with store.reader() as uow:
        everything = Interval(NOW - timedelta(days=400), NOW + timedelta(days=400))
        events = uow.events.in_window(key, everything)
    return sorted((event.uid, event.start, event.end) for event in events)


def at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def test_first_sync_fills_the_store_and_the_busy_cache(
    provider: MemoryProvider, store: Store
) -> None:
    calendar = fresh_calendar(provider, "first")
    put_event(provider, calendar, "a", plain_event("a", at(2), at(3)))
    put_event(provider, calendar, "b", plain_event("b", at(26), at(27), extra="TRANSP:TRANSPARENT"))
    cache = BusyCache(["room"])
    sync = service(store, bind("room", calendar, connector_for(provider)), cache=cache)

    report = sync.sync_calendar("room")

    assert (report.outcome, report.full, report.changed) == ("synced", True, 2)
    assert cached(store, "room") == [("a", at(2), at(3)), ("b", at(26), at(27))]
    timeline = cache.snapshot().busy["room"]
    assert [Interval(s, e) for s, e in _spans(timeline)] == [Interval(at(2), at(3))]
    with store.reader() as uow:
        state = uow.calendars.sync_state("room")
    assert state is not None and state.last_success_at == NOW and state.cursor


def test_incremental_sync_reports_exactly_the_server_edits(
    provider: MemoryProvider, store: Store
) -> None:
    calendar = fresh_calendar(provider, "incremental")
    for name, hour in (("keep", 1), ("move", 5), ("gone", 9)):
        put_event(provider, calendar, name, plain_event(name, at(hour), at(hour + 1)))
    sync = service(store, bind("alice", calendar, connector_for(provider)))
    assert sync.sync_calendar("alice").full

    put_event(provider, calendar, "move", plain_event("move", at(6), at(8)))
    delete_event(provider, calendar, "gone")
    put_event(provider, calendar, "new", plain_event("new", at(30), at(31)))
    report = sync.sync_calendar("alice")

    assert (report.full, report.changed, report.removed) == (False, 2, 1)
    assert cached(store, "alice") == [
        ("keep", at(1), at(2)),
        ("move", at(6), at(8)),
        ("new", at(30), at(31)),
    ]


def test_an_expired_cursor_leads_to_a_full_listing(provider: MemoryProvider, store: Store) -> None:
    calendar = fresh_calendar(provider, "expired")
    put_event(provider, calendar, "a", plain_event("a", at(1), at(2)))
    sync = service(store, bind("room", calendar, connector_for(provider)))
    sync.sync_calendar("room")
    # The server no longer knows the cursor (as after its token store was
    # pruned): a well-formed but unknown sync token.
    with store.unit_of_work() as uow:
        state = uow.calendars.sync_state("room")
        assert state is not None and state.window is not None
        forged = ChangeSet(cursor="m1." + "0" * 22, objects={})
        uow.events.apply_changes("room", forged, state.window, NOW)
        uow.commit()
    put_event(provider, calendar, "b", plain_event("b", at(3), at(4)))

    report = sync.sync_calendar("room")

    assert report.outcome == "synced" and report.full
    assert cached(store, "room") == [("a", at(1), at(2)), ("b", at(3), at(4))]


class Crash(BaseException):
    """Stands for the process dying: not an ``Exception``, so nothing in
    the sync path may catch and record it."""


def test_a_crash_between_fetch_and_commit_skips_no_change(
    provider: MemoryProvider, store: Store
) -> None:
    calendar = fresh_calendar(provider, "crash")
    put_event(provider, calendar, "a", plain_event("a", at(1), at(2)))
    bindings = bind("room", calendar, connector_for(provider))
    service(store, bindings).sync_calendar("room")
    with store.reader() as uow:
        before = uow.calendars.sync_state("room")
    put_event(provider, calendar, "b", plain_event("b", at(3), at(4)))

    def crash(_key: str, _changes: ChangeSet) -> None:
        raise Crash

    with pytest.raises(Crash):
        service(store, bindings, on_fetched=crash).sync_calendar("room")
    with store.reader() as uow:
        after_crash = uow.calendars.sync_state("room")
    assert after_crash is not None and before is not None
    assert (after_crash.cursor, after_crash.version) == (before.cursor, before.version)
    assert cached(store, "room") == [("a", at(1), at(2))]

    report = service(store, bindings).sync_calendar("room")

    assert report.outcome == "synced"
    assert cached(store, "room") == [("a", at(1), at(2)), ("b", at(3), at(4))]


def test_a_calendar_whose_server_is_down_fails_alone(
    provider: MemoryProvider, store: Store
) -> None:
    good = fresh_calendar(provider, "good")
    put_event(provider, good, "a", plain_event("a", at(1), at(2)))
    unreachable = MemoryProvider()
    unreachable.reachable = False
    dead = MemoryConnector(unreachable)
    bindings = {
        **bind("down", "rooms/x/", dead),
        **bind("up", good, connector_for(provider)),
    }
    sync = service(store, bindings)

    reports = {key: sync.sync_calendar(key) for key in ("down", "up")}

    assert reports["down"].failed and reports["down"].error
    assert reports["up"].outcome == "synced"
    with store.reader() as uow:
        down = uow.calendars.sync_state("down")
    assert down is not None and down.failed and down.last_success_at is None
    assert down.last_error == reports["down"].error
    assert "\n" not in down.last_error


def test_a_calendar_leased_by_another_process_is_skipped(
    provider: MemoryProvider, store: Store
) -> None:
    calendar = fresh_calendar(provider, "leased")
    sync = service(store, bind("room", calendar, connector_for(provider)))
    with store.unit_of_work() as uow:
        assert uow.leases.try_acquire("sync:room", "other-process", timedelta(minutes=5), NOW)
        uow.commit()

    assert sync.sync_calendar("room").outcome == "skipped"

    with store.unit_of_work() as uow:
        uow.leases.release("sync:room", "other-process")
        uow.commit()
    assert sync.sync_calendar("room").outcome == "synced"


def test_the_window_rolls_forward_and_drops_what_left_it(
    provider: MemoryProvider, store: Store
) -> None:
    calendar = fresh_calendar(provider, "window")
    put_event(provider, calendar, "soon", plain_event("soon", at(24 * 3), at(24 * 3 + 1)))
    put_event(provider, calendar, "later", plain_event("later", at(24 * 20), at(24 * 20 + 1)))
    clock = Clock(NOW)
    window = SyncWindow(past=timedelta(days=1), future=timedelta(days=10))
    bindings = bind("room", calendar, connector_for(provider))
    sync = service(store, bindings, clock=clock, window=window)
    sync.sync_calendar("room")
    assert [uid for uid, _, _ in cached(store, "room")] == ["soon"]
    assert sync.sync_calendar("room").full is False  # same window: changes only

    clock.now = NOW + timedelta(days=15)
    report = sync.sync_calendar("room")

    assert report.full  # the window moved: listed anew
    assert [uid for uid, _, _ in cached(store, "room")] == ["later"]
    with store.reader() as uow:
        state = uow.calendars.sync_state("room")
    assert state is not None and state.window == window.at(clock.now)


def test_a_busy_cache_sees_what_another_process_committed(
    provider: MemoryProvider, store: Store
) -> None:
    calendar = fresh_calendar(provider, "versions")
    bindings = bind("room", calendar, connector_for(provider))
    ours, theirs = BusyCache(["room"]), BusyCache(["room"])
    ours.reload(store, ["room"])
    put_event(provider, calendar, "a", plain_event("a", at(1), at(2)))

    service(store, bindings, cache=theirs).sync_calendar("room")
    assert len(ours.snapshot().busy["room"]) == 0  # not yet refreshed
    ours.refresh(store)

    assert [Interval(s, e) for s, e in _spans(ours.snapshot().busy["room"])] == [
        Interval(at(1), at(2))
    ]


def _spans(timeline: BusyTimeline) -> list[tuple[datetime, datetime]]:
    pairs = zip(timeline.starts.tolist(), timeline.ends.tolist(), strict=True)
    return [(from_us(start), from_us(end)) for start, end in pairs]


class CountingStore:
    """The store, counting the write transactions opened through it."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.writes = 0

    def unit_of_work(self):  # type: ignore[no-untyped-def]
        self.writes += 1
        return self._store.unit_of_work()

    def reader(self):  # type: ignore[no-untyped-def]
        return self._store.reader()


def test_a_sync_without_notifications_writes_twice_not_three_times(
    provider: MemoryProvider, store: Store
) -> None:
    """Issue 24: on SQLite each write transaction is an fsync, and an
    incremental pass over 500 calendars was bound by them.  The lease is
    given up in the batch's own transaction: take lease, apply batch."""
    calendar = fresh_calendar(provider, "two-writes")
    put_event(provider, calendar, "a", plain_event("a", at(2), at(3)))
    counting = CountingStore(store)
    sync = service(counting, bind("room", calendar, connector_for(provider)))  # type: ignore[arg-type]
    sync.sync_calendar("room")
    counting.writes = 0

    assert sync.sync_calendar("room").outcome == "synced"

    assert counting.writes == 2
    with store.unit_of_work() as uow:  # the lease is free for anyone
        assert uow.leases.try_acquire("sync:room", "someone-else", timedelta(minutes=1), NOW)
