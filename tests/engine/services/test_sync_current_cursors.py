"""A pass over many calendars asks each account once which calendars changed
(``SyncService.confirm_unchanged``), records the others in one transaction
and leaves only the changed ones to sync: against the in-memory provider,
which counts the requests that reached it, and a real SQLite store."""

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
    cursors = {key: cursor_of(store, key) for key in KEYS}
    before = provider.admitted()

    unchanged, left = sync.confirm_unchanged(KEYS)
    changed = [sync.sync_calendar(key) for key in left]

    assert provider.admitted() - before == {Operation.CURSOR_CHECK: 1, Operation.CHANGES: 1}
    assert [report.calendar for report in unchanged] == ["room-a", "room-c"]
    assert all((r.outcome, r.full, r.changed) == ("synced", False, 0) for r in unchanged)
    assert left == ["room-b"] and changed[0].changed == 1
    assert cached_starts(store, "room-b") == [at(7)]
    assert {key: cursor_of(store, key) for key in ("room-a", "room-c")} == {
        key: cursors[key] for key in ("room-a", "room-c")}


def test_a_confirmed_calendar_records_its_success_and_heals_its_error(
    provider: MemoryProvider, store: Store
) -> None:
    clock = Clock(NOW)
    sync, _ = synced_rooms(provider, store, clock)
    with store.unit_of_work() as uow:
        uow.calendars.record_failure("room-a", NOW, "HTTP 503 from the provider")
        uow.commit()
    clock.now = NOW + timedelta(minutes=5)

    unchanged, left = sync.confirm_unchanged(KEYS)

    assert left == [] and len(unchanged) == 3
    with store.reader() as uow:
        states = [uow.calendars.sync_state(key) for key in KEYS]
    assert all(s is not None and s.last_success_at == clock.now and not s.failed
               for s in states)


def test_a_calendar_with_a_notification_waiting_is_left_to_sync(
    provider: MemoryProvider, store: Store
) -> None:
    sync, _ = synced_rooms(provider, store)
    with store.unit_of_work() as uow:
        uow.sync_requests.request("room-c", NOW)
        uow.commit()

    unchanged, left = sync.confirm_unchanged(KEYS)

    assert [report.calendar for report in unchanged] == ["room-a", "room-b"]
    assert left == ["room-c"]


def test_a_moved_window_is_never_confirmed(provider: MemoryProvider, store: Store) -> None:
    clock = Clock(NOW)
    sync, _ = synced_rooms(provider, store, clock)
    clock.now = NOW + timedelta(days=1)  # the window rolled forward
    before = provider.admitted()

    unchanged, left = sync.confirm_unchanged(KEYS)

    assert (unchanged, left) == ([], list(KEYS))
    assert provider.admitted() - before == {}  # nothing worth asking
    assert all(sync.sync_calendar(key).full for key in left)


def test_a_failed_check_leaves_every_calendar_to_sync(
    provider: MemoryProvider, store: Store
) -> None:
    sync, calendars = synced_rooms(provider, store)
    put_event(provider, calendars["room-a"], "e", plain_event("e", at(15), at(16)))
    provider.inject(Fault(kind=FaultKind.UNAVAILABLE, times=2,
                          operations=frozenset({Operation.CURSOR_CHECK})))

    unchanged, left = sync.confirm_unchanged(KEYS)
    reports = [sync.sync_calendar(key) for key in left]

    assert (unchanged, left) == ([], list(KEYS))
    assert [report.changed for report in reports] == [1, 0, 0]
