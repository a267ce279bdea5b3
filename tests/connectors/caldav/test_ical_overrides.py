"""RECURRENCE-ID overrides, single and RANGE=THISANDFUTURE (issue 21).

Each instance of a series is keyed by its own original start (RFC 5545
§3.8.4.4): a THISANDFUTURE override once gave every later instance the
override's RECURRENCE-ID, so the store kept one row of many (9 of 194 in
recurring-ical-events' ``issue_75_range_parameter.ics``).
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from engine.core.model import Interval
from tests.connectors.caldav.ical_samples import calendar, read, spans, utc, vevent

BERLIN = ZoneInfo("Europe/Berlin")
WEEKLY_TEN = vevent(
    "DTSTART;TZID=Europe/Berlin:20270301T100000",
    "DTEND;TZID=Europe/Berlin:20270301T110000",
    "RRULE:FREQ=WEEKLY;COUNT=10",
)


def future_override(recurrence_id: str, *props: str) -> tuple[str, ...]:
    return vevent(f"RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=Europe/Berlin:{recurrence_id}", *props)


def test_this_and_future_moves_every_later_instance_and_keys_each_by_its_own_start() -> None:
    moved = future_override(
        "20270322T100000",
        "DTSTART;TZID=Europe/Berlin:20270322T120000",
        "DTEND;TZID=Europe/Berlin:20270322T133000",
    )
    found = read(calendar(*WEEKLY_TEN, *moved))
    assert len(found) == 10
    assert len({e.instance for e in found}) == 10
    # Berlin is UTC+1 until 28 March, UTC+2 after: original 10:00 local
    originals = [e.instance for e in found]
    assert originals[:4] == [
        "2027-03-01T09:00:00Z",
        "2027-03-08T09:00:00Z",
        "2027-03-15T09:00:00Z",
        "2027-03-22T09:00:00Z",
    ]
    assert originals[4] == "2027-03-29T08:00:00Z"
    # before the override: unchanged; from it on: 12:00-13:30 local, across DST
    assert (found[2].start, found[2].end) == (utc(2027, 3, 15, 9), utc(2027, 3, 15, 10))
    assert (found[3].start, found[3].end) == (utc(2027, 3, 22, 11), utc(2027, 3, 22, 12, 30))
    assert (found[4].start, found[4].end) == (utc(2027, 3, 29, 10), utc(2027, 3, 29, 11, 30))
    assert found[9].start == utc(2027, 5, 3, 10)


def test_a_later_single_override_wins_over_the_range() -> None:
    moved = future_override(
        "20270308T100000",
        "DTSTART;TZID=Europe/Berlin:20270308T140000",
        "DTEND;TZID=Europe/Berlin:20270308T150000",
    )
    single = vevent(
        "RECURRENCE-ID;TZID=Europe/Berlin:20270315T100000",
        "DTSTART;TZID=Europe/Berlin:20270316T080000",
        "DTEND;TZID=Europe/Berlin:20270316T090000",
    )
    found = {e.instance: e for e in read(calendar(*WEEKLY_TEN, *moved, *single))}
    assert len(found) == 10
    assert found["2027-03-15T09:00:00Z"].start == utc(2027, 3, 16, 7)
    assert found["2027-03-22T09:00:00Z"].start == utc(2027, 3, 22, 13)


def test_a_later_range_override_takes_over_from_an_earlier_one() -> None:
    first = future_override(
        "20270308T100000",
        "DTSTART;TZID=Europe/Berlin:20270308T110000",
        "DTEND;TZID=Europe/Berlin:20270308T120000",
    )
    second = future_override(
        "20270405T100000",
        "DTSTART;TZID=Europe/Berlin:20270405T070000",
        "DTEND;TZID=Europe/Berlin:20270405T073000",
    )
    found = read(calendar(*WEEKLY_TEN, *second, *first))  # order in the file does not matter
    local_hours = [e.start.astimezone(BERLIN).hour for e in found]
    assert local_hours == [10, 11, 11, 11, 11, 7, 7, 7, 7, 7]
    assert found[-1].end - found[-1].start == timedelta(minutes=30)


def test_a_cancelled_range_frees_every_later_instance() -> None:
    cancelled = future_override(
        "20270412T100000",
        "DTSTART;TZID=Europe/Berlin:20270412T100000",
        "DTEND;TZID=Europe/Berlin:20270412T110000",
        "STATUS:CANCELLED",
    )
    busy = [e.busy for e in read(calendar(*WEEKLY_TEN, *cancelled))]
    assert busy == [True] * 6 + [False] * 4


def test_a_range_moved_earlier_pulls_in_instances_from_after_the_window() -> None:
    """From 5 April on the series is a fortnight earlier: the instance of
    24 May starts on 10 May, inside a window that ends on 12 May."""
    series = vevent(
        "DTSTART:20270301T100000Z", "DTEND:20270301T110000Z", "RRULE:FREQ=WEEKLY;COUNT=20"
    )
    moved = vevent(
        "RECURRENCE-ID;RANGE=THISANDFUTURE:20270405T100000Z",
        "DTSTART:20270322T100000Z",
        "DTEND:20270322T110000Z",
    )
    window = Interval(utc(2027, 4, 26), utc(2027, 5, 12))
    assert [(key, start) for key, start, *_ in spans(calendar(*series, *moved), window=window)] == [
        ("2027-05-10T10:00:00Z", utc(2027, 4, 26, 10)),
        ("2027-05-17T10:00:00Z", utc(2027, 5, 3, 10)),
        ("2027-05-24T10:00:00Z", utc(2027, 5, 10, 10)),
    ]


def test_an_override_without_its_series_is_still_busy() -> None:
    orphan = vevent(
        "RECURRENCE-ID:20270301T100000Z", "DTSTART:20270302T100000Z", "DTEND:20270302T110000Z"
    )
    assert spans(calendar(*orphan)) == [
        ("2027-03-01T10:00:00Z", utc(2027, 3, 2, 10), utc(2027, 3, 2, 11), True)
    ]


def test_repeated_overrides_of_one_instance_keep_the_highest_sequence() -> None:
    older = vevent(
        "RECURRENCE-ID;TZID=Europe/Berlin:20270308T100000",
        "SEQUENCE:2",
        "DTSTART;TZID=Europe/Berlin:20270308T150000",
        "DTEND;TZID=Europe/Berlin:20270308T160000",
    )
    newer = vevent(
        "RECURRENCE-ID;TZID=Europe/Berlin:20270308T100000",
        "SEQUENCE:3",
        "DTSTART;TZID=Europe/Berlin:20270308T170000",
        "DTEND;TZID=Europe/Berlin:20270308T180000",
    )
    found = read(calendar(*WEEKLY_TEN, *newer, *older))
    assert len({e.instance for e in found}) == len(found) == 10
    assert found[1].start == utc(2027, 3, 8, 16)


def test_several_uids_in_one_object_keep_keys_unique() -> None:
    """RFC 4791 §4.1 allows one UID per object; files with more exist, and
    two single events there would otherwise share the key ``""``."""
    text = calendar(
        *vevent("DTSTART:20270301T100000Z", "DTEND:20270301T110000Z", uid="a"),
        *vevent("DTSTART:20270301T100000Z", "DTEND:20270301T110000Z", uid="b"),
        *vevent("DTSTART:20270301T100000Z", "RRULE:FREQ=DAILY;COUNT=2", uid="c"),
    )
    keys = [e.instance for e in read(text)]
    assert sorted(keys) == ["a ", "b ", "c 2027-03-01T10:00:00Z", "c 2027-03-02T10:00:00Z"]
