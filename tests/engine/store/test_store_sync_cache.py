"""The sync cache: applying change sets, sync state, busy intervals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from engine.core.model import ChangeSet, Interval, RemoteEvent
from engine.store import Store
from engine.store.errors import DuplicateInstance
from tests.engine.store.samples import WINDOW, at, changes, event


def apply(store: Store, calendar: str, change_set: ChangeSet, synced: float = 0) -> int:
    with store.unit_of_work() as uow:
        version = uow.events.apply_changes(calendar, change_set, WINDOW, at(synced))
        uow.commit()
    return version


def cached(store: Store, calendar: str) -> list[RemoteEvent]:
    with store.reader() as uow:
        return uow.events.in_window(calendar, WINDOW)


def test_first_batch_stores_events_cursor_window_and_success(store: Store) -> None:
    version = apply(store, "alice", changes("c1", event("a", 1, 2), event("b", 3, 4)), synced=0.5)

    with store.reader() as uow:
        state = uow.calendars.sync_state("alice")
    assert state is not None
    assert (state.cursor, state.window, state.version) == ("c1", WINDOW, version)
    assert state.last_success_at == at(0.5)
    assert state.last_attempt_at == at(0.5)
    assert not state.failed
    assert [e.source for e in cached(store, "alice")] == ["a", "b"]
    assert cached(store, "alice")[0] == event("a", 1, 2)


def test_incremental_batch_replaces_only_the_listed_sources(store: Store) -> None:
    apply(store, "alice", changes("c1", event("a", 1, 2), event("b", 3, 4), event("c", 5, 6)))
    apply(store, "alice", changes("c2", event("a", 7, 8), gone=("b",)))

    assert [(e.source, e.start) for e in cached(store, "alice")] == [("c", at(5)), ("a", at(7))]


def test_recurring_source_replaces_all_its_instances(store: Store) -> None:
    series = [event("weekly", 24 * day, 24 * day + 1, instance=f"i{day}") for day in range(3)]
    apply(store, "alice", changes("c1", *series))
    apply(store, "alice", changes("c2", event("weekly", 49, 50, instance="i2")))

    assert [(e.instance, e.start) for e in cached(store, "alice")] == [("i2", at(49))]


def test_full_batch_forgets_every_unlisted_source(store: Store) -> None:
    apply(store, "alice", changes("c1", event("a", 1, 2), event("b", 3, 4)))
    apply(store, "alice", changes("c2", event("z", 9, 10), full=True))

    assert [e.source for e in cached(store, "alice")] == ["z"]


def test_batches_of_one_calendar_leave_other_calendars_alone(store: Store) -> None:
    apply(store, "alice", changes("c1", event("a", 1, 2)))
    apply(store, "room-a", changes("r1", event("a", 1, 2)))
    apply(store, "alice", changes("c2", full=True))

    assert cached(store, "alice") == []
    assert [e.source for e in cached(store, "room-a")] == ["a"]


def test_each_batch_that_changes_events_moves_the_version(store: Store) -> None:
    first = apply(store, "alice", changes("c1", event("a", 1, 2)))
    second = apply(store, "alice", changes("c2", event("b", 3, 4)))
    with store.reader() as uow:
        versions = uow.calendars.versions(["alice", "nobody"])
    assert second == first + 1
    assert versions == {"alice": second}


def test_an_empty_incremental_batch_keeps_the_version_but_records_the_sync(store: Store) -> None:
    """Regression: every poll moved the version, so every other process
    reloaded every calendar's busy time after each pass that changed nothing."""
    first = apply(store, "alice", changes("c1", event("a", 1, 2)))
    with store.unit_of_work() as uow:
        second = uow.events.apply_changes("alice", changes("c2"), WINDOW, at(7))
        uow.commit()
    with store.reader() as uow:
        state = uow.calendars.sync_state("alice")
    assert second == first
    assert state is not None and (state.cursor, state.last_success_at) == ("c2", at(7))


def test_unchanged_calendars_are_recorded_in_one_batch_only_while_their_row_is_as_checked(
    store: Store
) -> None:
    first = {key: apply(store, key, changes(f"{key}-c1", event("a", 1, 2)))
             for key in ("alice", "bob", "carol", "dave")}
    apply(store, "bob", changes("bob-c2"), synced=3)  # moved on since the check
    with store.unit_of_work() as uow:
        uow.calendars.record_failure("carol", at(4), "HTTP 503 from the provider")
        uow.commit()
    elsewhere = Interval(WINDOW.start + timedelta(days=1), WINDOW.end + timedelta(days=1))

    with store.unit_of_work() as uow:
        recorded = uow.calendars.record_unchanged(
            {key: f"{key}-c1" for key in ("alice", "bob", "carol")}, WINDOW, at(5))
        other_window = uow.calendars.record_unchanged({"dave": "dave-c1"}, elsewhere, at(5))
        uow.commit()

    # The heal of carol's error moves its version (other processes reload it).
    assert recorded == {"alice": first["alice"], "carol": first["carol"] + 1}
    assert other_window == {}
    with store.reader() as uow:
        states = {key: uow.calendars.sync_state(key) for key in first}
    stamps = {key: (state.cursor, state.last_success_at, state.failed)
              for key, state in states.items() if state is not None}
    assert stamps == {
        "alice": ("alice-c1", at(5), False),
        "bob": ("bob-c2", at(3), False),
        "carol": ("carol-c1", at(5), False),
        "dave": ("dave-c1", at(0), False),
    }
    assert [e.source for e in cached(store, "alice")] == ["a"]


def test_failure_inside_a_batch_leaves_cursor_and_events_as_before(store: Store) -> None:
    """Invariant 2: a crash can repeat a sync, never skip a change.  The last
    event ends before it starts, which the database refuses mid-batch."""
    apply(store, "alice", changes("c1", event("a", 1, 2), event("b", 3, 4)))
    before_events = cached(store, "alice")
    with store.reader() as uow:
        before_state = uow.calendars.sync_state("alice")

    broken = RemoteEvent(source="d", uid="d", start=at(9), end=at(8))
    with pytest.raises(IntegrityError), store.unit_of_work() as uow:
        uow.events.apply_changes(
            "alice", changes("c2", event("a", 5, 6), event("c", 7, 8), broken), WINDOW, at(1)
        )
        uow.commit()

    assert cached(store, "alice") == before_events
    with store.reader() as uow:
        assert uow.calendars.sync_state("alice") == before_state


def test_a_batch_not_committed_is_not_applied(store: Store) -> None:
    apply(store, "alice", changes("c1", event("a", 1, 2)))
    with pytest.raises(RuntimeError), store.unit_of_work() as uow:
        uow.events.apply_changes("alice", changes("c2", full=True), WINDOW, at(1))
        raise RuntimeError("the in-memory update failed before commit")

    with store.reader() as uow:
        state = uow.calendars.sync_state("alice")
    assert state is not None and state.cursor == "c1"
    assert [e.source for e in cached(store, "alice")] == ["a"]


def test_other_readers_see_a_batch_only_once_committed(store: Store) -> None:
    apply(store, "alice", changes("c1", event("a", 1, 2)))
    with store.unit_of_work() as writer:
        writer.events.apply_changes("alice", changes("c2", full=True), WINDOW, at(1))
        assert [e.source for e in cached(store, "alice")] == ["a"]
        writer.commit()
    assert cached(store, "alice") == []


def test_event_listed_under_another_source_is_refused_before_writing(store: Store) -> None:
    wrong = ChangeSet(cursor="c1", objects={"a": (event("b", 1, 2),)})
    with store.unit_of_work() as uow:
        with pytest.raises(ValueError, match="listed under source"):
            uow.events.apply_changes("alice", wrong, WINDOW, at(0))
        assert uow.events.in_window("alice", WINDOW) == []


def test_repeated_instance_key_in_one_batch_is_refused_before_writing(store: Store) -> None:
    """Issue 21: a THISANDFUTURE override once gave every later instance the
    override's key and the store kept one row of many; a repeated key is now
    an error, never a silent overwrite."""
    apply(store, "alice", changes("c1", event("b", 1, 2)))
    batch = ChangeSet(cursor="c2", objects={"a": (event("a", 1, 2), event("a", 3, 4))})
    with store.unit_of_work() as uow:
        with pytest.raises(DuplicateInstance) as caught:
            uow.events.apply_changes("alice", batch, WINDOW, at(1))
        assert (caught.value.source, caught.value.instance) == ("a", "")
        assert [e.source for e in uow.events.in_window("alice", WINDOW)] == ["b"]


def test_failure_is_recorded_without_touching_cursor_or_events(store: Store) -> None:
    apply(store, "alice", changes("c1", event("a", 1, 2)))
    with store.unit_of_work() as uow:
        uow.calendars.record_failure("alice", at(2), "HTTP 503 from the provider")
        uow.commit()
    with store.reader() as uow:
        state = uow.calendars.sync_state("alice")
    assert state is not None
    assert (state.cursor, state.last_error, state.failed) == (
        "c1",
        "HTTP 503 from the provider",
        True,
    )
    assert state.last_success_at == at(0) and state.last_attempt_at == at(2)

    apply(store, "alice", changes("c2"), synced=3)
    with store.reader() as uow:
        healed = uow.calendars.sync_state("alice")
    assert healed is not None and not healed.failed and healed.last_error is None


def test_never_synced_calendar_has_state_without_success(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.calendars.record_attempt("room-b", at(0))
        uow.commit()
    with store.reader() as uow:
        states = uow.calendars.sync_states()
    assert [(s.calendar, s.last_success_at, s.last_attempt_at) for s in states] == [
        ("room-b", None, at(0))
    ]


def test_reset_cursor_forces_a_full_sync(store: Store) -> None:
    apply(store, "alice", changes("c1", event("a", 1, 2)))
    with store.unit_of_work() as uow:
        uow.calendars.reset_cursor("alice")
        uow.commit()
    with store.reader() as uow:
        state = uow.calendars.sync_state("alice")
    assert state is not None and state.cursor is None


def test_busy_intervals_skip_free_and_own_events_and_clip_to_window(store: Store) -> None:
    apply(
        store,
        "alice",
        changes(
            "c1",
            event("early", -30, -25),
            event("busy", 3, 4),
            event("free", 5, 6, busy=False),
            event("ours", 7, 8, booking_id="bk-1"),
            event("first", 1, 2),
        ),
    )
    window = Interval(at(0), at(10))
    with store.reader() as uow:
        busy = uow.events.busy_intervals(["alice", "room-a"], window)
        with_own = uow.events.busy_intervals(["alice"], window, include_own=True)
    assert busy == {
        "alice": [Interval(at(1), at(2)), Interval(at(3), at(4))],
        "room-a": [],
    }
    assert Interval(at(7), at(8)) in with_own["alice"]


def test_window_query_takes_events_that_overlap_its_edges(store: Store) -> None:
    apply(
        store,
        "alice",
        changes(
            "c1",
            event("before", 0, 1),
            event("edge", 0, 2),
            event("inside", 3, 4),
            event("after", 6, 7),
        ),
    )
    with store.reader() as uow:
        found = uow.events.in_window("alice", Interval(at(1), at(6)))
    assert [e.source for e in found] == ["edge", "inside"]


def test_instants_round_trip_exactly_in_utc(store: Store) -> None:
    berlin = timezone(timedelta(hours=1))
    start = datetime(2027, 3, 1, 10, 15, 30, 123456, tzinfo=berlin)
    original = RemoteEvent(source="s", uid="u", start=start, end=start + timedelta(minutes=45))
    apply(store, "alice", changes("c1", original))

    (stored,) = cached(store, "alice")
    assert stored.start == datetime(2027, 3, 1, 9, 15, 30, 123456, tzinfo=UTC)
    assert stored.start.utcoffset() == timedelta(0)
    assert stored == original


def test_drop_outside_forgets_events_that_left_the_window(store: Store) -> None:
    apply(
        store,
        "alice",
        changes("c1", event("old", -20, -19), event("now", 1, 2), event("far", 50, 51)),
    )
    with store.unit_of_work() as uow:
        dropped = uow.events.drop_outside("alice", Interval(at(0), at(48)))
        uow.commit()
        assert uow.events.count("alice") == 1
    assert dropped == 2


def test_removing_a_calendar_removes_its_cache(store: Store) -> None:
    apply(store, "alice", changes("c1", event("a", 1, 2)))
    with store.unit_of_work() as uow:
        assert uow.calendars.remove("alice")
        uow.commit()
    with store.reader() as uow:
        assert uow.events.count("alice") == 0
        assert uow.calendars.keys() == []


def test_a_reader_sees_one_snapshot_while_others_commit(store: Store) -> None:
    apply(store, "alice", changes("c1", event("a", 1, 2)))
    with store.reader() as reader:
        first = reader.events.in_window("alice", WINDOW)
        apply(store, "alice", changes("c2", event("b", 3, 4)))
        assert reader.events.in_window("alice", WINDOW) == first
        assert reader.calendars.versions(["alice"]) == {"alice": 1}
    assert len(cached(store, "alice")) == 2
