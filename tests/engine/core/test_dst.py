"""Working hours and the step grid across DST changes, both directions,
in Europe/Berlin, America/New_York and Australia/Lord_Howe (30-minute
shift).  Boundaries in a gap map to the transition instant; in a fold a
start takes the first occurrence and an end the last (engine.core.zones)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.busy import BusyTimeline
from engine.core.hours import grid, on_grid, working_time
from engine.core.model import (
    Calendar,
    CalendarKind,
    EventType,
    Interval,
    LocalRange,
    Pool,
    WorkingHours,
)
from engine.core.slots import find_slots
from engine.core.zones import from_us, local_day, to_us

HOUR = 3600 * 10**6

# (zone, date, shift in hours: +1 spring forward, -1 fall back)
CHANGES = [
    ("Europe/Berlin", date(2027, 3, 28), 1.0),
    ("Europe/Berlin", date(2027, 10, 31), -1.0),
    ("America/New_York", date(2027, 3, 14), 1.0),
    ("America/New_York", date(2027, 11, 7), -1.0),
    ("Australia/Lord_Howe", date(2027, 10, 3), 0.5),
    ("Australia/Lord_Howe", date(2027, 4, 4), -0.5),
]
IDS = [f"{zone}-{day}" for zone, day, _ in CHANGES]


def hours_on(day: date, start: time, end: time) -> WorkingHours:
    return WorkingHours({}, {day: (LocalRange(start, end),)})


def real_hours(zone: str, day: date, start: time, end: time) -> float:
    lo = local_day(zone, day).start - 2 * HOUR
    hi = local_day(zone, day).end + 2 * HOUR
    return working_time(hours_on(day, start, end), zone, lo, hi).total_us / HOUR


def wall(zone: str, instant_us: int) -> datetime:
    return from_us(instant_us).astimezone(ZoneInfo(zone))


@pytest.mark.parametrize(("zone", "day", "shift"), CHANGES, ids=IDS)
def test_day_length_follows_the_shift(zone: str, day: date, shift: float) -> None:
    local = local_day(zone, day)
    assert (local.end - local.start) / HOUR == 24 - shift
    assert real_hours(zone, day, time(0), time(0)) == 24 - shift


@pytest.mark.parametrize(("zone", "day", "shift"), CHANGES, ids=IDS)
def test_hours_that_cross_the_change_gain_or_lose_it(zone: str, day: date,
                                                     shift: float) -> None:
    # 01:00-09:00 holds every change of these zones (01:30-03:00 local).
    assert real_hours(zone, day, time(1), time(9)) == 8 - shift
    assert real_hours(zone, day, time(0), time(12)) == 12 - shift
    # Hours clear of the change keep their length.
    assert real_hours(zone, day, time(9), time(17)) == 8


@pytest.mark.parametrize(("zone", "day", "gap_start", "gap_end"), [
    ("Europe/Berlin", date(2027, 3, 28), time(2), time(3)),
    ("America/New_York", date(2027, 3, 14), time(2), time(3)),
    ("Australia/Lord_Howe", date(2027, 10, 3), time(2), time(2, 30)),
])
def test_boundary_in_a_gap_maps_to_the_transition(zone: str, day: date, gap_start: time,
                                                  gap_end: time) -> None:
    inside = (datetime.combine(day, gap_start) + timedelta(minutes=15)).time()
    lo, hi = local_day(zone, day).start, local_day(zone, day).end
    work = working_time(hours_on(day, inside, time(5)), zone, lo, hi)
    [span] = list(work)
    # The span opens when the wall clock jumps to the end of the gap.
    assert span.start.astimezone(ZoneInfo(zone)).time() == gap_end
    assert span.start == from_us(local_day(zone, day).transition or 0)
    # A range wholly inside the gap names no instant.
    nothing = working_time(hours_on(day, gap_start, inside), zone, lo, hi)
    assert not nothing


@pytest.mark.parametrize(("zone", "day", "inside"), [
    ("Europe/Berlin", date(2027, 10, 31), time(2, 30)),
    ("America/New_York", date(2027, 11, 7), time(1, 30)),
    ("Australia/Lord_Howe", date(2027, 4, 4), time(1, 45)),
])
def test_fold_start_takes_first_and_end_takes_last(zone: str, day: date,
                                                   inside: time) -> None:
    lo, hi = local_day(zone, day).start, local_day(zone, day).end
    transition = local_day(zone, day).transition
    assert transition is not None
    [starting] = list(working_time(hours_on(day, inside, time(5)), zone, lo, hi))
    [ending] = list(working_time(hours_on(day, time(0), inside), zone, lo, hi))
    assert to_us(starting.start) < transition  # before the clock turns back
    assert to_us(ending.end) > transition  # the second time the clock shows it
    for instant in (starting.start, ending.end):
        assert instant.astimezone(ZoneInfo(zone)).time() == inside


@pytest.mark.parametrize(("zone", "day", "shift"), CHANGES, ids=IDS)
def test_grid_keeps_wall_clock_labels(zone: str, day: date, shift: float) -> None:
    local = local_day(zone, day)
    points, days = grid(zone, timedelta(minutes=15), local.start, local.end)
    assert len(points) == 96 - 4 * shift
    assert set(days.tolist()) == {day.toordinal()}
    assert list(points) == sorted(set(points.tolist()))
    for p in points.tolist():
        assert wall(zone, p).minute % 15 == 0 and wall(zone, p).second == 0


def test_lord_howe_grid_with_a_step_that_does_not_divide_the_shift() -> None:
    zone, step = "Australia/Lord_Howe", timedelta(minutes=45)
    for day in (date(2027, 10, 3), date(2027, 4, 4), date(2027, 4, 5)):
        local = local_day(zone, day)
        points, _ = grid(zone, step, local.start, local.end)
        labels = [wall(zone, p).time() for p in points.tolist()]
        minutes = [t.hour * 60 + t.minute for t in labels]
        assert all(m % 45 == 0 for m in minutes)
        if day == date(2027, 10, 3):
            assert time(2, 15) not in labels  # in the gap 02:00-02:30
            assert len(labels) == len(set(labels)) == 31
        elif day == date(2027, 4, 4):
            assert labels.count(time(1, 30)) == 2  # 01:30-02:00 happens twice
            assert len(labels) == 33
        else:
            assert len(labels) == len(set(labels)) == 32


@settings(max_examples=200)
@given(st.sampled_from(CHANGES), st.integers(0, 25 * 60), st.sampled_from([15, 20, 45, 60]))
def test_on_grid_agrees_with_the_grid(change: tuple[str, date, float], minute: int,
                                      step_minutes: int) -> None:
    zone, day, _ = change
    local = local_day(zone, day)
    step = timedelta(minutes=step_minutes)
    points, _ = grid(zone, step, local.start - 2 * HOUR, local.end + 2 * HOUR)
    instant = local.start - HOUR + minute * 60 * 10**6
    assert on_grid(zone, step, instant) == (instant in set(points.tolist()))


def test_slots_on_the_spring_forward_night_are_seven_real_hours() -> None:
    """Hours 01:00-09:00 in Berlin on 2027-03-28: the gap 02:00-03:00 falls
    inside, so seven one-hour slots: 01:00 CET, then 03:00-08:00 CEST."""
    day = date(2027, 3, 28)
    owner = Calendar("o", CalendarKind.PERSON, "Europe/Berlin", hours_on(day, time(1), time(9)))
    room = Calendar("r", CalendarKind.ROOM, "America/New_York")
    event = EventType(key="e", title="E", duration=timedelta(hours=1),
                      step=timedelta(hours=1), owner="o", pools=("p",))
    now = datetime(2027, 3, 27, tzinfo=UTC)
    slots = find_slots(event, calendars={"o": owner, "r": room},
                       pools={"p": Pool("p", ("r",))},
                       busy={"o": BusyTimeline(), "r": BusyTimeline()}, bookings=(),
                       window=Interval(now, now + timedelta(days=3)), now=now)
    starts = [s.start for s in slots]
    assert starts == [datetime(2027, 3, 28, h, tzinfo=UTC) for h in range(7)]
    assert [wall("Europe/Berlin", to_us(s)).hour for s in starts] == [1, 3, 4, 5, 6, 7, 8]
