"""The CalDAV reader's fast path against its reference reading (issue 24).

The fast path splits only the lines that decide busy time, and splits plain
ones without icalendar; ``reference=True`` splits every line with icalendar
and keeps them all.  Both must give exactly the same instances (or refuse an
object with the same reason), for generated objects and for every file of
the differential corpus."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.caldav.content import split_line, split_with_icalendar
from connectors.caldav.ical import MalformedObject, instances_in_window
from engine.core.model import Interval

WINDOW = Interval(datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 7, 1, tzinfo=UTC))
CORPUS = Path(__file__).with_name("corpus")
ZONE = "Europe/Berlin"

BERLIN_VTIMEZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Custom Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
    "END:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
)


def reading(data: str) -> object:
    """The instances both ways, or the reason the object was refused."""
    results = []
    for reference in (False, True):
        try:
            results.append(instances_in_window(data, source="/c/x.ics", etag='"1"', window=WINDOW,
                                               zone=ZONE, reference=reference))
        except MalformedObject as exc:
            results.append(("refused", exc.reason))
    return results


starts = st.datetimes(datetime(2026, 12, 1), datetime(2027, 7, 15)).map(
    lambda d: d.replace(second=0, microsecond=0))
noise_lines = st.sampled_from([
    "SUMMARY:Team\\, weekly; room: 4", "DESCRIPTION:line one\\nline two",
    'ATTENDEE;CN="Doe, Jane";ROLE=REQ-PARTICIPANT:mailto:jane@example.org',
    "ORGANIZER;CN=Alice:mailto:alice@example.org", "X-ODD;X-P=^n^':v", "LOCATION:",
    "CATEGORIES:a,b", "bogus line without colon", "SEQUENCE:3", "SEQUENCE:x",
    "TRANSP:TRANSPARENT", "TRANSP:OPAQUE", "STATUS:CANCELLED", "STATUS: confirmed ",
    "X-CALPOOL-BOOKING:b-1", "CLASS:PUBLIC", "DTSTAMP:20260101T000000Z",
    "BEGIN:VALARM\r\nTRIGGER:PT-2H\r\nACTION:DISPLAY\r\nEND:VALARM",
])


def stamp(moment: datetime, form: str) -> str:
    if form == "utc":
        return f":{moment:%Y%m%dT%H%M%S}Z"
    if form == "floating":
        return f":{moment:%Y%m%dT%H%M%S}"
    if form == "date":
        return f";VALUE=DATE:{moment:%Y%m%d}"
    if form == "custom":
        return f';TZID="Custom Berlin":{moment:%Y%m%dT%H%M%S}'
    if form == "empty-tzid":
        return f";TZID=:{moment:%Y%m%dT%H%M%S}"
    return f";TZID={form}:{moment:%Y%m%dT%H%M%S}"


forms = st.sampled_from(["utc", "floating", "date", "custom", "empty-tzid", "Europe/Berlin",
                         "America/New_York", "Nowhere/Unknown", "dtstart;tzid=Europe/Berlin"])


@st.composite
def vevents(draw: st.DrawFn, uid: str) -> str:
    start = draw(starts)
    form = draw(forms)
    lines = [f"UID:{uid}"]
    if form.startswith("dtstart;"):  # lower-case names and parameters
        lines.append(f"dtstart;tzid=Europe/Berlin:{start:%Y%m%dT%H%M%S}")
        form = "Europe/Berlin"
    else:
        lines.append(f"DTSTART{stamp(start, form)}")
    end_kind = draw(st.sampled_from(["dtend", "duration", "none", "before", "twice"]))
    length = timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
    if end_kind in ("dtend", "twice"):
        lines.append(f"DTEND{stamp(start + length, draw(forms.filter(lambda f: ';' not in f)))}")
        if end_kind == "twice":
            lines.append(f"DTEND{stamp(start + 2 * length, 'utc')}")
    elif end_kind == "duration":
        lines.append(f"DURATION:PT{length.seconds // 60}M")
    elif end_kind == "before":
        lines.append(f"DTEND{stamp(start - length, form)}")
    if draw(st.integers(0, 9)) == 0:  # a tenth recurring, as in the office of issue 24
        lines.append(draw(st.sampled_from(["RRULE:FREQ=WEEKLY;COUNT=8", "RRULE:FREQ=DAILY;COUNT=3",
                                           "RRULE:FREQ=BOGUS"])))
        if draw(st.booleans()):
            lines.append(f"EXDATE{stamp(start + timedelta(days=7), form)}")
    lines += draw(st.lists(noise_lines, max_size=5))
    order = draw(st.permutations(range(len(lines))))
    body = "\r\n".join(lines[i] for i in order)
    return f"BEGIN:VEVENT\r\n{body}\r\nEND:VEVENT\r\n"


@st.composite
def objects(draw: st.DrawFn) -> str:
    events = [draw(vevents(draw(st.sampled_from(["a@x", "b@x"])))) for _ in range(
        draw(st.integers(1, 3)))]
    zone = BERLIN_VTIMEZONE if draw(st.booleans()) else ""
    fold = draw(st.booleans())
    text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + zone + "".join(events)
            + "END:VCALENDAR\r\n")
    if fold:  # RFC 5545 folding every 20 characters
        text = "\r\n".join(
            "\r\n ".join(line[i:i + 20] for i in range(0, max(len(line), 1), 20))
            for line in text.split("\r\n"))
    return text


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(objects())
def test_the_fast_path_reads_every_generated_object_as_the_reference_does(data: str) -> None:
    fast, reference = reading(data)
    assert fast == reference


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.ics")), ids=lambda p: p.name)
def test_the_fast_path_reads_the_corpus_as_the_reference_does(path: Path) -> None:
    text = "".join(line for line in path.read_text().splitlines(keepends=True)
                   if not line.startswith("#"))
    fast, reference = reading(text)
    assert fast == reference


line_chars = st.sampled_from(list("AZaz09-;:=,\"'^\\ \tX/.+"))


@settings(max_examples=2000, deadline=None)
@given(st.text(line_chars, max_size=30)
       | st.builds(lambda n, p, v: f"{n}{p}:{v}",
                   st.sampled_from(["DTSTART", "dtend", "X-A", "RDATE", "A1"]),
                   st.text(line_chars, max_size=15), st.text(line_chars, max_size=15)))
def test_a_plain_line_splits_as_icalendar_splits_it(line: str) -> None:
    def split(function: object) -> object:
        try:
            return function(line)  # type: ignore[operator]
        except ValueError:
            return "refused"

    assert split(split_line) == split(split_with_icalendar)
