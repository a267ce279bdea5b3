"""Time zones of one object (issue 21): its own VTIMEZONEs, IANA names,
globally unique TZIDs, X-WR-TIMEZONE and floating times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.caldav.content import parse_components
from connectors.caldav.ical import MalformedObject
from connectors.caldav.zones import build_observed_clock
from tests.connectors.caldav.ical_samples import calendar, read, spans, utc, vevent


def fixed_zone(tzid: str, offset: str) -> tuple[str, ...]:
    return (
        "BEGIN:VTIMEZONE",
        f"TZID:{tzid}",
        "BEGIN:STANDARD",
        "DTSTART:16010101T000000",
        f"TZOFFSETFROM:{offset}",
        f"TZOFFSETTO:{offset}",
        "END:STANDARD",
        "END:VTIMEZONE",
    )


# The US rules since 2007, as Outlook writes them (RFC 5545 §3.6.5's example).
EASTERN = (
    "BEGIN:VTIMEZONE",
    "TZID:Eastern Standard Time",
    "BEGIN:STANDARD",
    "DTSTART:16011104T020000",
    "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11",
    "TZOFFSETFROM:-0400",
    "TZOFFSETTO:-0500",
    "END:STANDARD",
    "BEGIN:DAYLIGHT",
    "DTSTART:16010311T020000",
    "RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3",
    "TZOFFSETFROM:-0500",
    "TZOFFSETTO:-0400",
    "END:DAYLIGHT",
    "END:VTIMEZONE",
)


def at_nine(tzid: str, *zone: str, day: str = "20270301") -> str:
    return calendar(
        *zone, *vevent(f"DTSTART;TZID={tzid}:{day}T090000", f"DTEND;TZID={tzid}:{day}T100000")
    )


def test_each_object_is_read_with_its_own_vtimezone_in_either_order() -> None:
    """khal's tz_windows_format.ics after ical's office_360_nz_tz.ics was read
    12 hours off: icalendar kept the first VTIMEZONE of a TZID for the process."""
    auckland = at_nine("Custom", *fixed_zone("Custom", "+1300"))
    london = at_nine("Custom", *fixed_zone("Custom", "+0000"))
    for first, second in ((auckland, london), (london, auckland)):
        read(first)
        read(second)
        assert read(auckland)[0].start == utc(2027, 2, 28, 20)
        assert read(london)[0].start == utc(2027, 3, 1, 9)


def test_an_edited_vtimezone_is_seen_by_the_same_process() -> None:
    before = at_nine("Office", *fixed_zone("Office", "+0100"))
    after = at_nine("Office", *fixed_zone("Office", "+0300"))
    assert read(before)[0].start == utc(2027, 3, 1, 8)
    assert read(after)[0].start == utc(2027, 3, 1, 6)
    assert read(before)[0].start == utc(2027, 3, 1, 8)


def test_a_vtimezone_with_rules_agrees_with_tzdata_hour_by_hour() -> None:
    """Every local hour of 2027, the spring gap (offset before it, RFC 5545
    §3.3.5) and the autumn repeat (the first) included."""
    (vcalendar,) = parse_components(calendar(*EASTERN))
    clock = build_observed_clock(next(vcalendar.walk("VTIMEZONE")))
    new_york = ZoneInfo("America/New_York")
    wall = datetime(2027, 1, 1)
    while wall.year == 2027:
        expected = wall.replace(tzinfo=new_york, fold=0).astimezone(UTC)
        assert clock.to_utc(wall) == expected, wall
        assert clock.to_wall(expected) == expected.astimezone(new_york).replace(tzinfo=None)
        wall += timedelta(minutes=30)
    assert not clock.exists(datetime(2027, 3, 14, 2, 30))
    assert clock.exists(datetime(2027, 11, 7, 1, 30))


def test_a_series_in_a_vtimezone_follows_its_dst_rules() -> None:
    text = calendar(
        *EASTERN,
        *vevent(
            "DTSTART;TZID=Eastern Standard Time:20270313T090000",
            "DTEND;TZID=Eastern Standard Time:20270313T100000",
            "RRULE:FREQ=DAILY;COUNT=2",
        ),
    )
    assert [start for _, start, *_ in spans(text)] == [utc(2027, 3, 13, 14), utc(2027, 3, 14, 13)]


def test_an_iana_tzid_uses_tzdata_whatever_its_vtimezone_says() -> None:
    """A VTIMEZONE named Europe/Berlin with an impossible offset in an 1893
    observance no longer drops the event: tzdata reads an IANA name."""
    broken = (
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Berlin",
        "BEGIN:STANDARD",
        "DTSTART:18930401T000000",
        "TZOFFSETFROM:+005328",
        "TZOFFSETTO:+0099",
        "END:STANDARD",
        "END:VTIMEZONE",
    )
    assert read(at_nine("Europe/Berlin", *broken, day="20270701"))[0].start == utc(2027, 7, 1, 7)


@pytest.mark.parametrize(
    ("tzid", "expected"),
    [
        ("/freeassociation.sourceforge.net/Europe/Berlin", utc(2027, 7, 1, 7)),
        ("/mozilla.org/20070129_1/America/New_York", utc(2027, 7, 1, 13)),
        ("/softwarestudio.org/Olson_20011030_5/America/Chicago", utc(2027, 7, 1, 14)),
        ("/citadel.org/20190914_1/America/Argentina/Buenos_Aires", utc(2027, 7, 1, 12)),
    ],
)
def test_a_globally_unique_tzid_without_vtimezone_uses_its_iana_tail(
    tzid: str, expected: datetime
) -> None:
    assert read(at_nine(tzid, day="20270701"))[0].start == expected


def test_a_globally_unique_tzid_with_its_vtimezone_uses_the_vtimezone() -> None:
    tzid = "/example.com/1/Europe/Berlin"
    assert read(at_nine(tzid, *fixed_zone(tzid, "+0500")))[0].start == utc(2027, 3, 1, 4)


@pytest.mark.parametrize("tzid", ["Nowhere/Atlantis", "/vendor/Not/A_Zone", "Custom"])
def test_an_unknown_zone_is_refused(tzid: str) -> None:
    with pytest.raises(MalformedObject, match="zone"):
        read(at_nine(tzid))


def test_an_unreadable_vtimezone_of_an_unknown_name_is_refused() -> None:
    with pytest.raises(MalformedObject, match="VTIMEZONE"):
        read(at_nine("Custom", *fixed_zone("Custom", "+2500")))


def test_x_wr_timezone_is_ignored_the_configured_zone_reads_floating_times() -> None:
    """X-WR-TIMEZONE is not RFC 5545; the configured zone is the operator's
    statement (recurring-ical-events read Brussels here instead of New York)."""
    text = calendar(
        "X-WR-TIMEZONE:Europe/Brussels",
        *vevent("DTSTART:20270701T100000", "DTEND:20270701T110000"),
        *vevent(
            "DTSTART:20270322T100000Z",
            "DTEND:20270322T110000Z",
            "RRULE:FREQ=WEEKLY;COUNT=2",
            uid="u2",
        ),
    )
    found = {e.uid: e for e in read(text, zone="America/New_York")}
    assert found["u1"].start == utc(2027, 7, 1, 14)
    # a UTC series stays in UTC across Brussels' DST change of 28 March
    assert [e.start for e in read(text, zone="America/New_York") if e.uid == "u2"] == [
        utc(2027, 3, 22, 10),
        utc(2027, 3, 29, 10),
    ]
