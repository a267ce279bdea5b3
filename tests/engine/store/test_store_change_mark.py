"""``CalendarRepository.change_mark``: the one-row freshness fingerprint the
slot path reads instead of every sync state."""

from __future__ import annotations

from collections.abc import Callable

from engine.store import Store
from engine.store.unit_of_work import UnitOfWork
from tests.engine.store.samples import WINDOW, at, changes, event, make_booking


def mark(store: Store) -> tuple[int, ...]:
    with store.reader() as uow:
        return uow.calendars.change_mark()


def after(store: Store, write: Callable[[UnitOfWork], object]) -> tuple[int, ...]:
    with store.unit_of_work() as uow:
        write(uow)
        uow.commit()
    return mark(store)


def test_empty_store_has_a_mark_of_zeros(store: Store) -> None:
    assert set(mark(store)) == {0}


def test_reading_alone_leaves_the_mark_as_it_was(store: Store) -> None:
    after(store, lambda uow: uow.calendars.ensure(["alice", "room-a"]))
    first = mark(store)
    with store.reader() as uow:
        uow.calendars.sync_states()
    assert mark(store) == first


def test_every_kind_of_state_change_moves_the_mark(store: Store) -> None:
    seen = [mark(store)]
    # A calendar appears, then syncs a change, then fails, then fails again
    # at another time, then heals; a booking bumps versions; one is removed.
    steps: list[Callable[[UnitOfWork], object]] = [
        lambda uow: uow.calendars.ensure(["alice", "room-a"]),
        lambda uow: uow.events.apply_changes("alice", changes("c1", event("a", 1, 2)),
                                             WINDOW, at(0)),
        lambda uow: uow.calendars.record_failure("room-a", at(2), "HTTP 503"),
        lambda uow: uow.calendars.record_failure("room-a", at(3), "HTTP 500"),
        lambda uow: uow.events.apply_changes("room-a", changes("c1"), WINDOW, at(4)),
        lambda uow: uow.bookings.reserve(make_booking("b1", 30, 31)),
        lambda uow: uow.calendars.remove("alice"),
    ]
    for step in steps:
        seen.append(after(store, step))
    assert len(set(seen)) == len(seen), seen


def test_an_earlier_failure_stamp_still_moves_the_mark(store: Store) -> None:
    # Two workers record failures out of order: the second stamp is older
    # than the newest one already there, so a max() would not notice it.
    after(store, lambda uow: uow.calendars.record_failure("room-a", at(5), "timeout"))
    after(store, lambda uow: uow.calendars.record_failure("room-b", at(9), "timeout"))
    before = mark(store)
    assert after(store, lambda uow: uow.calendars.record_failure("room-a", at(7), "503")) \
        != before


def test_a_sync_that_brings_nothing_leaves_the_mark_alone(store: Store) -> None:
    """Issue 24: 500 unchanged polls each moved the mark, so the slot query
    after each poll read every calendar's state again.  Only the success
    stamp (and the cursor) move; the slot path rechecks the states when its
    copy would call a calendar stale (tests/engine/services/test_slot_answers.py)."""
    after(store, lambda uow: uow.events.apply_changes(
        "alice", changes("c1", event("a", 1, 2)), WINDOW, at(0)))
    before = mark(store)
    assert after(store, lambda uow: uow.events.apply_changes(
        "alice", changes("c2"), WINDOW, at(1))) == before
    with store.reader() as uow:
        state = uow.calendars.sync_state("alice")
    assert state is not None and state.cursor == "c2" and state.last_success_at == at(1)


def test_a_heal_without_changes_moves_the_version_so_the_mark_never_goes_back(
    store: Store,
) -> None:
    after(store, lambda uow: uow.events.apply_changes("room-a", changes("c1"), WINDOW, at(0)))
    healthy = mark(store)
    failed = after(store, lambda uow: uow.calendars.record_failure("room-a", at(1), "503"))
    healed = after(store, lambda uow: uow.events.apply_changes(
        "room-a", changes("c2"), WINDOW, at(2)))
    assert len({healthy, failed, healed}) == 3
