"""The pool report's counting and busy share (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import given
from hypothesis import strategies as st

from engine.core.intervals import IntervalSet
from engine.core.model import (
    Calendar,
    CalendarKind,
    Interval,
    LocalRange,
    Pool,
    ReportingCycle,
    WorkingHours,
)
from engine.core.report import (
    RoomStint,
    StintEnd,
    StintStart,
    busy_share,
    cycle_of,
    pool_report,
    previous_cycle,
)
from engine.core.zones import to_us

BERLIN = "Europe/Berlin"
POOL = Pool("rooms", ("room-a", "room-b"), reporting_cycle=ReportingCycle.WEEK, timezone=BERLIN)
# The week of the change to summer time in Berlin (Sunday 2027-03-28).
WEEK = cycle_of(POOL, datetime(2027, 3, 24, 12, tzinfo=UTC))


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2027, 3, day, hour, tzinfo=UTC)


def test_a_weekly_cycle_runs_from_monday_midnight_to_monday_midnight_in_the_pools_zone() -> None:
    assert WEEK.start == datetime(2027, 3, 21, 23, tzinfo=UTC)  # Monday 00:00 CET
    assert WEEK.end == datetime(2027, 3, 28, 22, tzinfo=UTC)  # Monday 00:00 CEST
    assert WEEK.duration == timedelta(days=7, hours=-1)
    assert previous_cycle(POOL, at(24)).end == WEEK.start


def test_counts_per_room_only_within_the_cycle() -> None:
    stints = [
        RoomStint("b1", "room-a", at(22), StintStart.BOOKED),  # received by a
        RoomStint("b2", "room-a", at(23), StintStart.BOOKED, at(24), StintEnd.CANCELLED),
        RoomStint("b3", "room-a", at(20), StintStart.BOOKED, at(25), StintEnd.REASSIGNED),
        RoomStint("b3", "room-b", at(25), StintStart.REASSIGNED),
        RoomStint("b4", "room-b", at(20), StintStart.BOOKED, at(21), StintEnd.CANCELLED),
        RoomStint("b5", "room-b", at(26), StintStart.BOOKED, at(26, 11), StintEnd.FAILED),
        RoomStint("b6", "room-gone", at(22), StintStart.BOOKED),
    ]
    report = pool_report(POOL, WEEK, stints, last_assigned={"room-a": at(23)}, calendars={},
                         busy={})
    a, b = report.members
    assert (a.room, a.received, a.removed, a.reassigned_away, a.reassigned_to) == (
        "room-a", 2, 1, 1, 0)
    # b4 was booked and cancelled before the week; b5 failed (compensated, not removed).
    assert (b.room, b.received, b.removed, b.reassigned_away, b.reassigned_to) == (
        "room-b", 1, 0, 0, 1)
    assert a.last_assigned_at == at(23) and b.last_assigned_at is None
    assert (report.received, report.removed) == (3, 1)


def test_busy_share_is_of_working_time_in_the_calendars_zone() -> None:
    nine_to_five = WorkingHours({day: (LocalRange(time(9), time(17)),) for day in range(5)})
    room = Calendar("room-a", CalendarKind.ROOM, BERLIN, nine_to_five)
    busy = IntervalSet.span(datetime(2027, 3, 22, 8, tzinfo=UTC),  # 09:00 CET Monday
                            datetime(2027, 3, 22, 16, tzinfo=UTC))  # 17:00 CET
    assert busy_share(room, busy, WEEK) == 1 / 5
    # Out of hours busy time does not count.
    night = IntervalSet.span(datetime(2027, 3, 22, 20, tzinfo=UTC), datetime(2027, 3, 23, 6,
                                                                             tzinfo=UTC))
    assert busy_share(room, night, WEEK) == 0.0
    assert busy_share(None, IntervalSet.span(WEEK.start, WEEK.end), WEEK) == 1.0


instants = st.integers(min_value=0, max_value=14 * 24).map(
    lambda hours: WEEK.start - timedelta(days=3) + timedelta(hours=hours))
stints = st.lists(st.builds(
    RoomStint, st.text("xyz", min_size=1, max_size=3), st.sampled_from(POOL.members), instants,
    st.sampled_from(StintStart), st.one_of(st.none(), instants),
    st.sampled_from([None, *StintEnd])), max_size=30)


@given(stints)
def test_every_count_is_a_stint_that_began_or_ended_in_the_cycle(found: list[RoomStint]) -> None:
    report = pool_report(POOL, WEEK, found, last_assigned={}, calendars={}, busy={})

    def inside(instant: datetime | None) -> bool:
        return instant is not None and WEEK.start <= instant < WEEK.end

    assert report.received == sum(1 for s in found
                                  if s.how is StintStart.BOOKED and inside(s.assigned_at))
    assert sum(m.reassigned_to for m in report.members) == sum(
        1 for s in found if s.how is StintStart.REASSIGNED and inside(s.assigned_at))
    assert report.removed == sum(1 for s in found
                                 if s.ended_how is StintEnd.CANCELLED and inside(s.ended_at))


spans = st.lists(st.tuples(st.integers(0, 7 * 24 * 60), st.integers(1, 600)), max_size=12)


@given(spans)
def test_busy_share_is_a_share(found: list[tuple[int, int]]) -> None:
    busy = IntervalSet.from_intervals(
        Interval(WEEK.start + timedelta(minutes=m), WEEK.start + timedelta(minutes=m + length))
        for m, length in found)
    share = busy_share(None, busy, WEEK)
    assert 0.0 <= share <= 1.0
    covered = busy.clip(to_us(WEEK.start), to_us(WEEK.end)).total_us
    assert share == covered / (to_us(WEEK.end) - to_us(WEEK.start))
