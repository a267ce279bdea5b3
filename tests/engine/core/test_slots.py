"""Pooled slots against the minute-by-minute reference, and the direct
guarantees of every offered slot."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.busy import BusyTimeline
from engine.core.model import (
    Attendee,
    Booking,
    BookingStatus,
    Calendar,
    CalendarKind,
    EventType,
    Interval,
    LocalRange,
    Pool,
    WorkingHours,
)
from engine.core.slots import check_start, find_slots, grid_points, slot_starts, slots_at
from engine.core.zones import to_us
from tests.engine.core.reference import Reference

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
# Days of DST changes in those zones, and one quiet day.
DAYS = [date(2027, 3, 28), date(2027, 10, 31), date(2027, 3, 14), date(2027, 11, 7),
        date(2027, 10, 3), date(2027, 4, 4), date(2027, 6, 16)]
M = timedelta(minutes=1)


def minutes(n: int) -> timedelta:
    return n * M


@st.composite
def local_ranges(draw: st.DrawFn) -> tuple[LocalRange, ...]:
    count = draw(st.sampled_from([0, 1, 1, 2]))
    ranges = []
    for _ in range(count):
        start = draw(st.integers(0, 47)) * 30
        end = draw(st.integers(start // 15 + 1, 96)) * 15
        ranges.append(LocalRange(time(start // 60, start % 60),
                                 time(0) if end == 1440 else time(end // 60, end % 60)))
    return tuple(ranges)


@st.composite
def working_hours(draw: st.DrawFn, day: date) -> WorkingHours | None:
    if draw(st.integers(0, 2)) == 0:
        return None
    weekly = {d: draw(local_ranges()) for d in range(7) if draw(st.integers(0, 3)) > 0}
    overrides = {}
    if draw(st.booleans()):
        overrides[day + timedelta(days=draw(st.integers(-1, 1)))] = draw(local_ranges())
    return WorkingHours(weekly, overrides)


@st.composite
def spans(draw: st.DrawFn, lo: datetime, hi: datetime, most: int) -> list[Interval]:
    total = int((hi - lo) / M)
    found = []
    for _ in range(draw(st.integers(0, most))):
        start = lo + minutes(draw(st.integers(0, total)))
        found.append(Interval(start, start + minutes(draw(st.integers(1, 240)))))
    return found


@st.composite
def scenarios(draw: st.DrawFn, *, with_hours: bool = True, rooms: int = 3,
              events: int = 4) -> dict[str, object]:
    day = draw(st.sampled_from(DAYS))
    window_start = datetime.combine(day, time(0), UTC) + minutes(
        draw(st.integers(-14 * 60, 14 * 60)))
    window = Interval(window_start, window_start + minutes(draw(st.integers(60, 36 * 60))))
    persons = ["owner"] + [f"person-{i}" for i in range(draw(st.integers(0, 1)))]
    pool_sizes = draw(st.lists(st.integers(1, rooms), min_size=1, max_size=2))
    calendars: dict[str, Calendar] = {}
    for key in persons:
        hours = draw(working_hours(day)) if with_hours else None
        calendars[key] = Calendar(key, CalendarKind.PERSON, draw(st.sampled_from(ZONES)), hours)
    pools: dict[str, Pool] = {}
    for p, size in enumerate(pool_sizes):
        members = tuple(f"room-{p}-{i}" for i in range(size))
        for key in members:
            # Rooms mostly have no hours, so pools are not empty too often.
            hours = draw(working_hours(day)) if with_hours and draw(st.booleans()) else None
            calendars[key] = Calendar(key, CalendarKind.ROOM, draw(st.sampled_from(ZONES)), hours)
        pools[f"pool-{p}"] = Pool(f"pool-{p}", members)
    event_type = EventType(
        key="meet", title="Meet", owner="owner", with_=tuple(persons[1:]),
        pools=tuple(pools),
        duration=minutes(draw(st.sampled_from([5, 15, 30, 45, 60, 90]))),
        step=minutes(draw(st.sampled_from([5, 10, 15, 20, 30, 45, 60]))),
        buffer_before=minutes(draw(st.sampled_from([0, 5, 15, 30]))),
        buffer_after=minutes(draw(st.sampled_from([0, 10, 30]))),
        min_notice=minutes(draw(st.sampled_from([0, 30, 180]))),
        horizon=timedelta(days=draw(st.sampled_from([1, 3]))),
        max_per_day=draw(st.integers(0, 2)),
    )
    lo, hi = window.start - timedelta(hours=4), window.end + timedelta(hours=4)
    busy = {key: draw(spans(lo, hi, events)) for key in calendars}
    keys = list(calendars)
    bookings = []
    for i, interval in enumerate(draw(spans(lo, hi, 4))):
        owner = draw(st.sampled_from(["owner", *keys]))
        rooms_of: dict[str, str] = {}
        for key, one in pools.items():
            if draw(st.booleans()):
                rooms_of[key] = draw(st.sampled_from(one.members))
        bookings.append(Booking(
            id=f"b{i}", event_type=draw(st.sampled_from(["meet", "other"])),
            start=interval.start, end=interval.end, owner=owner, rooms=rooms_of,
            status=draw(st.sampled_from(list(BookingStatus))),
            booked_at=window.start - timedelta(days=1), attendee=Attendee("A", "a@x.example")))
    now = window.start + minutes(draw(st.integers(-600, 60)))
    return {"event_type": event_type, "calendars": calendars, "pools": pools, "busy": busy,
            "bookings": bookings, "window": window, "now": now}


def engine_args(case: dict[str, object]) -> dict[str, object]:
    busy = case["busy"]
    assert isinstance(busy, dict)
    return {"calendars": case["calendars"], "pools": case["pools"],
            "busy": {k: BusyTimeline.from_intervals(v) for k, v in busy.items()},
            "bookings": case["bookings"], "now": case["now"]}


def reference_of(case: dict[str, object]) -> Reference:
    window = case["window"]
    assert isinstance(window, Interval)
    return Reference(case["event_type"], case["calendars"], case["pools"],  # type: ignore[arg-type]
                     case["busy"], case["bookings"], case["now"], window)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.data())
def test_slots_equal_the_minute_by_minute_reference(case: dict[str, object],
                                                    data: st.DataObject) -> None:
    event_type = case["event_type"]
    window = case["window"]
    assert isinstance(event_type, EventType) and isinstance(window, Interval)
    args = engine_args(case)
    slots = find_slots(event_type, window=window, **args)  # type: ignore[arg-type]
    reference = reference_of(case)
    expected = reference.slots(window)
    assert [(s.start, dict(s.rooms_available)) for s in slots] == expected
    assert all(s.end - s.start == event_type.duration for s in slots)
    # check_start agrees with the listing, on listed starts and on others.
    listed = {s.start: dict(s.rooms_available) for s in slots}
    total = int(window.duration / M)
    probes = list(listed)[:10] + [window.start + minutes(data.draw(st.integers(0, total - 1)))
                                  for _ in range(10)]
    for start in probes:
        verdict = check_start(event_type, start, **args)  # type: ignore[arg-type]
        assert verdict.ok == (start in listed), (start, verdict)
        if verdict.ok:
            assert dict(verdict.rooms_available) == listed[start]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(with_hours=False, rooms=8, events=25))
def test_every_offered_slot_has_everyone_free_with_buffers(case: dict[str, object]) -> None:
    event_type = case["event_type"]
    window = case["window"]
    busy = case["busy"]
    bookings = case["bookings"]
    pools = case["pools"]
    assert isinstance(event_type, EventType) and isinstance(window, Interval)
    assert isinstance(busy, dict) and isinstance(bookings, list) and isinstance(pools, dict)
    slots = find_slots(event_type, window=window, **engine_args(case))  # type: ignore[arg-type]

    def free(key: str, slot_start: datetime) -> bool:
        lo = slot_start - event_type.buffer_before
        hi = slot_start + event_type.duration + event_type.buffer_after
        taken = [i for i in busy[key]] + [b.interval for b in bookings
                                         if b.status.is_active and key in b.calendars]
        return not any(i.start < hi and lo < i.end for i in taken)

    for slot in slots:
        assert window.start <= slot.start < window.end
        for person in event_type.persons:
            assert free(person, slot.start)
        assert set(slot.rooms_available) == set(event_type.pools)
        for key, members in slot.rooms_available.items():
            assert members, "a slot needs a free member of every pool"
            assert list(members) == [m for m in pools[key].members if free(m, slot.start)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.data())
def test_a_wider_grid_evaluated_in_pieces_and_cut_to_the_window_gives_its_slots(
        case: dict[str, object], data: st.DataObject) -> None:
    """What lets the slot service keep slots per day for every window: the
    slots of a window are those of any span of the grid holding its starts,
    evaluated in pieces cut anywhere, whose start is among the window's."""
    event_type = case["event_type"]
    window = case["window"]
    assert isinstance(event_type, EventType) and isinstance(window, Interval)
    args = engine_args(case)
    now = args.pop("now")
    assert isinstance(now, datetime)
    expected = find_slots(event_type, window=window, now=now, **args)  # type: ignore[arg-type]
    starts = slot_starts(event_type, calendars=case["calendars"],  # type: ignore[arg-type]
                         window=window, now=now)
    low = to_us(window.start) - data.draw(st.integers(0, 30 * 60)) * 60_000_000
    high = to_us(window.end) + data.draw(st.integers(0, 30 * 60)) * 60_000_000
    cuts = sorted(data.draw(st.lists(st.integers(low, high), max_size=3)))
    pieces = []
    for a, b in zip([low, *cuts], [*cuts, high], strict=True):
        points, days = grid_points(event_type, case["calendars"], a, b)  # type: ignore[arg-type]
        pieces.extend(slots_at(event_type, points, days, **args))  # type: ignore[arg-type]
    wanted = set(starts.tolist())
    assert [s for s in pieces if to_us(s.start) in wanted] == expected
