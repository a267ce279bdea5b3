"""Reading stored objects, for the cases the contract suite does not reach:
all-day series, series-wide flags with per-occurrence exceptions,
zero-length events at the window's edges, free/busy clipping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from connectors.memory import MemoryEvent, Occurrence
from engine.core.model import Interval
from engine.errors import PermanentError
from engine.ports import instance_key
from tests.connectors.memory.memory_fixtures import CAL, WINDOW, at, connected, meeting


def day_series(uid: str, first: date, count: int) -> MemoryEvent:
    days = [first + timedelta(days=i) for i in range(count)]
    return MemoryEvent(
        uid=uid,
        start=days[0],
        end=days[0] + timedelta(days=1),
        occurrences=tuple(
            Occurrence(original_start=d, start=d, end=d + timedelta(days=1)) for d in days
        ),
    )


def test_all_day_series_is_keyed_and_busy_in_the_calendars_zone() -> None:
    provider, connector = connected()
    provider.put(CAL.id, "leave", day_series("leave", date(2027, 3, 27), 3))  # across DST

    (instances,) = connector.list_window(CAL, WINDOW).objects.values()

    # Berlin midnight: 23:00 UTC before 28 March, 22:00 UTC after.
    assert [(e.instance, e.start, e.end) for e in instances] == [
        ("2027-03-26T23:00:00Z", at(26, 23), at(27, 23)),
        ("2027-03-27T23:00:00Z", at(27, 23), at(28, 22)),
        ("2027-03-28T22:00:00Z", at(28, 22), at(29, 22)),
    ]


def test_cancelled_series_with_one_occurrence_kept() -> None:
    provider, connector = connected()
    starts = [at(d, 9) for d in (3, 4, 5)]
    series = MemoryEvent(
        uid="s",
        start=starts[0],
        end=starts[0] + timedelta(hours=1),
        cancelled=True,
        occurrences=tuple(
            Occurrence(
                original_start=s,
                start=s,
                end=s + timedelta(hours=1),
                cancelled=False if s.day == 4 else None,
            )
            for s in starts
        ),
    )
    provider.put(CAL.id, "s", series)

    (instances,) = connector.list_window(CAL, WINDOW).objects.values()

    assert [(e.instance, e.busy) for e in instances] == [
        (instance_key(starts[0]), False),
        (instance_key(starts[1]), True),
        (instance_key(starts[2]), False),
    ]
    assert connector.free_busy([CAL], WINDOW).of(CAL.id) == (Interval(at(4, 9), at(4, 10)),)


def test_moved_occurrence_keeps_its_original_key() -> None:
    provider, connector = connected()
    original = at(3, 9)
    series = MemoryEvent(
        uid="s",
        start=original,
        end=original + timedelta(hours=1),
        occurrences=(Occurrence(original_start=original, start=at(3, 15), end=at(3, 16)),),
    )
    provider.put(CAL.id, "s", series)
    (instance,) = connector.list_window(CAL, WINDOW).objects["s"]
    assert (instance.instance, instance.start) == ("2027-03-03T09:00:00Z", at(3, 15))


def test_zero_length_events_count_by_their_instant() -> None:
    provider, connector = connected()
    provider.put(CAL.id, "at-start", MemoryEvent(uid="a", start=WINDOW.start, end=WINDOW.start))
    provider.put(CAL.id, "at-end", MemoryEvent(uid="b", start=WINDOW.end, end=WINDOW.end))

    listing = connector.list_window(CAL, WINDOW)

    assert list(listing.objects) == ["at-start"]
    assert connector.free_busy([CAL], WINDOW).of(CAL.id) == ()  # no length: no busy time


def test_all_day_event_without_length_takes_its_day() -> None:
    provider, connector = connected()
    provider.put(CAL.id, "d", MemoryEvent(uid="d", start=date(2027, 3, 5), end=date(2027, 3, 5)))
    (event,) = connector.list_window(CAL, WINDOW).objects["d"]
    assert (event.start, event.end) == (at(4, 23), at(5, 23))


def test_event_touching_the_window_from_outside_is_not_in_it() -> None:
    provider, connector = connected()
    before = MemoryEvent(uid="x", start=WINDOW.start - timedelta(hours=1), end=WINDOW.start)
    provider.put(CAL.id, "x", before)
    assert dict(connector.list_window(CAL, WINDOW).objects) == {}


def test_free_busy_merges_touching_events_and_clips_to_the_window() -> None:
    provider, connector = connected()
    provider.put(CAL.id, "a", meeting("a", 2, 9))
    provider.put(CAL.id, "b", meeting("b", 2, 10))
    provider.put(CAL.id, "free", meeting("free", 2, 11, transparent=True))
    provider.put(CAL.id, "long", meeting("long", 1, 0, hours=30))
    window = Interval(at(1, 12), at(3, 0))

    assert connector.free_busy([CAL], window).of(CAL.id) == (
        Interval(at(1, 12), at(2, 6)),
        Interval(at(2, 9), at(2, 11)),
    )


def test_listing_reports_etag_uid_and_booking() -> None:
    provider, connector = connected()
    stored = provider.put(CAL.id, "m", meeting("m"))
    (event,) = connector.list_window(CAL, WINDOW).objects["m"]
    assert (event.source, event.uid, event.etag, event.booking_id) == ("m", "m", stored.etag, None)
    assert event.start == datetime(2027, 3, 2, 9, tzinfo=UTC)


def test_calendar_in_a_zone_that_does_not_exist_is_a_permanent_error() -> None:
    provider, connector = connected()
    provider.put(CAL.id, "m", meeting("m"))
    nowhere = CAL.__class__(CAL.id, "Nowhere/Atlantis")
    with pytest.raises(PermanentError) as caught:
        connector.list_window(nowhere, WINDOW)
    assert caught.value.calendar == CAL.id
