"""The connector contract, writing and failing: idempotent create, update,
delete, live free/busy, and failures mapped onto the error tree."""

from __future__ import annotations

import pytest

from engine.core.model import Interval
from engine.errors import AuthFailed, Conflict, NotFound, TransientError
from engine.ports import CalendarRef
from tests.contract.calendar_data import (
    WINDOW,
    daily,
    draft,
    rows,
    single,
    spec,
    utc,
    wall,
)
from tests.contract.harness import Harness

# -- writes ------------------------------------------------------------------------


def test_create_is_idempotent_and_recognisable(harness: Harness) -> None:
    h = harness
    first = h.connector.create_event(h.calendar, draft())
    second = h.connector.create_event(h.calendar, draft())  # a retry after a crash

    assert first.source == second.source and first.uid == second.uid
    listing = h.connector.list_window(h.calendar, WINDOW)
    assert list(listing.objects) == [first.source]
    (event,) = listing.objects[first.source]
    assert event.booking_id == "bk-1"
    assert event.uid == first.uid
    assert (event.start, event.end, event.busy) == (
        utc(2027, 3, 10, 14),
        utc(2027, 3, 10, 14, 30),
        True,
    )


def test_create_where_another_version_exists_conflicts(harness: Harness) -> None:
    h = harness
    h.connector.create_event(h.calendar, draft())
    with pytest.raises(Conflict):
        h.connector.create_event(h.calendar, draft(hour=16))


def test_update_moves_the_event(harness: Harness) -> None:
    h = harness
    written = h.connector.create_event(h.calendar, draft())
    cursor = h.connector.list_window(h.calendar, WINDOW).cursor

    updated = h.connector.update_event(h.calendar, draft(hour=9), etag=written.etag)

    assert updated.source == written.source and updated.etag != written.etag
    changes = h.connector.changes_since(h.calendar, cursor, WINDOW)
    assert rows(changes) == {
        written.source: [("", utc(2027, 3, 10, 9), utc(2027, 3, 10, 9, 30), True)]
    }


def test_update_with_a_stale_etag_conflicts(harness: Harness) -> None:
    h = harness
    written = h.connector.create_event(h.calendar, draft())
    h.connector.update_event(h.calendar, draft(hour=9), etag=written.etag)
    with pytest.raises(Conflict) as caught:
        h.connector.update_event(h.calendar, draft(hour=11), etag=written.etag)
    assert caught.value.expected == written.etag


def test_update_of_a_missing_event_is_not_found(harness: Harness) -> None:
    with pytest.raises(NotFound):
        harness.connector.update_event(harness.calendar, draft("never-written"))


def test_delete_removes_and_tolerates_repeats(harness: Harness) -> None:
    h = harness
    written = h.connector.create_event(h.calendar, draft())
    cursor = h.connector.list_window(h.calendar, WINDOW).cursor

    h.connector.delete_event(h.calendar, "bk-1")
    h.connector.delete_event(h.calendar, "bk-1")

    assert dict(h.connector.changes_since(h.calendar, cursor, WINDOW).objects) == {
        written.source: ()
    }
    assert dict(h.connector.list_window(h.calendar, WINDOW).objects) == {}


# -- live free/busy ------------------------------------------------------------------


def test_free_busy_agrees_with_the_listing(harness: Harness) -> None:
    h = harness
    h.driver.put(single("one"))
    h.driver.put(single("overlapping", wall(2027, 3, 1, 10, 30), wall(2027, 3, 1, 12)))
    # With its VTIMEZONE: Radicale expands a bare TZID across DST with the
    # winter offset (see test_bare_tzid_series_crosses_dst for calpool's side).
    h.driver.put(daily("series", zone_definition=True))
    h.driver.put(spec("free", wall(2027, 3, 2, 10), wall(2027, 3, 2, 11), transparent=True))
    h.connector.create_event(h.calendar, draft())

    busy = h.connector.free_busy([h.calendar], WINDOW).of(h.calendar.id)

    listed = sorted(
        (e.start, e.end)
        for instances in h.connector.list_window(h.calendar, WINDOW).objects.values()
        for e in instances
        if e.busy
    )
    assert busy == (
        Interval(utc(2027, 3, 1, 9), utc(2027, 3, 1, 11)),  # the two overlapping ones, merged
        Interval(utc(2027, 3, 10, 14), utc(2027, 3, 10, 14, 30)),
        Interval(utc(2027, 3, 27, 9), utc(2027, 3, 27, 10)),
        Interval(utc(2027, 3, 28, 8), utc(2027, 3, 28, 9)),
        Interval(utc(2027, 3, 29, 8), utc(2027, 3, 29, 9)),
    )
    assert all(any(b.start <= s and e <= b.end for b in busy) for s, e in listed)


def test_free_busy_is_clipped_to_the_window(harness: Harness) -> None:
    harness.driver.put(single("long", wall(2027, 3, 1), wall(2027, 3, 10)))
    window = Interval(utc(2027, 3, 2), utc(2027, 3, 3))
    answer = harness.connector.free_busy([harness.calendar], window)
    assert answer.of(harness.calendar.id) == (window,)


# -- failures onto the error tree ---------------------------------------------------------


def test_missing_calendar_is_not_found(harness: Harness) -> None:
    missing = CalendarRef("no-such-calendar/", harness.calendar.timezone)
    with pytest.raises(NotFound):
        harness.connector.list_window(missing, WINDOW)


def test_unreachable_server_is_transient(harness: Harness) -> None:
    connector = harness.unreachable()
    for call in (
        lambda: connector.list_window(harness.calendar, WINDOW),
        lambda: connector.create_event(harness.calendar, draft()),
        lambda: connector.free_busy([harness.calendar], WINDOW),
    ):
        with pytest.raises(TransientError) as caught:
            call()
        assert caught.value.calendar == harness.calendar.id


def test_wrong_password_is_auth_failed(harness: Harness) -> None:
    if harness.unauthorized is None:
        pytest.skip(f"{harness.label} runs without authentication in this suite")
    connector = harness.unauthorized()
    with pytest.raises(AuthFailed):
        connector.list_window(harness.calendar, WINDOW)
    with pytest.raises(AuthFailed):
        connector.create_event(harness.calendar, draft())
