"""The connector contract, reading: listing, changes since a cursor, refused
cursors, cursors the provider forgot, malformed objects.  Every connector, against its real (or
faithfully faked) provider, behaves the same through the protocol.

Expected values are worked out here from the events the case stores (Berlin
is UTC+1 until 28 March 2027, UTC+2 after).
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest

from engine.core.model import ChangeSet, Interval
from engine.errors import CursorExpired
from tests.contract.calendar_data import (
    WINDOW,
    Override,
    Row,
    daily,
    rows,
    single,
    spec,
    utc,
    wall,
)
from tests.contract.harness import Capability, Harness


def without_cancelled(h: Harness, expected: dict[str, list[Row]], *cancelled: str
                      ) -> dict[str, list[Row]]:
    """``expected`` as the provider reports it: where it keeps no cancelled
    events (Google: cancelling is deleting), those sources are not listed
    at all rather than listed as free; the busy time is the same."""
    if Capability.KEEP_CANCELLED not in h.driver.unsupported:
        return expected
    return {source: found for source, found in expected.items() if source not in cancelled}


# -- full listing -----------------------------------------------------------


def test_full_listing_equals_what_the_server_holds(harness: Harness) -> None:
    h = harness
    plain = h.driver.put(single("plain"))
    series = h.driver.put(daily("series", excluded=(wall(2027, 3, 28, 10),)))
    all_day = h.driver.put(spec("allday", date(2027, 3, 5), date(2027, 3, 7)))
    free = h.driver.put(spec("free", wall(2027, 3, 2, 10), wall(2027, 3, 2, 11), transparent=True))
    cancelled = h.driver.put(
        spec("gone", wall(2027, 3, 3, 10), wall(2027, 3, 3, 11), cancelled=True)
    )
    floating = h.driver.put(spec("floating", wall(2027, 3, 4, 10), wall(2027, 3, 4, 12), zone=None))
    h.driver.put(single("outside", wall(2028, 1, 1, 10), wall(2028, 1, 1, 11)))

    listing = h.connector.list_window(h.calendar, WINDOW)

    assert listing.full
    assert rows(listing) == without_cancelled(h, {
        plain: [("", utc(2027, 3, 1, 9), utc(2027, 3, 1, 10), True)],
        series: [
            ("2027-03-27T09:00:00Z", utc(2027, 3, 27, 9), utc(2027, 3, 27, 10), True),
            ("2027-03-29T08:00:00Z", utc(2027, 3, 29, 8), utc(2027, 3, 29, 9), True),
        ],
        # busy for the whole local days 5 and 6 March in Berlin
        all_day: [("", utc(2027, 3, 4, 23), utc(2027, 3, 6, 23), True)],
        free: [("", utc(2027, 3, 2, 9), utc(2027, 3, 2, 10), False)],
        cancelled: [("", utc(2027, 3, 3, 9), utc(2027, 3, 3, 10), False)],
        floating: [("", utc(2027, 3, 4, 9), utc(2027, 3, 4, 11), True)],
    }, cancelled)
    event = listing.objects[plain][0]
    if Capability.CLIENT_UID in h.driver.unsupported:
        assert event.uid and event.uid != plain  # the provider's own UID, not its id
    else:
        assert event.uid == "plain"
    assert event.etag
    assert event.booking_id is None


def test_empty_calendar_lists_nothing_and_gives_a_cursor(harness: Harness) -> None:
    listing = harness.connector.list_window(harness.calendar, WINDOW)
    assert listing.full and dict(listing.objects) == {}
    assert listing.cursor
    again = harness.connector.changes_since(harness.calendar, listing.cursor, WINDOW)
    assert dict(again.objects) == {} and not again.full


# -- changes since a cursor -----------------------------------------------------


def test_created_event_is_the_only_change(harness: Harness) -> None:
    h = harness
    h.driver.put(single("before"))
    cursor = h.connector.list_window(h.calendar, WINDOW).cursor
    created = h.driver.put(single("created", wall(2027, 3, 2, 15), wall(2027, 3, 2, 16)))

    changes = h.connector.changes_since(h.calendar, cursor, WINDOW)

    assert not changes.full
    assert rows(changes) == {created: [("", utc(2027, 3, 2, 14), utc(2027, 3, 2, 15), True)]}
    assert h.connector.changes_since(h.calendar, changes.cursor, WINDOW).objects == {}


def test_moved_event_reports_its_new_time(harness: Harness) -> None:
    h = harness
    moved = h.driver.put(single("moved"))
    h.driver.put(single("stays", wall(2027, 3, 2, 10), wall(2027, 3, 2, 11)))
    cursor = h.connector.list_window(h.calendar, WINDOW).cursor
    h.driver.move("moved", wall(2027, 4, 1, 13), wall(2027, 4, 1, 14))  # after DST: UTC+2

    changes = h.connector.changes_since(h.calendar, cursor, WINDOW)

    assert rows(changes) == {moved: [("", utc(2027, 4, 1, 11), utc(2027, 4, 1, 12), True)]}


def test_event_moved_out_of_the_window_is_gone(harness: Harness) -> None:
    h = harness
    moved = h.driver.put(single("leaves"))
    cursor = h.connector.list_window(h.calendar, WINDOW).cursor
    h.driver.move("leaves", wall(2030, 1, 1, 10), wall(2030, 1, 1, 11))

    assert rows(h.connector.changes_since(h.calendar, cursor, WINDOW)) == {moved: []}


def test_deleted_event_is_reported_gone(harness: Harness) -> None:
    h = harness
    doomed = h.driver.put(single("doomed"))
    h.driver.put(single("kept", wall(2027, 3, 2, 10), wall(2027, 3, 2, 11)))
    cursor = h.connector.list_window(h.calendar, WINDOW).cursor
    h.driver.delete("doomed")

    changes = h.connector.changes_since(h.calendar, cursor, WINDOW)

    assert dict(changes.objects) == {doomed: ()}


def test_recurring_edit_reports_every_instance(harness: Harness) -> None:
    h = harness
    series = h.driver.put(daily("weekly"))
    cursor = h.connector.list_window(h.calendar, WINDOW).cursor
    h.driver.put(daily("weekly", count=2))

    changes = h.connector.changes_since(h.calendar, cursor, WINDOW)

    assert [r[0] for r in rows(changes)[series]] == ["2027-03-27T09:00:00Z", "2027-03-28T08:00:00Z"]


def test_exception_instance_on_the_server_moves_one_occurrence(harness: Harness) -> None:
    h = harness
    series = h.driver.put(daily("series"))
    cursor = h.connector.list_window(h.calendar, WINDOW).cursor
    moved = Override(
        original_start=wall(2027, 3, 28, 10), start=wall(2027, 3, 28, 16), end=wall(2027, 3, 28, 17)
    )
    cancelled = Override(
        original_start=wall(2027, 3, 29, 10),
        start=wall(2027, 3, 29, 10),
        end=wall(2027, 3, 29, 11),
        cancelled=True,
    )
    h.driver.put(daily("series", moved, cancelled))

    changes = h.connector.changes_since(h.calendar, cursor, WINDOW)

    kept = [
        ("2027-03-27T09:00:00Z", utc(2027, 3, 27, 9), utc(2027, 3, 27, 10), True),
        ("2027-03-28T08:00:00Z", utc(2027, 3, 28, 14), utc(2027, 3, 28, 15), True),
    ]
    cancelled_row = ("2027-03-29T08:00:00Z", utc(2027, 3, 29, 8), utc(2027, 3, 29, 9), False)
    if Capability.KEEP_CANCELLED not in h.driver.unsupported:
        kept.append(cancelled_row)
    assert rows(changes) == {series: kept}


def test_changes_then_full_listing_agree(harness: Harness) -> None:
    """Applying the change sets to the first listing gives the second listing."""
    h = harness
    h.driver.put(single("a"))
    h.driver.put(daily("s"))
    first = h.connector.list_window(h.calendar, WINDOW)
    state = dict(first.objects)
    h.driver.put(single("b", wall(2027, 3, 3, 10), wall(2027, 3, 3, 11)))
    h.driver.delete("a")
    h.driver.put(daily("s", count=5))
    changes = h.connector.changes_since(h.calendar, first.cursor, WINDOW)
    state.update(changes.objects)

    truth = h.connector.list_window(h.calendar, WINDOW)
    assert rows(ChangeSet(cursor="", objects={k: v for k, v in state.items() if v})) == rows(truth)


# -- cursors the provider refuses ---------------------------------------------------


@pytest.mark.parametrize("forged", ["", "garbage", "sc1:http://radicale.org/ns/sync/00", "et1:@@@"])
def test_forged_cursor_expires(harness: Harness, forged: str) -> None:
    with pytest.raises(CursorExpired):
        harness.connector.changes_since(harness.calendar, forged, WINDOW)


def test_cursor_of_another_calendar_expires(harness: Harness) -> None:
    foreign = harness.driver.foreign_cursor()
    harness.driver.put(single("x"))
    # In etag mode the foreign sync token is refused as the wrong kind.
    with pytest.raises(CursorExpired):
        harness.connector.changes_since(harness.calendar, foreign, WINDOW)


def test_cursor_the_provider_forgot_expires_and_a_new_listing_recovers(
    harness: Harness,
) -> None:
    h = harness
    h.require(Capability.EXPIRE_CURSOR)
    kept = h.driver.put(single("kept"))
    cursor = h.connector.list_window(h.calendar, WINDOW).cursor
    h.driver.expire_cursor()
    late = h.driver.put(single("late", wall(2027, 3, 2, 10), wall(2027, 3, 2, 11)))

    with pytest.raises(CursorExpired) as caught:
        h.connector.changes_since(h.calendar, cursor, WINDOW)

    assert caught.value.cursor == cursor
    fresh = h.connector.list_window(h.calendar, WINDOW)
    assert set(fresh.objects) == {kept, late}
    assert dict(h.connector.changes_since(h.calendar, fresh.cursor, WINDOW).objects) == {}


# -- cursors found current ------------------------------------------------------------


def test_an_unchanged_calendar_is_found_current_and_a_changed_one_is_not(
    harness: Harness,
) -> None:
    h = harness
    h.require(Capability.CURSOR_CHECK)
    h.driver.put(single("a"))
    listed = h.connector.list_window(h.calendar, WINDOW).cursor
    assert h.connector.current_cursors({h.calendar: listed}) == {h.calendar.id}

    moved = h.driver.move("a", wall(2027, 3, 2, 10), wall(2027, 3, 2, 11))
    assert h.connector.current_cursors({h.calendar: listed}) == frozenset()

    changes = h.connector.changes_since(h.calendar, listed, WINDOW)
    assert set(changes.objects) == {moved}
    # The cursor after the changes stands for the calendar as it is now.
    assert h.connector.current_cursors({h.calendar: changes.cursor}) == {h.calendar.id}
    unchanged = h.connector.changes_since(h.calendar, changes.cursor, WINDOW)
    assert dict(unchanged.objects) == {}
    assert h.connector.current_cursors({h.calendar: unchanged.cursor}) == {h.calendar.id}


@pytest.mark.parametrize("change", ["create", "move", "delete"])
def test_a_changed_calendar_is_never_found_current(harness: Harness, change: str) -> None:
    """Every connector, whether or not it can tell cheaply: a calendar changed
    since its cursor is never called current, so a pass never skips it."""
    h = harness
    h.driver.put(single("a"))
    cursor = h.connector.list_window(h.calendar, WINDOW).cursor
    if change == "create":
        h.driver.put(single("b", wall(2027, 3, 3, 10), wall(2027, 3, 3, 11)))
    elif change == "move":
        h.driver.move("a", wall(2027, 3, 2, 10), wall(2027, 3, 2, 11))
    else:
        h.driver.delete("a")

    assert h.connector.current_cursors({h.calendar: cursor}) == frozenset()
    assert h.connector.changes_since(h.calendar, cursor, WINDOW).objects


@pytest.mark.parametrize("forged", ["", "garbage", "sc1:http://radicale.org/ns/sync/00", "et1:@@@"])
def test_a_forged_or_foreign_cursor_is_never_found_current(harness: Harness, forged: str
                                                            ) -> None:
    h = harness
    h.connector.list_window(h.calendar, WINDOW)
    foreign = h.driver.foreign_cursor()
    assert h.connector.current_cursors({h.calendar: forged}) == frozenset()
    assert h.connector.current_cursors({h.calendar: foreign}) == frozenset()


# -- malformed objects -----------------------------------------------------------


def test_malformed_object_is_skipped_and_the_rest_returned(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    h.require(Capability.UNREADABLE_OBJECT)
    good = h.driver.put(single("good"))
    bad = h.driver.put_unreadable("bad")

    listing = h.connector.list_window(h.calendar, WINDOW)

    assert set(listing.objects) == {good}
    assert bad in caplog.text

    cursor = listing.cursor
    h.driver.put(single("good2", wall(2027, 3, 2, 10), wall(2027, 3, 2, 11)))
    bad2 = h.driver.put_unreadable("bad2")
    changes = h.connector.changes_since(h.calendar, cursor, WINDOW)
    assert changes.objects[bad2] == ()
    assert len(changes.objects) == 2


def test_window_larger_than_a_day_includes_late_instances(harness: Harness) -> None:
    """Regression: expansion must cover the whole window, not stop early."""
    h = harness
    series = h.driver.put(daily("long", count=60))
    window = Interval(utc(2027, 4, 20), utc(2027, 5, 1))
    listing = h.connector.list_window(h.calendar, window)
    starts = [e.start for e in listing.objects[series]]
    assert starts[0] == utc(2027, 4, 20, 8) and starts[-1] == utc(2027, 4, 30, 8)
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(starts))
