"""Reading stored iCalendar objects: expansion, zones, busy, malformed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.caldav.ical import MalformedObject, busy_intervals, instances_in_window
from engine.core.model import Interval, RemoteEvent

WINDOW = Interval(datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def expand(
    *lines: str,
    zone: str = "Europe/Berlin",
    window: Interval = WINDOW,
    prefix: tuple[str, ...] = (),
) -> list[tuple[str, datetime, datetime, bool]]:
    text = "\r\n".join(
        ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:t", *prefix, *lines, "END:VCALENDAR", ""]
    )
    events = instances_in_window(text, source="/c/x.ics", etag='"1"', window=window, zone=zone)
    return [(e.instance, e.start, e.end, e.busy) for e in events]


def event(*props: str, uid: str = "u1") -> tuple[str, ...]:
    return ("BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20270101T000000Z", *props, "END:VEVENT")


def test_utc_event() -> None:
    assert expand(*event("DTSTART:20270301T100000Z", "DTEND:20270301T110000Z")) == [
        ("", utc(2027, 3, 1, 10), utc(2027, 3, 1, 11), True)
    ]


def test_duration_instead_of_dtend() -> None:
    assert expand(*event("DTSTART:20270301T100000Z", "DURATION:PT90M")) == [
        ("", utc(2027, 3, 1, 10), utc(2027, 3, 1, 11, 30), True)
    ]


def test_floating_time_is_in_the_calendars_zone() -> None:
    lines = event("DTSTART:20270701T100000", "DTEND:20270701T110000")
    assert expand(*lines, zone="America/New_York") == [
        ("", utc(2027, 7, 1, 14), utc(2027, 7, 1, 15), True)
    ]
    assert expand(*lines, zone="Asia/Tokyo") == [("", utc(2027, 7, 1, 1), utc(2027, 7, 1, 2), True)]


def test_all_day_covers_the_local_day_across_dst() -> None:
    # 28 March 2027 is 23 hours long in Berlin
    lines = event("DTSTART;VALUE=DATE:20270328", "DTEND;VALUE=DATE:20270329")
    assert expand(*lines) == [("", utc(2027, 3, 27, 23), utc(2027, 3, 28, 22), True)]


def test_all_day_without_dtend_is_one_day() -> None:
    assert expand(*event("DTSTART;VALUE=DATE:20270601"), zone="UTC") == [
        ("", utc(2027, 6, 1), utc(2027, 6, 2), True)
    ]


def test_datetime_start_alone_takes_no_time() -> None:
    assert expand(*event("DTSTART:20270601T100000Z")) == [
        ("", utc(2027, 6, 1, 10), utc(2027, 6, 1, 10), True)
    ]
    assert (
        busy_intervals(
            [RemoteEvent(source="s", uid="u", start=utc(2027, 1, 1), end=utc(2027, 1, 1))]
        )
        == ()
    )


VTIMEZONE_CUSTOM = (
    "BEGIN:VTIMEZONE",
    "TZID:Office Time",
    "BEGIN:STANDARD",
    "DTSTART:19700101T000000",
    "TZOFFSETFROM:+0530",
    "TZOFFSETTO:+0530",
    "END:STANDARD",
    "END:VTIMEZONE",
)


def test_vtimezone_defined_in_the_object() -> None:
    lines = event(
        "DTSTART;TZID=Office Time:20270301T100000", "DTEND;TZID=Office Time:20270301T110000"
    )
    assert expand(*lines, prefix=VTIMEZONE_CUSTOM) == [
        ("", utc(2027, 3, 1, 4, 30), utc(2027, 3, 1, 5, 30), True)
    ]


def test_bare_iana_tzid_series_crosses_dst() -> None:
    lines = event(
        "DTSTART;TZID=Europe/Berlin:20270327T100000",
        "DTEND;TZID=Europe/Berlin:20270327T110000",
        "RRULE:FREQ=DAILY;COUNT=2",
    )
    assert expand(*lines, zone="UTC") == [
        ("2027-03-27T09:00:00Z", utc(2027, 3, 27, 9), utc(2027, 3, 27, 10), True),
        ("2027-03-28T08:00:00Z", utc(2027, 3, 28, 8), utc(2027, 3, 28, 9), True),
    ]


def test_rdate_exdate_and_overrides() -> None:
    master = event(
        "DTSTART:20270301T100000Z",
        "DTEND:20270301T110000Z",
        "RRULE:FREQ=WEEKLY;COUNT=3",
        "EXDATE:20270308T100000Z",
        "RDATE:20270320T100000Z",
    )
    moved = event(
        "RECURRENCE-ID:20270315T100000Z",
        "DTSTART:20270316T120000Z",
        "DTEND:20270316T130000Z",
    )
    assert expand(*master, *moved) == [
        ("2027-03-01T10:00:00Z", utc(2027, 3, 1, 10), utc(2027, 3, 1, 11), True),
        ("2027-03-15T10:00:00Z", utc(2027, 3, 16, 12), utc(2027, 3, 16, 13), True),
        ("2027-03-20T10:00:00Z", utc(2027, 3, 20, 10), utc(2027, 3, 20, 11), True),
    ]


def test_transparent_cancelled_and_tentative() -> None:
    assert (
        expand(*event("DTSTART:20270301T100000Z", "DTEND:20270301T110000Z", "TRANSP:TRANSPARENT"))[
            0
        ][3]
        is False
    )
    assert (
        expand(*event("DTSTART:20270301T100000Z", "DTEND:20270301T110000Z", "STATUS:CANCELLED"))[0][
            3
        ]
        is False
    )
    assert (
        expand(*event("DTSTART:20270301T100000Z", "DTEND:20270301T110000Z", "STATUS:TENTATIVE"))[0][
            3
        ]
        is True
    )


def test_window_edges_are_half_open() -> None:
    window = Interval(utc(2027, 3, 1, 11), utc(2027, 3, 1, 12))
    before = event("DTSTART:20270301T100000Z", "DTEND:20270301T110000Z", uid="before")
    after = event("DTSTART:20270301T120000Z", "DTEND:20270301T130000Z", uid="after")
    inside = event("DTSTART:20270301T105900Z", "DTEND:20270301T110100Z", uid="inside")
    assert [r[1] for r in expand(*before, *after, *inside, window=window)] == [
        utc(2027, 3, 1, 10, 59)
    ]


def test_booking_property_is_read() -> None:
    text = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:t",
            *event("DTSTART:20270301T100000Z", "DTEND:20270301T110000Z", "X-CALPOOL-BOOKING:bk-9"),
            "END:VCALENDAR",
            "",
        ]
    )
    (found,) = instances_in_window(text, source="/c/x.ics", etag="e", window=WINDOW, zone="UTC")
    assert (found.booking_id, found.uid, found.source, found.etag) == (
        "bk-9",
        "u1",
        "/c/x.ics",
        "e",
    )


@pytest.mark.parametrize(
    "lines",
    [
        event("DTSTART:2027030XT100000Z", "DTEND:20270301T110000Z"),
        event("DTSTART:20270301T100000Z", "DTEND:20270301T110000Z", "RRULE:FREQ=SOMETIMES"),
        event("DTSTART;TZID=Nowhere/Atlantis:20270301T100000"),
        event("SUMMARY:no start"),
        ("BEGIN:VEVENT", "garbage line without colon", "END:VEVENT"),
    ],
    ids=["bad-date", "bad-rule", "unknown-zone", "no-dtstart", "syntax"],
)
def test_malformed_objects_are_refused(lines: tuple[str, ...]) -> None:
    with pytest.raises(MalformedObject):
        expand(*lines)


def test_damage_outside_the_time_properties_is_tolerated() -> None:
    lines = event("DTSTART:20270301T100000Z", "DTEND:20270301T110000Z", "CREATED:not-a-date")
    assert len(expand(*lines)) == 1


def test_busy_intervals_merge_and_skip_free() -> None:
    def ev(start: int, end: int, busy: bool = True) -> RemoteEvent:
        return RemoteEvent(
            source="s", uid="u", start=utc(2027, 1, 1, start), end=utc(2027, 1, 1, end), busy=busy
        )

    assert busy_intervals(
        [ev(9, 10), ev(10, 11), ev(13, 15, busy=False), ev(12, 13), ev(12, 12)]
    ) == (
        Interval(utc(2027, 1, 1, 9), utc(2027, 1, 1, 11)),
        Interval(utc(2027, 1, 1, 12), utc(2027, 1, 1, 13)),
    )
