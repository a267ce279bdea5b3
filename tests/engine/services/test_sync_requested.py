"""The "sync requested" mark: a push notification raises it, the sync of
whichever process holds or takes the calendar's lease clears it, and a
notification is never lost because another process holds the lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.memory import Fault, FaultKind, MemoryConnector, MemoryProvider
from engine.core.model import ChangeSet
from engine.ports import CalendarRef
from engine.services.sync import CalendarBinding, SyncService, SyncWindow
from engine.store import Store
from tests.engine.services.memory_calendars import fresh_calendar, plain_event, put_event

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
WINDOW = SyncWindow(past=timedelta(days=1), future=timedelta(days=30))


def at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def sync_service(store: Store, provider: MemoryProvider, calendar_id: str,
                 **options: object) -> SyncService:
    binding = CalendarBinding("room", CalendarRef(calendar_id, "UTC"), MemoryConnector(provider))
    return SyncService(store, {"room": binding}, window=WINDOW, clock=lambda: NOW,
                       **options)  # type: ignore[arg-type]


def mark(store: Store, key: str = "room") -> None:
    with store.unit_of_work() as uow:
        uow.sync_requests.request(key, NOW)
        uow.commit()


def outstanding(store: Store) -> list[str]:
    with store.reader() as uow:
        return uow.sync_requests.outstanding()


def cached_uids(store: Store) -> set[str]:
    with store.reader() as uow:
        return {event.uid for event in uow.events.in_window("room", WINDOW.at(NOW))}


def test_marked_calendar_is_synced_and_the_mark_cleared(
    provider: MemoryProvider, store: Store
) -> None:
    calendar = fresh_calendar(provider, "marked")
    sync = sync_service(store, provider, calendar)
    sync.sync_calendar("room")
    put_event(provider, calendar, "pushed", plain_event("pushed", at(2), at(3)))

    assert sync.sync_requested() == []  # nothing marked: nothing runs
    mark(store)
    reports = sync.sync_requested()

    assert [report.outcome for report in reports] == ["synced"]
    assert cached_uids(store) == {"pushed"}
    assert outstanding(store) == []


def test_request_while_another_process_holds_the_lease_is_not_lost(
    provider: MemoryProvider, store: Store
) -> None:
    """Regression: a sync of a leased calendar used to be skipped, and the
    notification that asked for it forgotten."""
    calendar = fresh_calendar(provider, "leased")
    sync = sync_service(store, provider, calendar)
    sync.sync_calendar("room")
    with store.unit_of_work() as other:  # another process's store session
        assert other.leases.try_acquire("sync:room", "other-process", timedelta(minutes=2), NOW)
        other.commit()
    put_event(provider, calendar, "pushed", plain_event("pushed", at(2), at(3)))
    mark(store)

    assert [report.outcome for report in sync.sync_requested()] == ["skipped"]
    assert outstanding(store) == ["room"]  # kept for whoever gets the lease

    with store.unit_of_work() as other:
        other.leases.release("sync:room", "other-process")
        other.commit()
    assert [report.outcome for report in sync.sync_requested()] == ["synced"]
    assert cached_uids(store) == {"pushed"}
    assert outstanding(store) == []


def test_request_during_a_fetch_gets_another_round_under_the_same_lease(
    provider: MemoryProvider, store: Store
) -> None:
    calendar = fresh_calendar(provider, "racing")
    fetched: list[bool] = []

    def during_fetch(key: str, changes: ChangeSet) -> None:
        fetched.append(changes.full)
        if len(fetched) == 1:  # a change and its notification land mid-sync
            put_event(provider, calendar, "late", plain_event("late", at(4), at(5)))
            mark(store)

    sync = sync_service(store, provider, calendar, on_fetched=during_fetch)
    mark(store)
    report = sync.sync_calendar("room")

    assert report.outcome == "synced"
    assert fetched == [True, False]  # the listing, then the changes since it
    assert cached_uids(store) == {"late"}
    assert outstanding(store) == []


def test_failed_sync_keeps_the_mark_and_waits_before_retrying(
    provider: MemoryProvider, store: Store
) -> None:
    calendar = fresh_calendar(provider, "failing")
    now = [NOW]
    binding = CalendarBinding("room", CalendarRef(calendar, "UTC"), MemoryConnector(provider))
    sync = SyncService(store, {"room": binding}, window=WINDOW, clock=lambda: now[0])
    provider.reachable = False
    mark(store)

    assert [report.outcome for report in sync.sync_requested()] == ["failed"]
    assert outstanding(store) == ["room"]
    assert sync.sync_requested() == []  # too soon after the failure
    provider.reachable = True
    now[0] = NOW + timedelta(seconds=31)
    assert [report.outcome for report in sync.sync_requested()] == ["synced"]
    assert outstanding(store) == []


def test_a_throttled_sync_is_retried_after_the_providers_retry_after(
    provider: MemoryProvider, store: Store
) -> None:
    """Not :data:`RETRY_FAILED_AFTER` but what the provider asked: sooner
    for a short Retry-After, later for a long one; the failure says so."""
    calendar = fresh_calendar(provider, "throttled")
    now = [NOW]
    binding = CalendarBinding("room", CalendarRef(calendar, "UTC"), MemoryConnector(provider))
    sync = SyncService(store, {"room": binding}, window=WINDOW, clock=lambda: now[0])
    for retry_after, too_soon in ((12, 11), (45, 31)):
        provider.inject(Fault(kind=FaultKind.THROTTLED, retry_after=retry_after))
        mark(store)
        now[0] += timedelta(minutes=5)
        (failed,) = sync.sync_requested()
        assert failed.outcome == "failed" and failed.error_kind == "RateLimited"
        assert failed.error.startswith(
            f"throttled by the provider (Retry-After {retry_after} s), retrying by itself: ")
        with store.reader() as uow:
            state = uow.calendars.sync_state("room")
        assert state is not None and state.last_error == failed.error
        started = now[0]
        now[0] = started + timedelta(seconds=too_soon)
        assert sync.sync_requested() == []
        now[0] = started + timedelta(seconds=retry_after)
        assert [report.outcome for report in sync.sync_requested()] == ["synced"]
        assert outstanding(store) == []
