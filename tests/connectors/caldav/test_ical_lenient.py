"""Defects that do not touch timing keep the event (issue 21); timing that
cannot be read still skips the object; an end before the start is swapped."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.caldav.ical import MalformedObject
from engine.core.model import Interval
from tests.connectors.caldav.ical_samples import calendar, read, spans, utc, vevent

PLAIN = ("DTSTART:20270301T100000Z", "DTEND:20270301T110000Z")
TEN_MINUTES = timedelta(minutes=10)
YEAR_AND_MORE = Interval(utc(2027, 1, 1), utc(2029, 1, 1))


def test_an_alarm_with_an_invalid_trigger_keeps_the_event() -> None:
    text = calendar(
        "BEGIN:VEVENT",
        "UID:u1",
        *PLAIN,
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "TRIGGER:PT-2H",
        "END:VALARM",
        "END:VEVENT",
    )
    assert spans(text) == [("", utc(2027, 3, 1, 10), utc(2027, 3, 1, 11), True)]


def test_an_empty_tzid_parameter_is_a_floating_time() -> None:
    text = calendar(*vevent("DTSTART;TZID=:20270701T100000", "DTEND;TZID=:20270701T110000"))
    assert spans(text, zone="Europe/Berlin") == [("", utc(2027, 7, 1, 8), utc(2027, 7, 1, 9), True)]


def test_a_trailing_blank_in_a_duration_keeps_every_instance() -> None:
    """398 instances were lost to ``DURATION:PT10M `` in one real file."""
    text = calendar(
        *vevent("DTSTART:20270101T080000Z", "DURATION:PT10M ", "RRULE:FREQ=DAILY;COUNT=398")
    )
    found = read(text, window=YEAR_AND_MORE)
    assert len(found) == 398
    assert all(e.end - e.start == TEN_MINUTES for e in found)


def test_blanks_lower_case_and_stray_separators_in_timing_values() -> None:
    text = calendar(
        *vevent(
            "DTSTART: 20270301t100000z ",
            "DTEND:20270301T110000Z",
            "RRULE:freq=weekly;;count=2;",
            "EXDATE:20270308T100000Z, ",
        )
    )
    assert [key for key, *_ in spans(text)] == ["2027-03-01T10:00:00Z"]


def test_damage_outside_the_timing_is_ignored() -> None:
    text = calendar(
        "BEGIN:VTODO",
        "UID:t",
        "DUE:not-a-date",
        "END:VTODO",
        *vevent(
            *PLAIN,
            "CREATED:not-a-date",
            'DESCRIPTION;BROKEN="unterminated:text',
            "line without a colon",
            "SEQUENCE:many",
            "ATTENDEE;CN=a;b:mailto:x@example.com",
        ),
    )
    assert len(read(text)) == 1


@pytest.mark.parametrize(
    "props",
    [
        ("DTSTART:2027030XT100000Z", "DTEND:20270301T110000Z"),
        ("DTSTART:20270301T100000Z", "DTEND:20270301T110000Z", "RRULE:FREQ=SOMETIMES"),
        ("DTSTART:20270301T100000Z", "RRULE:COUNT=3"),
        ("DTSTART:20270301T100000Z", "DURATION:ten minutes"),
        ("DTSTART;TZID=Europe/Berlin 20270301T100000",),
        ("DTSTART:20270301T100000Z", "DTSTART:20270302T100000Z"),
        ("DTSTART:20270301T100000Z", "EXDATE:tomorrow"),
        ("DTSTART:20270301T100000Z", "RRULE:FREQ=YEARLY;RSCALE=CHINESE"),
        ("SUMMARY:no start",),
        ("DTSTART:20270301T100000Z", "RRULE:FREQ=DAILY;INTERVAL=0"),
        ("DTSTART:99991231T235959", "DURATION:P1W"),
        ("DTSTART:19700101T000000Z", "RRULE:FREQ=SECONDLY"),
    ],
    ids=[
        "bad-date",
        "bad-freq",
        "no-freq",
        "bad-duration",
        "dtstart-does-not-split",
        "two-dtstarts",
        "bad-exdate",
        "other-calendar-scale",
        "no-dtstart",
        "interval-zero-would-loop",
        "beyond-datetime",
        "too-many-candidates",
    ],
)
def test_timing_that_cannot_be_read_is_still_refused(props: tuple[str, ...]) -> None:
    with pytest.raises(MalformedObject):
        read(calendar(*vevent(*props)))


def test_not_a_calendar_is_refused() -> None:
    for text in ("", "BEGIN:VEVENT\r\nEND:VEVENT\r\n", calendar() + calendar()):
        with pytest.raises(MalformedObject, match="VCALENDAR"):
            read(text)


def test_an_end_before_the_start_is_swapped_and_stays_busy() -> None:
    """RFC 5545 §3.8.2.2 forbids it; swapping keeps the busy time that a
    zero length would hide."""
    single = calendar(*vevent("DTSTART:20270301T110000Z", "DTEND:20270301T100000Z"))
    assert spans(single) == [("", utc(2027, 3, 1, 10), utc(2027, 3, 1, 11), True)]
    series = calendar(
        *vevent("DTSTART:20270301T110000Z", "DTEND:20270301T100000Z", "RRULE:FREQ=DAILY;COUNT=2")
    )
    assert spans(series) == [
        ("2027-03-01T11:00:00Z", utc(2027, 3, 1, 10), utc(2027, 3, 1, 11), True),
        ("2027-03-02T11:00:00Z", utc(2027, 3, 2, 10), utc(2027, 3, 2, 11), True),
    ]
    negative = calendar(*vevent("DTSTART:20270301T110000Z", "DURATION:-PT30M"))
    assert spans(negative) == [("", utc(2027, 3, 1, 10, 30), utc(2027, 3, 1, 11), True)]
    all_day = calendar(*vevent("DTSTART;VALUE=DATE:20270302", "DTEND;VALUE=DATE:20270301"))
    assert spans(all_day) == [("", utc(2027, 3, 1), utc(2027, 3, 2), True)]
