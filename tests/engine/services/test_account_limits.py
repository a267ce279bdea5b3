"""Per-account limits (``engine.services.limits``) over the in-memory
connector: calls in flight never exceed ``max_concurrent``; after a
throttle that names its wait, every caller of the account waits it out
(with a clock the test moves, nothing really sleeps); a cool-down longer
than a caller would sleep refuses its call unsent; every request of the
port goes through the limit."""

from __future__ import annotations

import contextlib
import inspect
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.memory import Fault, FaultKind, MemoryConnector, MemoryProvider, Operation
from connectors.memory.events import MemoryEvent
from engine.core.model import ChangeSet, Interval, RemoteEvent
from engine.errors import PermanentError, RateLimited
from engine.ports import (
    CalendarConnector,
    CalendarRef,
    EventDraft,
    EventState,
    FreeBusy,
    Notification,
    PushChannel,
    WrittenEvent,
)
from engine.services.limits import AccountLimit, LimitedConnector, LimitTiming, limited

NOW = datetime(2027, 3, 1, 7, tzinfo=UTC)
WINDOW = Interval(NOW, NOW + timedelta(days=1))
A, B = CalendarRef("a"), CalendarRef("b")


class FakeTime:
    """Monotonic seconds that move only when someone sleeps (or the test
    says so); every sleep is recorded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def timing(self, max_wait: float = 60.0) -> LimitTiming:
        return LimitTiming(clock=self.clock, sleep=self.sleep, max_wait=max_wait)


class Stamped:
    """The memory connector, noting when (by the fake clock) each call
    reached it: what the provider saw."""

    def __init__(self, inner: MemoryConnector, time_: FakeTime) -> None:
        self.inner = inner
        self.time = time_
        self.calls: list[tuple[str, float]] = []

    def _stamp(self, name: str) -> None:
        self.calls.append((name, self.time.clock()))

    @property
    def push_supported(self) -> bool:
        return self.inner.push_supported

    def list_window(self, calendar: CalendarRef, window: Interval) -> ChangeSet:
        self._stamp("list_window")
        return self.inner.list_window(calendar, window)

    def changes_since(self, calendar: CalendarRef, cursor: str, window: Interval) -> ChangeSet:
        self._stamp("changes_since")
        return self.inner.changes_since(calendar, cursor, window)

    def current_cursors(self, cursors: Mapping[CalendarRef, str]) -> frozenset[str]:
        self._stamp("current_cursors")
        return self.inner.current_cursors(cursors)

    def events_in(self, calendar: CalendarRef, window: Interval) -> tuple[RemoteEvent, ...]:
        self._stamp("events_in")
        return self.inner.events_in(calendar, window)

    def free_busy(self, calendars: Sequence[CalendarRef], window: Interval) -> FreeBusy:
        self._stamp("free_busy")
        return self.inner.free_busy(calendars, window)

    def read_event(self, calendar: CalendarRef, booking_id: str, *,
                   source: str = "") -> EventState | None:
        self._stamp("read_event")
        return self.inner.read_event(calendar, booking_id, source=source)

    def create_event(self, calendar: CalendarRef, draft: EventDraft) -> WrittenEvent:
        self._stamp("create_event")
        return self.inner.create_event(calendar, draft)

    def update_event(self, calendar: CalendarRef, draft: EventDraft, *,
                     etag: str | None = None, source: str = "") -> WrittenEvent:
        self._stamp("update_event")
        return self.inner.update_event(calendar, draft, etag=etag, source=source)

    def delete_event(self, calendar: CalendarRef, booking_id: str, *, source: str = "") -> None:
        self._stamp("delete_event")
        self.inner.delete_event(calendar, booking_id, source=source)

    def start_channel(self, calendar: CalendarRef, *, address: str, token: str,
                      ttl_seconds: int) -> PushChannel | None:
        self._stamp("start_channel")
        return self.inner.start_channel(calendar, address=address, token=token,
                                        ttl_seconds=ttl_seconds)

    def renew_channel(self, channel: PushChannel, *, ttl_seconds: int) -> PushChannel:
        self._stamp("renew_channel")
        return self.inner.renew_channel(channel, ttl_seconds=ttl_seconds)

    def stop_channel(self, channel: PushChannel) -> None:
        self._stamp("stop_channel")
        self.inner.stop_channel(channel)

    def parse_notification(self, headers: Mapping[str, str], body: bytes,
                           query: Mapping[str, str] | None = None) -> tuple[Notification, ...]:
        self._stamp("parse_notification")
        return self.inner.parse_notification(headers, body, query)


class Blocking(Stamped):
    """A provider that holds every listing until the test opens ``gate``,
    counting the calls inside at once."""

    def __init__(self, inner: MemoryConnector, time_: FakeTime) -> None:
        super().__init__(inner, time_)
        self.gate = threading.Event()
        self._lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0

    def list_window(self, calendar: CalendarRef, window: Interval) -> ChangeSet:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            assert self.gate.wait(10), "the test never opened the gate"
            return super().list_window(calendar, window)
        finally:
            with self._lock:
                self.inside -= 1


def memory_provider() -> MemoryProvider:
    provider = MemoryProvider()
    for calendar in ("a", "b"):
        provider.add_calendar(calendar)
    provider.put("a", "busy", MemoryEvent(uid="busy", start=NOW + timedelta(hours=1),
                                          end=NOW + timedelta(hours=2)))
    return provider


def throttle(provider: MemoryProvider, retry_after: float | None,
             operations: frozenset[Operation] = frozenset()) -> None:
    provider.inject(Fault(kind=FaultKind.THROTTLED, retry_after=retry_after,
                          operations=operations))


def draft(booking: str = "b1") -> EventDraft:
    return EventDraft(booking_id=booking, title="Consult", start=NOW + timedelta(hours=3),
                      end=NOW + timedelta(hours=4))


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


# -- calls in flight ------------------------------------------------------------------


def run_blocked_callers(limit: int, callers: int) -> tuple[Blocking, LimitedConnector,
                                                            list[BaseException]]:
    fake = FakeTime()
    provider = Blocking(MemoryConnector(memory_provider()), fake)
    connector = limited(provider, "acme", max_concurrent=limit, timing=fake.timing())
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            connector.list_window(A, WINDOW)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    wait_until(lambda: provider.inside == min(limit, callers))
    time.sleep(0.02)  # room for one caller too many to get in, if the limit let it
    assert connector.limit.state().in_flight == min(limit, callers)
    provider.gate.set()
    for thread in threads:
        thread.join(10)
    return provider, connector, errors


def test_calls_in_flight_never_exceed_max_concurrent() -> None:
    provider, connector, errors = run_blocked_callers(limit=3, callers=12)
    assert errors == []
    assert provider.most_inside == 3
    assert len(provider.calls) == 12  # the rest waited their turn, none was refused
    assert connector.limit.state().in_flight == 0


@settings(max_examples=15, deadline=None)
@given(limit=st.integers(1, 4), callers=st.integers(1, 7))
def test_the_limit_holds_for_any_number_of_callers(limit: int, callers: int) -> None:
    provider, _, errors = run_blocked_callers(limit, callers)
    assert errors == []
    assert provider.most_inside == min(limit, callers)


def test_a_limit_of_zero_or_less_is_refused() -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match="at least 1"):
            AccountLimit("acme", max_concurrent=bad)


# -- throttles ------------------------------------------------------------------------


def test_callers_queued_for_a_slot_are_not_stranded_by_a_long_cool_down() -> None:
    """Regression: with one slot taken and two callers queued for it, the
    call in flight meets a 300 s throttle.  Both queued callers must come
    back (refused unsent, the cool-down being longer than they sleep), not
    wait on for a slot that nobody will hand them."""
    fake = FakeTime()
    memory = memory_provider()
    provider = Blocking(MemoryConnector(memory), fake)
    connector = limited(provider, "acme", max_concurrent=1, timing=fake.timing(max_wait=10))
    throttle(memory, 300)
    outcomes: list[str] = []

    def caller() -> None:
        try:
            connector.list_window(A, WINDOW)
            outcomes.append("sent")
        except RateLimited as exc:
            outcomes.append("cooling" if "cooling down" in str(exc) else "throttled")

    first = threading.Thread(target=caller, daemon=True)
    first.start()
    wait_until(lambda: provider.inside == 1)
    queued = [threading.Thread(target=caller, daemon=True) for _ in range(2)]
    for thread in queued:
        thread.start()
    time.sleep(0.05)  # both are queued behind the one slot
    provider.gate.set()
    for thread in (first, *queued):
        thread.join(5)
        assert not thread.is_alive(), "a queued caller was stranded"
    assert sorted(outcomes) == ["cooling", "cooling", "throttled"]
    assert len(provider.calls) == 1



def test_a_throttle_makes_every_caller_of_the_account_wait_until_retry_after() -> None:
    """Sync met the 429; the outbox's write and the live re-check's
    free/busy, on other calendars, wait the 30 s out before they reach the
    provider, instead of only the sync job."""
    fake = FakeTime()
    memory = memory_provider()
    provider = Stamped(MemoryConnector(memory), fake)
    connector = limited(provider, "acme", max_concurrent=4, timing=fake.timing())
    throttle(memory, 30, frozenset({Operation.LIST}))
    met_at = fake.clock()
    with pytest.raises(RateLimited) as raised:
        connector.list_window(A, WINDOW)  # the caller that met it gets it as it was
    assert raised.value.retry_after == 30
    assert connector.limit.state().cooling_for == 30

    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(connector.create_event(B, draft()))),
        threading.Thread(target=lambda: results.append(connector.free_busy([A, B], WINDOW))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 2
    after = [at for name, at in provider.calls[1:]]
    assert sorted(name for name, _ in provider.calls[1:]) == ["create_event", "free_busy"]
    assert all(at >= met_at + 30 for at in after)
    assert fake.sleeps and all(0 < s <= 30 for s in fake.sleeps)
    # The one that met a throttle waits too before its next call.
    throttle(memory, 5)
    with pytest.raises(RateLimited):
        connector.list_window(A, WINDOW)
    met_again = fake.clock()
    before = len(fake.sleeps)
    connector.list_window(A, WINDOW)
    assert fake.sleeps[before:] == [5]
    assert provider.calls[-1][1] == met_again + 5


def test_a_throttle_on_one_account_slows_that_account_only() -> None:
    fake = FakeTime()
    throttled, other = memory_provider(), memory_provider()
    slow = limited(Stamped(MemoryConnector(throttled), fake), "slow", max_concurrent=2,
                   timing=fake.timing())
    fast_provider = Stamped(MemoryConnector(other), fake)
    fast = limited(fast_provider, "fast", max_concurrent=2, timing=fake.timing())
    throttle(throttled, 20)
    with pytest.raises(RateLimited):
        slow.list_window(A, WINDOW)
    start = fake.clock()
    for _ in range(3):
        fast.list_window(A, WINDOW)
        fast.free_busy([B], WINDOW)
    assert fake.sleeps == []
    assert [at for _, at in fast_provider.calls] == [start] * 6
    assert fast.limit.state().cooling_for == 0
    slow.list_window(A, WINDOW)
    assert fake.sleeps == [20]


def test_a_throttle_per_calendar_cools_down_that_calendar_only() -> None:
    """Graph throttles per app and mailbox: with ``cool_down_per_calendar``
    a 429 on calendar A leaves B's calls going at once, while A's (alone or
    in a free/busy naming A) wait the Retry-After out."""
    fake = FakeTime()
    memory = memory_provider()
    provider = Stamped(MemoryConnector(memory), fake)
    connector = limited(provider, "m365", max_concurrent=4, timing=fake.timing(),
                        cool_down_per_calendar=True)
    throttle(memory, 30, frozenset({Operation.LIST}))
    met_at = fake.clock()
    with pytest.raises(RateLimited):
        connector.list_window(A, WINDOW)
    assert connector.limit.cooling_for("a") == 30 and connector.limit.cooling_for("b") == 0
    assert connector.limit.state().cooling_for == 30

    connector.list_window(B, WINDOW)
    connector.create_event(B, draft())
    assert fake.sleeps == []
    assert [at for _, at in provider.calls[1:]] == [met_at, met_at]
    connector.free_busy([A, B], WINDOW)  # names A: waits for A's cool-down
    assert fake.sleeps == [30]
    assert provider.calls[-1] == ("free_busy", met_at + 30)


def test_a_throttle_of_a_call_naming_no_calendar_cools_the_whole_account() -> None:
    limit = AccountLimit("m365", max_concurrent=2, timing=FakeTime().timing(max_wait=0),
                         cool_down_per_calendar=True)

    def throttled() -> None:
        raise RateLimited("429", retry_after=15)

    with pytest.raises(RateLimited):
        limit.call(throttled)
    assert limit.cooling_for("a") == 15
    with pytest.raises(RateLimited, match="b of account m365 is cooling down"):
        limit.call(lambda: None, calendars=("b",))


def test_a_cool_down_longer_than_a_caller_sleeps_refuses_the_call_unsent() -> None:
    """An outbox job is rescheduled after the cool-down (``retry_after`` is
    a floor of its backoff) and a request thread answers 503, rather than
    either sleeping for minutes."""
    fake = FakeTime()
    memory = memory_provider()
    provider = Stamped(MemoryConnector(memory), fake)
    connector = limited(provider, "acme", max_concurrent=4, timing=fake.timing(max_wait=10))
    throttle(memory, 120)
    with pytest.raises(RateLimited):
        connector.list_window(A, WINDOW)
    fake.advance(20)
    with pytest.raises(RateLimited, match="cooling down") as raised:
        connector.create_event(B, draft())
    assert raised.value.retry_after == pytest.approx(100)
    assert [name for name, _ in provider.calls] == ["list_window"]  # nothing more was sent
    assert fake.sleeps == []
    fake.advance(95)  # 5 s left: within max_wait, so this caller sleeps them
    connector.create_event(B, draft())
    assert fake.sleeps == [pytest.approx(5)]
    assert provider.calls[-1] == ("create_event", pytest.approx(fake.clock()))


def test_a_throttle_without_retry_after_starts_no_cool_down() -> None:
    fake = FakeTime()
    memory = memory_provider()
    connector = limited(MemoryConnector(memory, attempts=1), "acme", max_concurrent=2,
                        timing=fake.timing())
    throttle(memory, None)
    with pytest.raises(RateLimited):
        connector.list_window(A, WINDOW)
    connector.list_window(A, WINDOW)
    assert fake.sleeps == []
    assert connector.limit.state().cooling_for == 0


Step = tuple[str, float]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("call"), st.just(0.0)),
        st.tuples(st.just("throttle"), st.floats(0.5, 90)),
        st.tuples(st.just("advance"), st.floats(0, 60)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(steps=STEPS, max_wait=st.floats(0, 30))
def test_no_call_reaches_the_provider_before_a_cool_down_ends(
    steps: list[Step], max_wait: float
) -> None:
    """Whatever mix of calls, throttles (a 429 queued for the next request
    that reaches the provider) and passing time: a call reaches the provider
    only after every retry-after met before it, having slept exactly what was
    left; one that would sleep longer than ``max_wait`` is refused unsent,
    carrying what is left."""
    fake = FakeTime()
    memory = memory_provider()
    provider = Stamped(MemoryConnector(memory), fake)
    connector = limited(provider, "acme", max_concurrent=1, timing=fake.timing(max_wait))
    cool_until = float("-inf")
    queued: list[float] = []
    for kind, value in steps:
        if kind == "advance":
            fake.advance(value)
            continue
        if kind == "throttle":
            throttle(memory, value)
            queued.append(value)
            continue
        sent, slept, left = len(provider.calls), len(fake.sleeps), cool_until - fake.clock()
        refused: RateLimited | None = None
        try:
            connector.list_window(A, WINDOW)
        except RateLimited as exc:
            refused = exc
        if len(provider.calls) == sent:  # refused by the limit: nothing was sent
            assert refused is not None and left > max_wait
            assert refused.retry_after == pytest.approx(left)
            assert len(fake.sleeps) == slept
            continue
        stamp = provider.calls[-1][1]
        assert stamp >= cool_until
        assert sum(fake.sleeps[slept:]) == pytest.approx(max(0.0, left))
        if queued:  # the provider answered 429: the account cools down from now
            assert refused is not None and refused.retry_after == queued[0]
            cool_until = max(cool_until, stamp + queued.pop(0))
        else:
            assert refused is None


# -- the whole port -------------------------------------------------------------------


def port_methods() -> list[str]:
    return sorted(name for name, _ in inspect.getmembers(CalendarConnector)
                  if not name.startswith("_"))


def test_the_wrapper_implements_every_port_method_itself() -> None:
    """A method added to the port must be added to the wrapper too (else
    it would reach the provider around the limit, or not at all)."""
    missing = [name for name in port_methods() if name not in vars(LimitedConnector)]
    assert missing == []
    fake = FakeTime()
    assert isinstance(limited(MemoryConnector(memory_provider()), "acme", max_concurrent=1,
                              timing=fake.timing()), CalendarConnector)


def test_every_request_of_the_port_waits_for_the_cool_down() -> None:
    """During a cool-down longer than anyone sleeps, each call that would
    send a request is refused unsent; the two that send none
    (``push_supported``, ``parse_notification``) still answer."""
    fake = FakeTime()
    memory = memory_provider()
    provider = Stamped(MemoryConnector(memory), fake)
    connector = limited(provider, "acme", max_concurrent=2, timing=fake.timing(max_wait=0))
    written = connector.create_event(A, draft("kept"))
    channel = connector.start_channel(A, address="https://hooks.example/x", token="t",
                                      ttl_seconds=3600)
    assert channel is not None
    cursor = connector.list_window(B, WINDOW).cursor
    throttle(memory, 300)
    with pytest.raises(RateLimited):
        connector.free_busy([A], WINDOW)
    sent = len(provider.calls)
    requests: dict[str, Callable[[], object]] = {
        "list_window": lambda: connector.list_window(A, WINDOW),
        "changes_since": lambda: connector.changes_since(B, cursor, WINDOW),
        "current_cursors": lambda: connector.current_cursors({B: cursor}),
        "free_busy": lambda: connector.free_busy([A], WINDOW),
        "events_in": lambda: connector.events_in(A, WINDOW),
        "read_event": lambda: connector.read_event(A, "kept"),
        "create_event": lambda: connector.create_event(B, draft()),
        "update_event": lambda: connector.update_event(A, draft("kept"), etag=written.etag),
        "delete_event": lambda: connector.delete_event(A, "kept"),
        "start_channel": lambda: connector.start_channel(
            B, address="https://hooks.example/y", token="t", ttl_seconds=3600),
        "renew_channel": lambda: connector.renew_channel(channel, ttl_seconds=3600),
        "stop_channel": lambda: connector.stop_channel(channel),
    }
    assert sorted([*requests, "push_supported", "parse_notification"]) == port_methods()
    for name, request in requests.items():
        with pytest.raises(RateLimited, match="cooling down"):
            request()
        assert len(provider.calls) == sent, name
    assert connector.push_supported is True
    with contextlib.suppress(PermanentError):
        connector.parse_notification({}, b"not a delivery")
    assert provider.calls[-1][0] == "parse_notification"  # reached, no wait, no refusal
