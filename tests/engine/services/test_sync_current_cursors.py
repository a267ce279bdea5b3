"""A pass over many calendars asks each account once which cursors are still
current (``SyncService.current_cursors``), then asks only the others for
their changes: against the in-memory provider, which counts the requests
that reached it, and a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.memory import MemoryConnector, MemoryProvider
from connectors.memory.faults import Fault, FaultKind, Operation
from engine.core.model import Interval
from engine.ports import CalendarRef
from engine.services.sync import CalendarBinding, SyncService, SyncWindow
from engine.store import Store
from tests.engine.services.memory_calendars import fresh_calendar, plain_event, put_event
from tests.engine.services.test_sync import Clock

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
WINDOW = SyncWindow(past=timedelta(days=1), future=timedelta(days=30))
KEYS = ("room-a", "room-b", "room-c")


def at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def synced_rooms(provider: MemoryProvider, store: Store, clock: Clock | None = None
                 ) -> tuple[SyncService, dict[str, str]]:
    """Three rooms of one account, each with one event, synced once."""
    clock = clock or Clock(NOW)
    connector = MemoryConnector(provider)
    calendars = {key: fresh_calendar(provider, key) for key in KEYS}
    bindings = {key: CalendarBinding(key, CalendarRef(calendar, "Europe/Berlin"), connector)
                for key, calendar in calendars.items()}
    for n, calendar in enumerate(calendars.values()):
        put_event(provider, calendar, "e", plain_event("e", at(n + 1), at(n + 2)))
    sync = SyncService(store, bindings, window=WINDOW, clock=clock)
    assert all(sync.sync_calendar(key).full for key in KEYS)
    return sync, calendars


def cursor_of(store: Store, key: str) -> str | None:
    with store.reader() as uow:
        state = uow.calendars.sync_state(key)
    return None if state is None else state.cursor


def cached_starts(store: Store, key: str) -> list[datetime]:
    with store.reader() as uow:
        events = uow.events.in_window(key, Interval(at(-48), at(24 * 60)))
    return sorted(event.start for event in events)


def test_a_pass_asks_changes_only_of_the_calendar_that_changed(
    provider: MemoryProvider, store: Store
) -> None:
    sync, calendars = synced_rooms(provider, store)
    put_event(provider, calendars["room-b"], "e", plain_event("e", at(7), at(8)))
    before = provider.admitted()

    current = sync.current_cursors(KEYS)
    reports = {key: sync.sync_calendar(key, current=current.get(key)) for key in KEYS}

    asked = provider.admitted() - before
    assert current == {key: cursor_of(store, key) for key in ("room-a", "room-c")}
    assert asked == {Operation.CURSOR_CHECK: 1, Operation.CHANGES: 1}
    assert [reports[key].changed for key in KEYS] == [0, 1, 0]
    assert all(report.outcome == "synced" for report in reports.values())
    assert cached_starts(store, "room-b") == [at(7)]


def test_a_cursor_the_store_moved_on_since_the_check_is_asked_again(
    provider: MemoryProvider, store: Store
) -> None:
    sync, calendars = synced_rooms(provider, store)
    current = sync.current_cursors(KEYS)
    # Another process synced room-a after the check, past a change.
    put_event(provider, calendars["room-a"], "e", plain_event("e", at(9), at(10)))
    assert sync.sync_calendar("room-a").changed == 1
    put_event(provider, calendars["room-a"], "e", plain_event("e", at(11), at(12)))

    report = sync.sync_calendar("room-a", current=current["room-a"])

    assert report.changed == 1
    assert cached_starts(store, "room-a") == [at(11)]


def test_a_notification_after_the_check_is_not_skipped(
    provider: MemoryProvider, store: Store
) -> None:
    sync, calendars = synced_rooms(provider, store)
    current = sync.current_cursors(KEYS)
    put_event(provider, calendars["room-c"], "e", plain_event("e", at(13), at(14)))
    with store.unit_of_work() as uow:
        uow.sync_requests.request("room-c", NOW)
        uow.commit()

    report = sync.sync_calendar("room-c", current=current["room-c"])

    assert report.changed == 1
    assert cached_starts(store, "room-c") == [at(13)]
    with store.reader() as uow:
        assert not uow.sync_requests.is_outstanding("room-c")


def test_a_moved_window_is_never_found_current(provider: MemoryProvider, store: Store) -> None:
    clock = Clock(NOW)
    sync, _ = synced_rooms(provider, store, clock)
    clock.now = NOW + timedelta(days=1)  # the window rolled forward

    assert sync.current_cursors(KEYS) == {}
    assert all(sync.sync_calendar(key).full for key in KEYS)


def test_a_failed_check_leaves_every_calendar_to_be_asked(
    provider: MemoryProvider, store: Store
) -> None:
    sync, calendars = synced_rooms(provider, store)
    put_event(provider, calendars["room-a"], "e", plain_event("e", at(15), at(16)))
    provider.inject(Fault(kind=FaultKind.UNAVAILABLE, times=2,
                          operations=frozenset({Operation.CURSOR_CHECK})))

    current = sync.current_cursors(KEYS)
    reports = [sync.sync_calendar(key, current=current.get(key)) for key in KEYS]

    assert current == {}
    assert [report.changed for report in reports] == [1, 0, 0]
