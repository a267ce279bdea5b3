"""check_start: each rejection reason, in order, and bookings as busy time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from engine.core.availability import MissingCalendarError
from engine.core.busy import BusyTimeline
from engine.core.model import (
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
from engine.core.slots import SlotCheck, SlotRejection, check_start, find_slots

NOW = datetime(2027, 6, 14, 6, 0, tzinfo=UTC)  # a Monday; 08:00 in Berlin
NINE = datetime(2027, 6, 15, 7, 0, tzinfo=UTC)  # Tuesday 09:00 Berlin
WEEKDAYS = WorkingHours({d: (LocalRange(time(9), time(17)),) for d in range(5)})
CALENDARS = {
    "alice": Calendar("alice", CalendarKind.PERSON, "Europe/Berlin", WEEKDAYS),
    "bob": Calendar("bob", CalendarKind.PERSON, "Europe/London"),
    "r1": Calendar("r1", CalendarKind.ROOM, "Europe/Berlin"),
    "r2": Calendar("r2", CalendarKind.ROOM, "Europe/Berlin"),
}
POOLS = {"rooms": Pool("rooms", ("r1", "r2"))}
EVENT = EventType(key="meet", title="Meet", duration=timedelta(minutes=30),
                  step=timedelta(minutes=30), owner="alice", with_=("bob",), pools=("rooms",),
                  buffer_before=timedelta(minutes=10), min_notice=timedelta(hours=2),
                  horizon=timedelta(days=7), max_per_day=1)


def busy_at(**spans: tuple[datetime, datetime]) -> dict[str, BusyTimeline]:
    timelines = {key: BusyTimeline() for key in CALENDARS}
    for key, (start, end) in spans.items():
        timelines[key] = BusyTimeline.from_intervals([Interval(start, end)])
    return timelines


def booking(start: datetime, *, status: BookingStatus = BookingStatus.PENDING,
            event_type: str = "other", rooms: dict[str, str] | None = None) -> Booking:
    return Booking(id=f"b-{start:%H%M}-{status}", event_type=event_type, start=start,
                   end=start + timedelta(minutes=30), owner="alice", rooms=rooms or {},
                   status=status, booked_at=NOW)


def check(start: datetime, *, busy: dict[str, BusyTimeline] | None = None,
          bookings: tuple[Booking, ...] = ()) -> SlotCheck:
    return check_start(EVENT, start, calendars=CALENDARS, pools=POOLS,
                       busy=busy or busy_at(), bookings=bookings, now=NOW)


def test_a_free_start_lists_its_free_rooms() -> None:
    verdict = check(NINE, busy=busy_at(r1=(NINE, NINE + timedelta(hours=1))))
    assert verdict.ok and verdict.reason is None
    assert dict(verdict.rooms_available) == {"rooms": ("r2",)}


@pytest.mark.parametrize(("start", "reason"), [
    (NINE + timedelta(minutes=10), SlotRejection.OFF_GRID),
    (NOW - timedelta(hours=1), SlotRejection.PAST),
    (NOW + timedelta(hours=1), SlotRejection.MIN_NOTICE),
    (NINE + timedelta(days=7), SlotRejection.HORIZON),
    (NINE - timedelta(minutes=30), SlotRejection.OUTSIDE_HOURS),  # 08:30 Berlin
    (NINE + timedelta(hours=8), SlotRejection.OUTSIDE_HOURS),  # 17:00 Berlin
    (datetime(2027, 6, 19, 9, tzinfo=UTC), SlotRejection.OUTSIDE_HOURS),  # Saturday
])
def test_rules_before_busy_time(start: datetime, reason: SlotRejection) -> None:
    verdict = check(start)
    assert verdict.reason is reason and not verdict.ok


def test_last_start_that_fits_the_hours_is_accepted() -> None:
    assert check(NINE + timedelta(hours=7, minutes=30)).ok  # 16:30-17:00 Berlin


def test_buffer_before_makes_owner_busy() -> None:
    # Busy until 08:55 Berlin: the 10-minute buffer before 09:00 overlaps it.
    busy = busy_at(alice=(NINE - timedelta(hours=1), NINE - timedelta(minutes=5)))
    assert check(NINE, busy=busy).reason is SlotRejection.OWNER_BUSY
    busy = busy_at(alice=(NINE - timedelta(hours=1), NINE - timedelta(minutes=10)))
    assert check(NINE, busy=busy).ok


def test_with_person_busy() -> None:
    busy = busy_at(bob=(NINE + timedelta(minutes=29), NINE + timedelta(hours=1)))
    assert check(NINE, busy=busy).reason is SlotRejection.PERSON_BUSY


def test_no_room_when_every_member_is_busy() -> None:
    busy = busy_at(r1=(NINE, NINE + timedelta(hours=1)), r2=(NINE, NINE + timedelta(hours=1)))
    assert check(NINE, busy=busy).reason is SlotRejection.NO_ROOM


def test_daily_limit_counts_active_bookings_of_the_event_type_on_the_local_day() -> None:
    # 23:30 UTC on Monday is already Tuesday in Berlin.
    late = booking(datetime(2027, 6, 14, 23, 30, tzinfo=UTC), event_type="meet")
    assert check(NINE, bookings=(late,)).reason is SlotRejection.DAILY_LIMIT
    cancelled = booking(late.start, event_type="meet", status=BookingStatus.CANCELLED)
    other_type = booking(late.start, event_type="other")
    assert check(NINE, bookings=(cancelled, other_type)).ok


def test_pending_bookings_are_busy_and_cancelled_ones_are_not() -> None:
    held = booking(NINE, rooms={"rooms": "r1"})
    assert check(NINE, bookings=(held,)).reason is SlotRejection.OWNER_BUSY
    for status in (BookingStatus.CANCELLED, BookingStatus.FAILED):
        assert check(NINE, bookings=(booking(NINE, status=status),)).ok
    # A booking of bob's with a room holds that room for everyone else.
    room_held = Booking(id="x", event_type="other", start=NINE, end=NINE + timedelta(hours=1),
                        owner="bob", rooms={"rooms": "r1"}, booked_at=NOW,
                        status=BookingStatus.CONFIRMED)
    assert check(NINE, bookings=(room_held,)).reason is SlotRejection.PERSON_BUSY
    other_owner = EventType(key="solo", title="Solo", duration=timedelta(minutes=30),
                            step=timedelta(minutes=30), owner="alice", pools=("rooms",))
    verdict = check_start(other_owner, NINE, calendars=CALENDARS, pools=POOLS,
                          busy=busy_at(), bookings=(room_held,), now=NOW)
    assert dict(verdict.rooms_available) == {"rooms": ("r2",)}


def test_unknown_calendar_is_named() -> None:
    with pytest.raises(MissingCalendarError, match="'bob'"):
        check_start(EVENT, NINE, calendars=CALENDARS, pools=POOLS,
                    busy={k: v for k, v in busy_at().items() if k != "bob"}, bookings=(),
                    now=NOW)


def test_listing_and_check_agree_over_a_week() -> None:
    busy = busy_at(alice=(NINE, NINE + timedelta(hours=2)), r1=(NINE, NINE + timedelta(days=1)))
    bookings = (booking(NINE + timedelta(days=1, hours=3), event_type="meet"),)
    window = Interval(NOW, NOW + timedelta(days=7))
    slots = find_slots(EVENT, calendars=CALENDARS, pools=POOLS, busy=busy, bookings=bookings,
                       window=window, now=NOW)
    listed = {s.start for s in slots}
    assert listed  # some slots exist, so the comparison below means something
    start = window.start
    while start < window.end:
        assert check(start, busy=busy, bookings=bookings).ok == (start in listed), start
        start += timedelta(minutes=30)
