"""SlotService's kept answers and BusyCache's change mark give exactly the
answers of the straightforward path: every state and busy row read from the
store, then ``find_slots`` and ``staleness`` (no test of speed here).

The store is written directly, as another process would, and through the
cache's own ``reload``, as this process's sync does; ``now`` moves within a
grid step, across steps and past ``stale_after``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.busy import BusyTimeline
from engine.core.model import (
    Booking,
    BookingStatus,
    Calendar,
    CalendarKind,
    ChangeSet,
    EventType,
    Interval,
    LocalRange,
    Pool,
    RemoteEvent,
    WorkingHours,
)
from engine.core.slots import find_slots
from engine.services import availability
from engine.services.availability import (
    ANSWERS_KEPT,
    BusyCache,
    SlotAnswer,
    SlotService,
    participants,
    staleness,
)
from engine.store import Store, migrate

T0 = datetime(2027, 3, 22, 8, 3, 17, tzinfo=UTC)  # a Monday, off the grid
ZONE = "Europe/Berlin"
WEEK = timedelta(days=7)
STALE_AFTER = timedelta(minutes=30)
EVERYTHING = Interval(datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))
SYNC_WINDOW = Interval(T0 - timedelta(days=1), T0 + timedelta(days=60))
ROOMS = ("room-a", "room-b", "room-c")
HOURS = WorkingHours({d: (LocalRange(time(9), time(17)),) for d in range(5)})
CALENDARS = {
    "alice": Calendar("alice", CalendarKind.PERSON, ZONE, HOURS),
    "bob": Calendar("bob", CalendarKind.PERSON, ZONE, HOURS),
    **{room: Calendar(room, CalendarKind.ROOM, ZONE) for room in ROOMS},
}
POOLS = {"rooms": Pool("rooms", ROOMS)}
EVENT_TYPES = {
    "meet": EventType(key="meet", title="Meet", duration=timedelta(minutes=30),
                      step=timedelta(minutes=15), owner="alice", pools=("rooms",),
                      min_notice=timedelta(hours=1), horizon=timedelta(days=20)),
    "pair": EventType(key="pair", title="Pair", duration=timedelta(hours=1),
                      step=timedelta(minutes=30), owner="alice", with_=("bob",),
                      pools=("rooms",), max_per_day=1),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("slot-answers") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


def open_copy(template: Path, folder: Path) -> Store:
    path = folder / "calpool.db"
    path.unlink(missing_ok=True)
    shutil.copyfile(template, path)
    return Store.open(f"sqlite:///{path}")


def service(store: Store) -> tuple[SlotService, BusyCache]:
    cache = BusyCache(CALENDARS)
    return SlotService(store, cache, calendars=CALENDARS, pools=POOLS,
                       event_types=EVENT_TYPES, stale_after=STALE_AFTER), cache


def straightforward(store: Store, key: str, window: Interval, now: datetime) -> SlotAnswer:
    """The answer from everything read afresh, through no cache."""
    event_type = EVENT_TYPES[key]
    with store.reader() as uow:
        states = {state.calendar: state for state in uow.calendars.sync_states()}
        intervals = uow.events.busy_intervals(list(CALENDARS), EVERYTHING)
        bookings = uow.bookings.active_touching(EVERYTHING)
    busy = {k: BusyTimeline.from_intervals(intervals.get(k, ())) for k in CALENDARS}
    slots = find_slots(event_type, calendars=CALENDARS, pools=POOLS, busy=busy,
                       bookings=bookings, window=window, now=now)
    stale = staleness(states, participants(event_type, POOLS), now=now,
                      stale_after=STALE_AFTER)
    return SlotAnswer(event_type, window, tuple(slots), stale)


def busy_batch(calendar: str, hours: float, length: float, *, cursor: str) -> ChangeSet:
    start = T0 + timedelta(hours=hours)
    source = f"{calendar}-{hours}"
    event = RemoteEvent(source=source, uid=source, start=start,
                        end=start + timedelta(hours=length))
    return ChangeSet(cursor=cursor, objects={source: (event,)})


def booking(booking_id: str, hours: float, room: str, *, key: str = "meet") -> Booking:
    start = T0.replace(minute=0, second=0) + timedelta(hours=hours)
    event_type = EVENT_TYPES[key]
    return Booking(id=booking_id, event_type=key, start=start,
                   end=start + event_type.duration, owner="alice", with_=event_type.with_,
                   rooms={"rooms": room}, status=BookingStatus.CONFIRMED, booked_at=T0)


Write = Callable[[Store, BusyCache, datetime], None]


def sync(calendar: str, hours: float, length: float) -> Write:
    def write(store: Store, _cache: BusyCache, now: datetime) -> None:
        with store.unit_of_work() as uow:
            uow.events.apply_changes(calendar, busy_batch(calendar, hours, length,
                                                          cursor=str(now)), SYNC_WINDOW, now)
            uow.commit()
    return write


def sync_nothing(calendar: str, *, here: bool) -> Write:
    """A sync that changes nothing: moves the last success, not the version;
    ``here`` tells this process's cache, as the sync service does."""
    def write(store: Store, cache: BusyCache, now: datetime) -> None:
        with store.unit_of_work() as uow:
            uow.events.apply_changes(calendar, ChangeSet(cursor=str(now), objects={}),
                                     SYNC_WINDOW, now)
            uow.commit()
        if here:
            cache.reload(store, [calendar])
    return write


def fail(calendar: str, error: str) -> Write:
    def write(store: Store, _cache: BusyCache, now: datetime) -> None:
        with store.unit_of_work() as uow:
            uow.calendars.record_failure(calendar, now, error)
            uow.commit()
    return write


def book(booking_id: str, hours: float, room: str, key: str = "meet") -> Write:
    def write(store: Store, _cache: BusyCache, _now: datetime) -> None:
        with store.unit_of_work() as uow:
            uow.bookings.reserve(booking(booking_id, hours, room, key=key))
            uow.commit()
    return write


def cancel(booking_id: str) -> Write:
    def write(store: Store, _cache: BusyCache, now: datetime) -> None:
        with store.unit_of_work() as uow:
            if uow.bookings.get(booking_id) is not None:
                uow.bookings.set_status(booking_id, BookingStatus.CANCELLED, now)
            uow.commit()
    return write


def sync_all(store: Store, cache: BusyCache, now: datetime) -> None:
    for calendar in CALENDARS:
        sync_nothing(calendar, here=False)(store, cache, now)


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Iterator[Store]:
    opened = open_copy(template, tmp_path)
    yield opened
    opened.close()


def check(slot_service: SlotService, store: Store, key: str, window: Interval,
          now: datetime) -> SlotAnswer:
    answer = slot_service.slots(key, window, now=now)
    assert answer == straightforward(store, key, window, now)
    return answer


def test_a_repeated_query_reuses_the_answer_while_now_moves_within_a_step(
        store: Store) -> None:
    slot_service, cache = service(store)
    sync_all(store, cache, T0)
    first = check(slot_service, store, "meet", Interval(T0, T0 + WEEK), T0)
    assert first.slots
    # The default window starts at now: a few minutes later it is another
    # window, but the same grid starts.
    later = T0 + timedelta(minutes=4)
    again = check(slot_service, store, "meet", Interval(later, later + WEEK), later)
    assert again.slots is first.slots
    # Past the next grid point, one slot fewer may be offered: a new answer.
    next_step = T0 + timedelta(minutes=20)
    moved = check(slot_service, store, "meet", Interval(next_step, next_step + WEEK),
                  next_step)
    assert moved.slots is not first.slots


def test_a_change_by_another_process_is_seen_by_the_next_query(store: Store) -> None:
    slot_service, cache = service(store)
    sync_all(store, cache, T0)
    window = Interval(T0, T0 + WEEK)
    before = check(slot_service, store, "meet", window, T0)
    # room-a busy for all of Tuesday, written as another process would.
    sync("room-a", 16, 24)(store, cache, T0)
    after = check(slot_service, store, "meet", window, T0)
    assert after.slots != before.slots
    book("b1", 27, "room-b")(store, cache, T0)
    booked = check(slot_service, store, "meet", window, T0)
    assert booked.slots != after.slots
    cancel("b1")(store, cache, T0)
    assert check(slot_service, store, "meet", window, T0).slots == after.slots


def test_staleness_follows_the_clock_and_syncs_that_change_nothing(store: Store) -> None:
    slot_service, cache = service(store)
    window = Interval(T0, T0 + WEEK)
    never = check(slot_service, store, "meet", window, T0)
    assert {s.reason for s in never.stale_calendars} == {"never_synced"}
    sync_all(store, cache, T0)
    assert check(slot_service, store, "meet", window, T0).stale_calendars == ()
    # Nothing written, only time passing: every calendar goes stale.
    late = T0 + STALE_AFTER + timedelta(minutes=1)
    stale = check(slot_service, store, "meet", window, late)
    assert len(stale.stale_calendars) == 4
    # A sync that changes nothing moves no version but heals staleness.
    sync_nothing("room-b", here=False)(store, cache, late)
    assert len(check(slot_service, store, "meet", window, late).stale_calendars) == 3
    fail("room-c", "HTTP 503")(store, cache, late)
    failed = check(slot_service, store, "meet", window, late)
    assert ("room-c", "failed") in {(s.calendar, s.reason) for s in failed.stale_calendars}
    fail("room-c", "HTTP 500")(store, cache, late + timedelta(seconds=1))
    refailed = check(slot_service, store, "meet", window, late)
    assert "HTTP 500" in {s.error for s in refailed.stale_calendars}


def test_answers_kept_are_bounded(store: Store) -> None:
    slot_service, cache = service(store)
    sync_all(store, cache, T0)
    windows = [Interval(T0 + timedelta(hours=h), T0 + timedelta(hours=h) + WEEK)
               for h in range(ANSWERS_KEPT + 1)]
    first = slot_service.slots("meet", windows[0], now=T0)
    assert slot_service.slots("meet", windows[0], now=T0).slots is first.slots
    for window in windows[1:]:
        slot_service.slots("meet", window, now=T0)
    # The oldest answer made room for the newest: computed again, equal.
    again = slot_service.slots("meet", windows[0], now=T0)
    assert again.slots is not first.slots and again.slots == first.slots


def test_a_new_window_over_kept_days_evaluates_none_of_them(store: Store) -> None:
    slot_service, cache = service(store)
    sync_all(store, cache, T0)
    check(slot_service, store, "meet", Interval(T0, T0 + WEEK), T0)
    evaluated = slot_service.days_evaluated
    assert evaluated == 8  # the window's starts touch 8 UTC days
    # Windows a step, an hour and a day later: only the one new day is evaluated.
    for shift in (timedelta(minutes=15), timedelta(hours=1)):
        check(slot_service, store, "meet", Interval(T0 + shift, T0 + shift + WEEK), T0)
    assert slot_service.days_evaluated == evaluated
    day = T0 + timedelta(days=1)
    check(slot_service, store, "meet", Interval(day, day + WEEK), T0)
    assert slot_service.days_evaluated == evaluated + 1
    # A change in one room is another content: its windows are evaluated anew.
    sync("room-a", 30, 2)(store, cache, T0)
    check(slot_service, store, "meet", Interval(T0, T0 + WEEK), T0)
    assert slot_service.days_evaluated == evaluated + 1 + 8


def test_day_blocks_kept_are_bounded(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(availability, "BLOCKS_KEPT", 10)
    monkeypatch.setattr(availability, "ANSWERS_KEPT", 0)  # every window from the days
    slot_service, cache = service(store)
    sync_all(store, cache, T0)
    for days in range(0, 19, 6):
        begin = T0 + timedelta(days=days)
        check(slot_service, store, "meet", Interval(begin, begin + WEEK), T0)
        assert slot_service.days_kept <= 10
    # The first week's days were let go: asked again, they are evaluated anew.
    before = slot_service.days_evaluated
    check(slot_service, store, "meet", Interval(T0, T0 + WEEK), T0)
    assert slot_service.days_evaluated > before


WRITES: list[Write] = [
    sync("room-a", 26, 3), sync("room-b", 27.5, 1), sync("alice", 49, 2), sync("bob", 25, 4),
    sync_nothing("room-c", here=True), sync_nothing("alice", here=False),
    fail("room-b", "timeout"), fail("alice", "HTTP 503"),
    book("b1", 26, "room-c"), book("b2", 50, "room-a"), book("b3", 28, "room-b", "pair"),
    cancel("b1"), cancel("b3"),
]
steps = st.lists(
    st.tuples(st.integers(0, len(WRITES) - 1),                 # what happens, then
              st.integers(0, 40),                              # minutes on the clock
              st.sampled_from(["meet", "pair"]),
              st.one_of(st.none(), st.integers(0, 21 * 24 * 60)),  # window start, minutes
              st.sampled_from([WEEK, timedelta(days=1), timedelta(hours=3),
                               timedelta(days=10)])),           # window length
    min_size=1, max_size=12)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_every_answer_equals_the_straightforward_one(
        template: Path, tmp_path: Path,
        steps: list[tuple[int, int, str, int | None, timedelta]]) -> None:
    store = open_copy(template, tmp_path)
    try:
        slot_service, cache = service(store)
        now = T0
        sync_all(store, cache, now)
        for write, minutes, key, start, length in steps:
            now += timedelta(minutes=minutes)
            try:
                WRITES[write](store, cache, now)
            except Exception as exc:  # a booking already there or overlapping
                assert type(exc).__module__.startswith("engine.store")
            begin = now if start is None else T0 + timedelta(minutes=start)
            check(slot_service, store, key, Interval(begin, begin + length), now)
    finally:
        store.close()


def test_unchanged_polls_leave_the_states_as_read_until_one_would_look_stale(
    store: Store,
) -> None:
    """Issue 24: every unchanged poll of 500 calendars made the next slot
    query read all 500 sync states again.  Now a poll that changes nothing is
    not seen by the query until the kept copy would call that calendar stale;
    then the states are read anew and the newer success counts."""
    slot_service, cache = service(store)
    window = Interval(T0, T0 + WEEK)
    sync_all(store, cache, T0)
    first = cache.refresh(store, now=T0, stale_after=STALE_AFTER)
    later = T0 + timedelta(minutes=5)
    for key in ("alice", "room-a", "room-b"):
        sync_nothing(key, here=False)(store, cache, later)
    assert cache.refresh(store, now=later, stale_after=STALE_AFTER) is first
    assert check(slot_service, store, "meet", window, later).stale_calendars == ()
    # Past T0 + stale_after the kept copy would call them stale: read anew.
    past = T0 + STALE_AFTER + timedelta(seconds=1)
    states = cache.refresh(store, now=past, stale_after=STALE_AFTER)
    assert states is not first and states["alice"].last_success_at == later
    assert {s.calendar for s in check(slot_service, store, "meet", window, past)
            .stale_calendars} == {"room-c"}  # not polled since T0 (bob is not in "meet")
