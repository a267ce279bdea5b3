"""Generated series against a brute-force reference (issue 21).

Daily and weekly series near the DST changes of three zones, with EXDATEs,
RDATEs, single overrides and a THISANDFUTURE override: every instance key is
unique and the busy time equals the reference's.  The reference steps the
wall clock by hand (no rule library), reads local times with zoneinfo
(``fold=0``: the first of a repeated time, the offset before a gap, RFC 5545
§3.3.5), and leaves out rule instances in a gap without counting them
(RFC 5545 §3.3.10).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.caldav.ical import busy_intervals
from engine.core.model import Interval, RemoteEvent
from engine.ports import instance_key
from tests.connectors.caldav.ical_samples import calendar, read, spans, utc, vevent

# The 2027 DST changes of each zone, spring and autumn (Sydney's are reversed).
CHANGES = {
    "Europe/Berlin": (date(2027, 3, 28), date(2027, 10, 31)),
    "America/New_York": (date(2027, 3, 14), date(2027, 11, 7)),
    "Australia/Sydney": (date(2027, 4, 4), date(2027, 10, 3)),
}
WIDE = Interval(utc(2026, 6, 1), utc(2029, 1, 1))


@dataclass(frozen=True)
class Override:
    index: int  # of the instance among the rule's
    shift_minutes: int
    minutes: int
    cancelled: bool


@dataclass(frozen=True)
class Series:
    zone: str
    start: datetime  # wall
    minutes: int
    step_days: int
    count: int
    exdates: frozenset[int]
    rdates: tuple[datetime, ...]
    singles: tuple[Override, ...]
    future: Override | None
    window: Interval


@st.composite
def series(draw: st.DrawFn) -> Series:
    zone = draw(st.sampled_from(sorted(CHANGES)))
    change = draw(st.sampled_from(CHANGES[zone]))
    day = change - timedelta(days=draw(st.integers(0, 20)))
    hour = draw(st.one_of(st.integers(0, 23), st.integers(1, 3)))
    start = datetime(day.year, day.month, day.day, hour, draw(st.sampled_from([0, 30])))
    step_days = draw(st.sampled_from([1, 2, 7, 14]))
    count = draw(st.integers(1, 30))
    override = st.builds(
        Override,
        index=st.integers(0, count - 1),
        shift_minutes=st.integers(-600, 600),
        minutes=st.integers(15, 240),
        cancelled=st.booleans(),
    )
    singles = draw(st.lists(override, max_size=3, unique_by=lambda o: o.index))
    future = draw(st.none() | override.filter(lambda o: o.index not in {s.index for s in singles}))
    rdate_walls = st.builds(
        lambda days, minutes: start + timedelta(days=days, minutes=minutes),
        st.integers(-3, 40),
        st.integers(0, 47).map(lambda half_hours: 30 * half_hours),
    )
    begin = utc(day.year, day.month, day.day) + timedelta(hours=draw(st.integers(-48, 24 * 40)))
    window = draw(
        st.sampled_from([WIDE, Interval(begin, begin + timedelta(days=draw(st.integers(1, 30))))])
    )
    return Series(
        zone=zone,
        start=start,
        minutes=draw(st.integers(15, 180)),
        step_days=step_days,
        count=count,
        exdates=frozenset(draw(st.lists(st.integers(0, count - 1), max_size=4))),
        rdates=tuple(draw(st.lists(rdate_walls, max_size=3))),
        singles=tuple(singles),
        future=future,
        window=window,
    )


def exists(wall: datetime, zone: ZoneInfo) -> bool:
    return instant(wall, zone).astimezone(zone).replace(tzinfo=None) == wall


def instant(wall: datetime, zone: ZoneInfo) -> datetime:
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def rule_walls(s: Series, zone: ZoneInfo) -> list[datetime]:
    walls: list[datetime] = []
    wall = s.start
    while len(walls) < s.count:
        if wall == s.start or exists(wall, zone):
            walls.append(wall)
        wall += timedelta(days=s.step_days)
    return walls


def ical_text(s: Series, zone: ZoneInfo) -> str:
    def stamp(wall: datetime) -> str:
        return f";TZID={s.zone}:{wall:%Y%m%dT%H%M%S}"

    walls = rule_walls(s, zone)
    unit = "WEEKLY" if s.step_days % 7 == 0 else "DAILY"
    interval = s.step_days // 7 if unit == "WEEKLY" else s.step_days
    master = [
        f"DTSTART{stamp(s.start)}",
        f"DTEND{stamp(s.start + timedelta(minutes=s.minutes))}",
        f"RRULE:FREQ={unit};INTERVAL={interval};COUNT={s.count}",
        *(f"EXDATE{stamp(walls[i])}" for i in sorted(s.exdates)),
        *(f"RDATE{stamp(wall)}" for wall in s.rdates),
    ]
    lines = list(vevent(*master))
    for override, range_part in [(o, "") for o in s.singles] + (
        [(s.future, ";RANGE=THISANDFUTURE")] if s.future else []
    ):
        moved = walls[override.index] + timedelta(minutes=override.shift_minutes)
        lines += vevent(
            f"RECURRENCE-ID{range_part}{stamp(walls[override.index])}",
            f"DTSTART{stamp(moved)}",
            f"DTEND{stamp(moved + timedelta(minutes=override.minutes))}",
            *(["STATUS:CANCELLED"] if override.cancelled else []),
        )
    return calendar(*lines)


def reference(s: Series, zone: ZoneInfo) -> dict[str, tuple[datetime, datetime, bool]]:
    """Instance key → (start, end, busy), by brute force."""
    walls = rule_walls(s, zone)
    originals: dict[datetime, datetime] = {}  # instant → wall
    for wall in [*walls, *s.rdates]:
        originals.setdefault(instant(wall, zone), wall)
    for index in s.exdates:  # RFC 5545 §3.8.5.1: EXDATE removes RDATEs too
        originals.pop(instant(walls[index], zone), None)
    singles = {instant(walls[o.index], zone): o for o in s.singles}
    future_start = instant(walls[s.future.index], zone) if s.future else None
    result: dict[str, tuple[datetime, datetime, bool]] = {}

    def place(wall: datetime, minutes: int, busy: bool) -> tuple[datetime, datetime, bool]:
        # a start in a gap can read later than its end: the two swapped, as documented
        begin, end = instant(wall, zone), instant(wall + timedelta(minutes=minutes), zone)
        return (min(begin, end), max(begin, end), busy)

    for at, o in singles.items():  # an override counts even where an EXDATE removed its instance
        moved = walls[o.index] + timedelta(minutes=o.shift_minutes)
        result[instance_key(at)] = place(moved, o.minutes, not o.cancelled)
    if s.future is not None and future_start is not None:
        f = s.future
        result[instance_key(future_start)] = place(
            walls[f.index] + timedelta(minutes=f.shift_minutes), f.minutes, not f.cancelled
        )
    for at, wall in originals.items():
        key = instance_key(at)
        if key in result:
            continue
        if s.future is not None and future_start is not None and at >= future_start:
            f = s.future
            shift = timedelta(minutes=f.shift_minutes)
            result[key] = place(wall + shift, f.minutes, not f.cancelled)
        else:
            result[key] = place(wall, s.minutes, True)
    return result


@settings(max_examples=300, deadline=None)
@given(series())
def test_generated_series_match_the_brute_force_reference(s: Series) -> None:
    zone = ZoneInfo(s.zone)
    found = read(ical_text(s, zone), zone="UTC", window=s.window)
    keys = [e.instance for e in found]
    assert len(keys) == len(set(keys)), "instance keys must be unique within the object"

    expected = reference(s, zone)
    window = s.window
    inside = {
        key: value
        for key, value in expected.items()
        if value[0] < window.end and window.start < value[1]
    }
    assert {e.instance: (e.start, e.end, e.busy) for e in found} == inside
    expected_busy = busy_intervals([_event(key, *value) for key, value in inside.items()])
    assert busy_intervals(found) == expected_busy


def _event(key: str, start: datetime, end: datetime, busy: bool) -> RemoteEvent:
    return RemoteEvent(source="s", uid="u1", instance=key, start=start, end=end, busy=busy)


def test_rule_instances_in_a_dst_gap_are_left_out_and_not_counted() -> None:
    """RFC 5545 §3.3.10: 02:30 does not exist in Berlin on 28 March 2027."""
    text = calendar(
        *vevent(
            "DTSTART;TZID=Europe/Berlin:20270326T023000",
            "DTEND;TZID=Europe/Berlin:20270326T033000",
            "RRULE:FREQ=DAILY;COUNT=3",
        )
    )
    assert [start for _, start, *_ in spans(text)] == [
        utc(2027, 3, 26, 1, 30),
        utc(2027, 3, 27, 1, 30),
        utc(2027, 3, 29, 0, 30),
    ]


def test_a_dtstart_in_a_gap_takes_the_offset_before_it_and_a_repeated_time_the_first() -> None:
    """RFC 5545 §3.3.5: 02:30 on 28 March is read at +01:00 (03:30 CEST);
    02:30 on 31 October happens twice and means the first (CEST)."""
    gap = calendar(*vevent("DTSTART;TZID=Europe/Berlin:20270328T023000", "DURATION:PT1H"))
    assert spans(gap) == [("", utc(2027, 3, 28, 1, 30), utc(2027, 3, 28, 2, 30), True)]
    repeated = calendar(*vevent("DTSTART;TZID=Europe/Berlin:20271031T023000", "DURATION:PT1H"))
    assert spans(repeated) == [("", utc(2027, 10, 31, 0, 30), utc(2027, 10, 31, 1, 30), True)]
