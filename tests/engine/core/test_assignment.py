"""Assignment among free pool members over many simulated bookings."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.assignment import PastAssignment, assign_room, cycle_bounds, pool_history
from engine.core.model import AssignmentMethod, Booking, BookingStatus, Pool, ReportingCycle

MEMBERS = ("a", "b", "c", "d")
ZONE = "Europe/Berlin"
START = datetime(2027, 3, 20, 8, tzinfo=UTC)


def pool(method: AssignmentMethod, cycle: ReportingCycle = ReportingCycle.WEEK) -> Pool:
    return Pool("rooms", MEMBERS, assignment=method, reporting_cycle=cycle, timezone=ZONE)


def week_of(moment: datetime) -> date:
    # Independent of the engine: the Monday of the local week.
    local = moment.astimezone(ZoneInfo(ZONE)).date()
    return local - timedelta(days=local.weekday())


def cycle_counts(history: list[PastAssignment], now: datetime) -> Counter[str]:
    return Counter(p.room for p in history
                   if p.status.is_active and week_of(p.booked_at) == week_of(now))


def last_assigned(history: list[PastAssignment], member: str) -> datetime | None:
    times = [p.booked_at for p in history if p.room == member and p.status.is_active]
    return max(times, default=None)


# Each step: hours since the previous booking, which members are free, and
# whether to cancel one earlier booking (by index) before choosing.
steps = st.lists(
    st.tuples(st.integers(1, 30), st.sets(st.sampled_from(MEMBERS), min_size=1),
              st.one_of(st.none(), st.integers(0, 10_000))),
    min_size=1, max_size=60)


def simulate(method: AssignmentMethod, plan: list[tuple[int, set[str], int | None]],
             check: object) -> None:
    history: list[PastAssignment] = []
    now = START
    rng = random.Random(5)
    for hours, free, cancel in plan:
        now += timedelta(hours=hours)
        if cancel is not None and history:
            i = cancel % len(history)
            history[i] = PastAssignment(history[i].room, history[i].booked_at,
                                        BookingStatus.CANCELLED)
        ordered = [m for m in MEMBERS if m in free]
        choice = assign_room(pool(method), sorted(free), history, now=now, rng=rng)
        assert choice in free
        check(choice, ordered, history, now)  # type: ignore[operator]
        history.append(PastAssignment(choice, now, BookingStatus.CONFIRMED))


@settings(max_examples=80)
@given(steps)
def test_least_booked_never_picks_a_member_with_more_in_the_cycle(plan: list[
        tuple[int, set[str], int | None]]) -> None:
    def check(choice: str, free: list[str], history: list[PastAssignment],
              now: datetime) -> None:
        counts = cycle_counts(history, now)
        assert all(counts[choice] <= counts[m] for m in free)

    simulate(AssignmentMethod.LEAST_BOOKED, plan, check)


@settings(max_examples=80)
@given(steps)
def test_longest_idle_never_picks_a_member_assigned_more_recently(plan: list[
        tuple[int, set[str], int | None]]) -> None:
    def check(choice: str, free: list[str], history: list[PastAssignment],
              now: datetime) -> None:
        mine = last_assigned(history, choice)
        for m in free:
            theirs = last_assigned(history, m)
            if mine is not None:
                assert theirs is not None and mine <= theirs
        if mine is None:
            # Never-assigned first, and among them config order.
            assert choice == next(m for m in free if last_assigned(history, m) is None)

    simulate(AssignmentMethod.LONGEST_IDLE, plan, check)


@settings(max_examples=50)
@given(steps)
def test_priority_always_picks_the_first_free(plan: list[
        tuple[int, set[str], int | None]]) -> None:
    def check(choice: str, free: list[str], history: list[PastAssignment],
              now: datetime) -> None:
        assert choice == free[0]

    simulate(AssignmentMethod.PRIORITY, plan, check)


@settings(max_examples=80)
@given(steps)
def test_round_robin_serves_the_members_behind_first(plan: list[
        tuple[int, set[str], int | None]]) -> None:
    def check(choice: str, free: list[str], history: list[PastAssignment],
              now: datetime) -> None:
        counts = cycle_counts(history, now)
        assert counts[choice] == min(counts[m] for m in free)

    simulate(AssignmentMethod.ROUND_ROBIN, plan, check)


def run(method: AssignmentMethod, history: list[PastAssignment], free: tuple[str, ...],
        now: datetime, times: int) -> list[str]:
    chosen = []
    for _ in range(times):
        now += timedelta(minutes=10)
        choice = assign_room(pool(method), free, history, now=now)
        history.append(PastAssignment(choice, now))
        chosen.append(choice)
    return chosen


def test_round_robin_cycles_through_the_free_members() -> None:
    history: list[PastAssignment] = []
    assert run(AssignmentMethod.ROUND_ROBIN, history, MEMBERS, START, 9) == [
        "a", "b", "c", "d", "a", "b", "c", "d", "a"]
    # c is busy on its turn: d takes it, c is served first once free again.
    assert run(AssignmentMethod.ROUND_ROBIN, history, ("a", "b", "d"), START + timedelta(hours=2),
               1) == ["b"]
    assert run(AssignmentMethod.ROUND_ROBIN, history, ("a", "b", "d"), START + timedelta(hours=3),
               1) == ["d"]
    # Then the rotation goes on after c.
    assert run(AssignmentMethod.ROUND_ROBIN, history, MEMBERS, START + timedelta(hours=4), 4) == [
        "c", "d", "a", "b"]


def test_round_robin_catches_up_after_cancellations() -> None:
    history: list[PastAssignment] = []
    run(AssignmentMethod.ROUND_ROBIN, history, MEMBERS, START, 8)  # two rounds
    # Both of b's bookings are cancelled: b goes first until it has caught
    # up, then the rotation continues after b.
    history = [PastAssignment(p.room, p.booked_at, BookingStatus.CANCELLED)
               if p.room == "b" else p for p in history]
    assert run(AssignmentMethod.ROUND_ROBIN, history, MEMBERS, START + timedelta(hours=5),
               6) == ["b", "b", "c", "d", "a", "b"]


def test_cycles_start_over_in_the_pools_zone() -> None:
    # Monday 2027-03-22 00:30 Berlin is still Sunday in UTC: a new week.
    history = [PastAssignment("a", datetime(2027, 3, 21, 22, tzinfo=UTC)),
               PastAssignment("a", datetime(2027, 3, 21, 22, 10, tzinfo=UTC)),
               PastAssignment("b", datetime(2027, 3, 21, 21, 0, tzinfo=UTC))]
    monday = datetime(2027, 3, 21, 23, 30, tzinfo=UTC)
    # In the week of Monday 22nd, a has 2 and b 0, so b is least booked.
    assert assign_room(pool(AssignmentMethod.LEAST_BOOKED), MEMBERS[:2], history,
                       now=monday) == "b"
    # A day cycle: on Monday, a's two count; b's (Sunday 22:00 Berlin) does not.
    day_pool = pool(AssignmentMethod.LEAST_BOOKED, ReportingCycle.DAY)
    assert assign_room(day_pool, ("a", "b"), history, now=monday) == "b"


@pytest.mark.parametrize(("cycle", "now", "start", "hours"), [
    (ReportingCycle.DAY, datetime(2027, 3, 28, 12, tzinfo=UTC),
     datetime(2027, 3, 27, 23, tzinfo=UTC), 23),
    (ReportingCycle.WEEK, datetime(2027, 3, 28, 12, tzinfo=UTC),
     datetime(2027, 3, 21, 23, tzinfo=UTC), 7 * 24 - 1),
    (ReportingCycle.MONTH, datetime(2027, 10, 31, 22, 30, tzinfo=UTC),
     datetime(2027, 9, 30, 22, tzinfo=UTC), 31 * 24 + 1),
    (ReportingCycle.MONTH, datetime(2027, 12, 31, 23, 30, tzinfo=UTC),
     datetime(2027, 12, 31, 23, tzinfo=UTC), 31 * 24),
])
def test_cycle_bounds_are_local(cycle: ReportingCycle, now: datetime, start: datetime,
                                hours: int) -> None:
    first, after = cycle_bounds(cycle, ZONE, now)
    assert first == start
    assert after - first == timedelta(hours=hours)
    assert first <= now < after


def test_random_is_uniform_and_reproducible() -> None:
    picks = [assign_room(pool(AssignmentMethod.RANDOM), MEMBERS[1:], [], now=START,
                         rng=random.Random(seed)) for seed in range(3000)]
    counts = Counter(picks)
    assert set(counts) == set(MEMBERS[1:])
    assert all(900 <= n <= 1100 for n in counts.values()), counts
    again = [assign_room(pool(AssignmentMethod.RANDOM), MEMBERS, [], now=START,
                         rng=random.Random(seed)) for seed in range(50)]
    assert again == [assign_room(pool(AssignmentMethod.RANDOM), MEMBERS, [], now=START,
                                 rng=random.Random(seed)) for seed in range(50)]
    with pytest.raises(ValueError, match="random generator"):
        assign_room(pool(AssignmentMethod.RANDOM), MEMBERS, [], now=START)


def test_preconditions_are_refused() -> None:
    with pytest.raises(ValueError, match="no free member"):
        assign_room(pool(AssignmentMethod.PRIORITY), (), [], now=START)
    with pytest.raises(ValueError, match="not members"):
        assign_room(pool(AssignmentMethod.PRIORITY), ("z",), [], now=START)


def test_history_from_bookings() -> None:
    booking = Booking(id="1", event_type="e", start=START, end=START + timedelta(hours=1),
                      owner="o", rooms={"rooms": "c", "other": "x"}, booked_at=START,
                      status=BookingStatus.CANCELLED)
    [past] = pool_history(pool(AssignmentMethod.PRIORITY), [booking])
    assert past == PastAssignment("c", START, BookingStatus.CANCELLED)
