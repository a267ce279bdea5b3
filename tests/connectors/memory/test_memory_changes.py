"""The change log behind the memory connector's cursors, checked as a state
machine (after vdirsyncer's): whatever the provider side does between two
calls, a cache that applies every change set equals a fresh listing; a
cursor stays valid until the provider forgets it, then CursorExpired."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from connectors.memory import MemoryConnector, MemoryEvent, Occurrence
from engine.core.model import ChangeSet, RemoteEvent
from engine.errors import CursorExpired
from tests.connectors.memory.memory_fixtures import CAL, WINDOW, at, booking, connected

IDS = st.sampled_from([f"obj-{i}" for i in range(6)])
# Days 0..40 of March-April: some fall outside the window (March).
DAYS = st.integers(min_value=0, max_value=40)


def event_on(uid: str, day_offset: int, occurrences: int) -> MemoryEvent:
    start = at(1, 9) + timedelta(days=day_offset)
    if occurrences <= 1:
        return MemoryEvent(uid=uid, start=start, end=start + timedelta(hours=1))
    starts = [start + timedelta(days=7 * i) for i in range(occurrences)]
    return MemoryEvent(
        uid=uid,
        start=start,
        end=start + timedelta(hours=1),
        occurrences=tuple(
            Occurrence(original_start=s, start=s, end=s + timedelta(hours=1)) for s in starts
        ),
    )


Cache = dict[str, tuple[RemoteEvent, ...]]


def apply(cache: Cache, changes: ChangeSet) -> Cache:
    updated = {} if changes.full else dict(cache)
    updated.update(changes.objects)
    return {source: events for source, events in updated.items() if events}


class ChangeLog(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.provider, self.connector = connected()
        listing = self.connector.list_window(CAL, WINDOW)
        self.cursor = listing.cursor
        self.cache: Cache = apply({}, listing)
        self.expired = False

    @rule(object_id=IDS, day=DAYS, occurrences=st.integers(1, 4))
    def put(self, object_id: str, day: int, occurrences: int) -> None:
        self.provider.put(CAL.id, object_id, event_on(object_id, day, occurrences))

    @rule(object_id=IDS)
    def delete(self, object_id: str) -> None:
        self.provider.delete(CAL.id, object_id)

    @rule()
    def expire(self) -> None:
        self.provider.expire_cursors(CAL.id)
        self.expired = True

    @precondition(lambda self: not self.expired)
    @rule()
    def follow(self) -> None:
        changes = self.connector.changes_since(CAL, self.cursor, WINDOW)
        assert not changes.full
        self.cache = apply(self.cache, changes)
        self.cursor = changes.cursor

    @precondition(lambda self: self.expired)
    @rule()
    def refused_then_relisted(self) -> None:
        with pytest.raises(CursorExpired):
            self.connector.changes_since(CAL, self.cursor, WINDOW)
        listing = self.connector.list_window(CAL, WINDOW)
        self.cache, self.cursor, self.expired = apply({}, listing), listing.cursor, False

    @invariant()
    def cache_plus_pending_changes_equals_a_fresh_listing(self) -> None:
        if self.expired:
            return
        pending = self.connector.changes_since(CAL, self.cursor, WINDOW)
        truth = self.connector.list_window(CAL, WINDOW)
        assert apply(self.cache, pending) == apply({}, truth)


TestChangeLog = ChangeLog.TestCase
TestChangeLog.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


def test_unchanged_calendar_hands_out_the_same_cursor() -> None:
    _, connector = connected()
    first = connector.list_window(CAL, WINDOW).cursor
    assert connector.changes_since(CAL, first, WINDOW).cursor == first
    assert connector.list_window(CAL, WINDOW).cursor == first


def test_cursor_of_another_calendar_or_provider_is_refused() -> None:
    provider, connector = connected()
    provider.add_calendar("other")
    theirs = connector.list_window(CAL.__class__("other", "UTC"), WINDOW).cursor
    _, stranger = connected()
    foreign = stranger.list_window(CAL, WINDOW).cursor
    for cursor in (theirs, foreign, "", "m1.forged"):
        with pytest.raises(CursorExpired) as caught:
            connector.changes_since(CAL, cursor, WINDOW)
        assert caught.value.cursor == cursor and caught.value.calendar == CAL.id


def test_old_cursor_still_learns_of_a_deletion() -> None:
    provider, connector = connected()
    provider.put(CAL.id, "m", event_on("m", 2, 1))
    cursor = connector.list_window(CAL, WINDOW).cursor
    provider.put(CAL.id, "n", event_on("n", 3, 1))
    provider.delete(CAL.id, "m")
    changes = connector.changes_since(CAL, cursor, WINDOW)
    assert dict(changes.objects).keys() == {"m", "n"} and changes.objects["m"] == ()


def test_connectors_on_many_threads_see_whole_calls() -> None:
    """Creates from many threads leave one event each and a listing that
    never shows half a write."""
    provider, connector = connected()
    others = [MemoryConnector(provider) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        written = list(
            pool.map(lambda i: others[i % 4].create_event(CAL, booking(f"b{i % 10}")), range(100))
        )
    assert len({w.source for w in written}) == 10
    assert len(connector.list_window(CAL, WINDOW).objects) == 10
