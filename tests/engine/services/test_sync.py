"""The sync service against a real Radicale and a real SQLite store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from connectors.caldav import CalDAVAccount, CalDAVConnector, RetryPolicy
from engine.core.busy import BusyTimeline
from engine.core.model import ChangeSet, Interval
from engine.core.zones import from_us
from engine.ports import CalendarRef
from engine.services.availability import BusyCache
from engine.services.sync import CalendarBinding, SyncService, SyncWindow
from engine.store import Store
from tests.engine.services.conftest import delete_event, event_ics, fresh_calendar, put_event
from tests.support.caldav_servers import Server, free_port

FAST = RetryPolicy(attempts=1, initial_wait=0.01, max_wait=0.05)
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
WINDOW = SyncWindow(past=timedelta(days=1), future=timedelta(days=30))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def connector_for(server: Server) -> CalDAVConnector:
    return CalDAVConnector(CalDAVAccount(url=server.home, retry=FAST, timeout=5))


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


def bind(key: str, calendar_id: str, connector: CalDAVConnector) -> dict[str, CalendarBinding]:
    return {key: CalendarBinding(key, CalendarRef(calendar_id, "Europe/Berlin"), connector)}


def cached(store: Store, key: str) -> list[tuple[str, datetime, datetime]]:
    with store.reader() as uow:
        everything = Interval(NOW - timedelta(days=400), NOW + timedelta(days=400))
        events = uow.events.in_window(key, everything)
    return sorted((event.uid, event.start, event.end) for event in events)


def at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def test_first_sync_fills_the_store_and_the_busy_cache(radicale: Server, store: Store) -> None:
    calendar = fresh_calendar(radicale, "first")
    put_event(radicale, calendar, "a", event_ics("a", at(2), at(3)))
    put_event(radicale, calendar, "b", event_ics("b", at(26), at(27), extra="TRANSP:TRANSPARENT"))
    cache = BusyCache(["room"])
    sync = service(store, bind("room", calendar, connector_for(radicale)), cache=cache)

    report = sync.sync_calendar("room")

    assert (report.outcome, report.full, report.changed) == ("synced", True, 2)
    assert cached(store, "room") == [("a", at(2), at(3)), ("b", at(26), at(27))]
    timeline = cache.snapshot().busy["room"]
    assert [Interval(s, e) for s, e in _spans(timeline)] == [Interval(at(2), at(3))]
    with store.reader() as uow:
        state = uow.calendars.sync_state("room")
    assert state is not None and state.last_success_at == NOW and state.cursor


def test_incremental_sync_reports_exactly_the_server_edits(radicale: Server, store: Store) -> None:
    calendar = fresh_calendar(radicale, "incremental")
    for name, hour in (("keep", 1), ("move", 5), ("gone", 9)):
        put_event(radicale, calendar, name, event_ics(name, at(hour), at(hour + 1)))
    sync = service(store, bind("alice", calendar, connector_for(radicale)))
    assert sync.sync_calendar("alice").full

    put_event(radicale, calendar, "move", event_ics("move", at(6), at(8)))
    delete_event(radicale, calendar, "gone")
    put_event(radicale, calendar, "new", event_ics("new", at(30), at(31)))
    report = sync.sync_calendar("alice")

    assert (report.full, report.changed, report.removed) == (False, 2, 1)
    assert cached(store, "alice") == [
        ("keep", at(1), at(2)),
        ("move", at(6), at(8)),
        ("new", at(30), at(31)),
    ]


def test_an_expired_cursor_leads_to_a_full_listing(radicale: Server, store: Store) -> None:
    calendar = fresh_calendar(radicale, "expired")
    put_event(radicale, calendar, "a", event_ics("a", at(1), at(2)))
    sync = service(store, bind("room", calendar, connector_for(radicale)))
    sync.sync_calendar("room")
    # The server no longer knows the cursor (as after its token store was
    # pruned): a well-formed but unknown sync token.
    with store.unit_of_work() as uow:
        state = uow.calendars.sync_state("room")
        assert state is not None and state.window is not None
        forged = ChangeSet(cursor="http://radicale.org/ns/sync/" + "0" * 64, objects={})
        uow.events.apply_changes("room", forged, state.window, NOW)
        uow.commit()
    put_event(radicale, calendar, "b", event_ics("b", at(3), at(4)))

    report = sync.sync_calendar("room")

    assert report.outcome == "synced" and report.full
    assert cached(store, "room") == [("a", at(1), at(2)), ("b", at(3), at(4))]


class Crash(BaseException):
    """Stands for the process dying: not an ``Exception``, so nothing in
    the sync path may catch and record it."""


def test_a_crash_between_fetch_and_commit_skips_no_change(radicale: Server, store: Store) -> None:
    calendar = fresh_calendar(radicale, "crash")
    put_event(radicale, calendar, "a", event_ics("a", at(1), at(2)))
    bindings = bind("room", calendar, connector_for(radicale))
    service(store, bindings).sync_calendar("room")
    with store.reader() as uow:
        before = uow.calendars.sync_state("room")
    put_event(radicale, calendar, "b", event_ics("b", at(3), at(4)))

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


def test_a_calendar_whose_server_is_down_fails_alone(radicale: Server, store: Store) -> None:
    good = fresh_calendar(radicale, "good")
    put_event(radicale, good, "a", event_ics("a", at(1), at(2)))
    dead = CalDAVConnector(
        CalDAVAccount(url=f"http://127.0.0.1:{free_port()}/", retry=FAST, timeout=2)
    )
    bindings = {
        **bind("down", "rooms/x/", dead),
        **bind("up", good, connector_for(radicale)),
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


def test_a_calendar_leased_by_another_process_is_skipped(radicale: Server, store: Store) -> None:
    calendar = fresh_calendar(radicale, "leased")
    sync = service(store, bind("room", calendar, connector_for(radicale)))
    with store.unit_of_work() as uow:
        assert uow.leases.try_acquire("room", "other-process", timedelta(minutes=5), NOW)
        uow.commit()

    assert sync.sync_calendar("room").outcome == "skipped"

    with store.unit_of_work() as uow:
        uow.leases.release("room", "other-process")
        uow.commit()
    assert sync.sync_calendar("room").outcome == "synced"


def test_the_window_rolls_forward_and_drops_what_left_it(radicale: Server, store: Store) -> None:
    calendar = fresh_calendar(radicale, "window")
    put_event(radicale, calendar, "soon", event_ics("soon", at(24 * 3), at(24 * 3 + 1)))
    put_event(radicale, calendar, "later", event_ics("later", at(24 * 20), at(24 * 20 + 1)))
    clock = Clock(NOW)
    window = SyncWindow(past=timedelta(days=1), future=timedelta(days=10))
    bindings = bind("room", calendar, connector_for(radicale))
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


def test_a_busy_cache_sees_what_another_process_committed(radicale: Server, store: Store) -> None:
    calendar = fresh_calendar(radicale, "versions")
    bindings = bind("room", calendar, connector_for(radicale))
    ours, theirs = BusyCache(["room"]), BusyCache(["room"])
    ours.reload(store, ["room"])
    put_event(radicale, calendar, "a", event_ics("a", at(1), at(2)))

    service(store, bindings, cache=theirs).sync_calendar("room")
    assert len(ours.snapshot().busy["room"]) == 0  # not yet refreshed
    ours.refresh(store)

    assert [Interval(s, e) for s, e in _spans(ours.snapshot().busy["room"])] == [
        Interval(at(1), at(2))
    ]


def _spans(timeline: BusyTimeline) -> list[tuple[datetime, datetime]]:
    pairs = zip(timeline.starts.tolist(), timeline.ends.tolist(), strict=True)
    return [(from_us(start), from_us(end)) for start, end in pairs]


def test_unreadable_objects_are_counted_in_the_report(radicale: Server, store: Store) -> None:
    """Issue 21: a sync that skipped objects said "0 changed" and nothing else."""
    calendar = fresh_calendar(radicale, "unreadable")
    put_event(radicale, calendar, "good", event_ics("good", at(2), at(3)))
    unknown_zone = (  # a globally unique TZID without VTIMEZONE whose tail is no IANA name
        event_ics("bad", at(4), at(5))
        .replace("DTSTART:", "DTSTART;TZID=/vendor/Not/A_Zone:")
        .replace("DTEND:", "DTEND;TZID=/vendor/Not/A_Zone:")
        .replace("Z\r\n", "\r\n")
    )
    put_event(radicale, calendar, "bad", unknown_zone)
    sync = service(store, bind("room", calendar, connector_for(radicale)))

    report = sync.sync_calendar("room")

    assert (report.changed, report.removed, report.unreadable) == (1, 0, 1)
    assert "bad.ics: " in report.last_unreadable and "A_Zone" in report.last_unreadable
    assert cached(store, "room") == [("good", at(2), at(3))]
