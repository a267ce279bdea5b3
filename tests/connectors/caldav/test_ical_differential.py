"""calpool's reading of iCalendar against an independent one (issue 21).

Every file of ``corpus/`` (small calendars written for calpool in the spirit
of other projects' fixtures; each names its model and licence in its ``#``
header, which is stripped before parsing) is read by
:func:`connectors.caldav.ical.instances_in_window` and by allenporter's
``ical`` (its timeline), in one configured zone, and the instances compared
as (start, end, busy) in UTC.  A difference is either fixed in calpool or
listed in :data:`KNOWN` with the RFC 5545 section that decides it (or leaves
it undefined); a listed difference must still show, so the list stays true.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.caldav.ical import instances_in_window
from engine.core.model import Interval

ical_stream = pytest.importorskip("ical.calendar_stream")
ical_exceptions = pytest.importorskip("ical.exceptions")

CORPUS = Path(__file__).with_name("corpus")
FILES = sorted(CORPUS.glob("*.ics"))
ZONE = "America/New_York"
WINDOW = Interval(datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))

Instance = tuple[datetime, datetime, bool]

REFUSED = None  # in KNOWN: ical refuses the file, so there is nothing to compare


def days(*dates: str) -> frozenset[date]:
    return frozenset(date.fromisoformat(d) for d in dates)


# file → (why the readings differ and what decides it, the UTC dates of the
# instances that may differ, or REFUSED when ical does not read the file)
KNOWN: dict[str, tuple[str, frozenset[date] | None]] = {
    "dst_gap_rule.ics": (
        "RFC 5545 §3.3.10: an RRULE instance at a local time that does not exist (02:30 on "
        "14 March in New York) MUST be ignored and not counted; ical keeps it (zero length) "
        "and so ends the series a day early",
        days("2027-03-14", "2027-03-16"),
    ),
    "this_and_future.ics": (
        "RFC 5545 §3.8.4.4 defines RANGE=THISANDFUTURE (later instances rescheduled by the "
        "same time difference); ical's timeline applies the override to its own instance only",
        days("2027-03-29", "2027-04-05", "2027-04-12", "2027-04-19"),
    ),
    "x_wr_timezone.ics": (
        "X-WR-TIMEZONE is no RFC 5545 property; a floating time (§3.3.5) is local to whoever "
        "reads it, and calpool reads it in the configured zone; ical reads it in X-WR-TIMEZONE",
        days("2027-03-10"),
    ),
    "globally_unique_tzid.ics": (
        "RFC 5545 §3.2.19 defines no registry of globally unique TZIDs, so one without its "
        "VTIMEZONE is undefined; calpool reads the IANA tail, ical refuses the file",
        REFUSED,
    ),
    "lenient_values.ics": (
        "RFC 5545 §3.3.6's grammar has no trailing blank in a DURATION, so the value is "
        "invalid and what to do undefined; calpool reads PT10M, ical refuses the file",
        REFUSED,
    ),
    "invalid_alarm_trigger.ics": (
        "RFC 5545 §3.8.6.3: TRIGGER:PT-2H is no valid duration, but an alarm decides no busy "
        "time (§3.6.1 says nothing of alarms for it); calpool keeps the event, ical refuses",
        REFUSED,
    ),
}


def text_of(path: Path) -> str:
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\r\n".join(line for line in lines if not line.startswith("#")) + "\r\n"


def calpool_reading(text: str) -> Counter[Instance]:
    events = instances_in_window(text, source="/c/f.ics", etag="e", window=WINDOW, zone=ZONE)
    return Counter((e.start, e.end, e.busy) for e in events)


def ical_reading(text: str) -> Counter[Instance]:
    zone = ZoneInfo(ZONE)
    calendar = ical_stream.IcsCalendarStream.calendar_from_ics(text)

    def instant(value: date | datetime) -> datetime:
        if not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)

    found: Counter[Instance] = Counter()
    for event in calendar.timeline_tz(zone).overlapping(WINDOW.start, WINDOW.end):
        transparent = str(event.transparency or "").upper().endswith("TRANSPARENT")
        cancelled = str(event.status or "").upper().endswith("CANCELLED")
        found[(instant(event.start), instant(event.end), not (transparent or cancelled))] += 1
    return found


def test_the_corpus_is_small_and_cited() -> None:
    assert 10 <= len(FILES) <= 30
    for path in FILES:
        header = path.read_text(encoding="utf-8").splitlines()[0]
        assert header.startswith("# "), f"{path.name} names no source"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_calpool_agrees_with_an_independent_reading(path: Path) -> None:
    text = text_of(path)
    ours = calpool_reading(text)
    reason, allowed = KNOWN.get(path.name, ("", frozenset()))
    if allowed is REFUSED:
        assert ours, f"calpool reads nothing of {path.name}"
        with pytest.raises(ical_exceptions.CalendarParseError):
            ical_reading(text)
        return
    theirs = ical_reading(text)
    differing = (ours - theirs) + (theirs - ours)
    unexplained = sorted(i for i in differing if i[0].date() not in allowed)
    assert not unexplained, f"calpool {sorted(ours - theirs)} vs ical {sorted(theirs - ours)}"
    if reason:
        assert differing, f"{path.name} is listed ({reason}) but both readings agree now"
