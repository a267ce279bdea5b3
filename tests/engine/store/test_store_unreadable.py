"""Objects a connector could not read are kept with the calendar's sync
state, in the transaction of the sync that found them."""

from __future__ import annotations

from engine.core.model import ChangeSet
from engine.store import Store
from tests.engine.store.samples import WINDOW, at, event


def unreadable(store: Store, calendar: str = "room") -> dict[str, str]:
    with store.reader() as uow:
        state = uow.calendars.sync_state(calendar)
    assert state is not None
    return dict(state.unreadable)


def apply(store: Store, changes: ChangeSet) -> None:
    with store.unit_of_work() as uow:
        uow.events.apply_changes("room", changes, WINDOW, at(0))
        uow.commit()


def test_a_full_listing_says_all_unreadable_objects(store: Store) -> None:
    apply(store, ChangeSet(cursor="c1", objects={"a": (event("a", 1, 2),)}, full=True,
                           unreadable={"b": "no DTSTART", "c": "unknown TZID"}))
    assert unreadable(store) == {"b": "no DTSTART", "c": "unknown TZID"}
    apply(store, ChangeSet(cursor="c2", objects={}, full=True, unreadable={"c": "still"}))
    assert unreadable(store) == {"c": "still"}


def test_an_incremental_sync_changes_only_what_it_lists(store: Store) -> None:
    apply(store, ChangeSet(cursor="c1", objects={}, full=True,
                           unreadable={"b": "no DTSTART", "c": "unknown TZID"}))
    # b is read now, c is gone, d turned unreadable; nothing said of the rest.
    apply(store, ChangeSet(cursor="c2", objects={"b": (event("b", 1, 2),), "c": (), "d": ()},
                           full=False, unreadable={"d": "INTERVAL=0"}))
    assert unreadable(store) == {"d": "INTERVAL=0"}
    apply(store, ChangeSet(cursor="c3", objects={}, full=False))
    assert unreadable(store) == {"d": "INTERVAL=0"}
    apply(store, ChangeSet(cursor="c4", objects={"d": (event("d", 3, 4),)}, full=False))
    assert unreadable(store) == {}


def test_a_rolled_back_sync_leaves_the_unreadable_objects_as_they_were(store: Store) -> None:
    apply(store, ChangeSet(cursor="c1", objects={}, full=True, unreadable={"b": "x"}))
    with store.unit_of_work() as uow:
        uow.events.apply_changes("room", ChangeSet(cursor="c2", objects={}, full=True),
                                 WINDOW, at(0))
        uow.rollback()
    assert unreadable(store) == {"b": "x"}
