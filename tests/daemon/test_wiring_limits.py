"""The composition root puts every account's connector behind its own
limit (``accounts.<key>.max_concurrent``, one cool-down for all callers of
the account), and ``/metrics`` shows it as ``calpool_account_*``.  Two
accounts on in-memory providers: a 429 met by one account's sync makes
that account's next callers wait out the retry-after (a clock the test
moves) while the other account's calls go on."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import generate_latest

from connectors.memory import Fault, FaultKind, MemoryConnector, MemoryProvider, Operation
from daemon.config.settings import Account
from daemon.wiring import CONNECTORS, ConnectorFactory, build
from engine.core.model import Interval
from engine.errors import RateLimited
from engine.ports import CalendarConnector, CalendarRef, RequestObserver
from engine.services.limits import LimitedConnector, LimitTiming
from tests.support.config_builder import SiteConfig

NOW = datetime(2027, 3, 1, 7, tzinfo=UTC)
CALENDARS = {"work": ("alice", "room-a"), "m365": ("bob", "room-b")}


class FakeTime:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 50.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def two_account_site(work_limit: int | None = None) -> SiteConfig:
    google: dict[str, str | int] = {"service_account_file": "sa.json",
                                    "subject": "admin@example.com"}
    if work_limit is not None:
        google["max_concurrent"] = work_limit
    return (
        SiteConfig()
        .daemon(database="sqlite:///calpool.db", timezone="UTC")
        .sync(push=False)
        .account("work", provider="google", **google)
        .account("m365", provider="microsoft", tenant_id="t", client_id="c",
                 client_secret_env="M365_SECRET")
        .calendars({"alice": "alice@work", "room-a": "room-a@work"}, persons={"alice"},
                   account="work")
        .calendars({"bob": "bob@m365", "room-b": "room-b@m365"}, persons={"bob"},
                   account="m365")
        .pool("rooms", members=["room-a"])
        .event_type("consult", title="Consult", duration="30m", owner="alice", pools=["rooms"])
    )


def memory_registry(providers: dict[str, MemoryProvider]) -> dict[str, ConnectorFactory]:
    def factory(account: Account, observe: RequestObserver) -> CalendarConnector:
        return MemoryConnector(providers[account.key])

    return {**CONNECTORS, "google": factory, "microsoft": factory}


def providers() -> dict[str, MemoryProvider]:
    made = {}
    for account, calendars in CALENDARS.items():
        provider = MemoryProvider()
        for key in calendars:
            provider.add_calendar(f"{key}@{account}")
        made[account] = provider
    return made


def sample(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and line.split("}")[0][len(name) + 1:] == wanted:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_each_account_gets_its_own_limit_with_the_configured_size(tmp_path: Path) -> None:
    config = two_account_site(work_limit=2).migrated(tmp_path)
    app = build(config, clock=lambda: NOW, connectors=memory_registry(providers()))
    try:
        limits = {}
        for key, connector in app.connectors.items():
            assert isinstance(connector, LimitedConnector)
            assert isinstance(connector.inner, MemoryConnector)
            limits[key] = connector.limit
        assert {key: limit.max_concurrent for key, limit in limits.items()} == {
            "work": 2, "m365": 4}  # m365: Microsoft's default
        assert limits["work"] is not limits["m365"]
        text = generate_latest(app.metrics.registry).decode()
        assert sample(text, "calpool_account_max_concurrent", account="work") == 2
        assert sample(text, "calpool_account_max_concurrent", account="m365") == 4
        assert sample(text, "calpool_account_requests_in_flight", account="work") == 0
    finally:
        app.close()


def test_a_429_on_one_account_slows_that_account_only(tmp_path: Path) -> None:
    fake = FakeTime()
    memory = providers()
    config = two_account_site().migrated(tmp_path)
    app = build(config, clock=lambda: NOW, connectors=memory_registry(memory),
                limit_timing=LimitTiming(clock=fake.clock, sleep=fake.sleep, max_wait=10))
    try:
        memory["work"].inject(Fault(kind=FaultKind.THROTTLED, retry_after=7,
                                    operations=frozenset({Operation.LIST})))
        report = app.sync.sync_calendar("alice")
        assert report.failed and report.error_kind == "RateLimited"
        throttled_at = fake.clock()
        # The other account: its sync and a live free/busy go on, nobody waits.
        assert not app.sync.sync_calendar("bob").failed
        assert not app.sync.sync_calendar("room-b").failed
        window = Interval(NOW, NOW + timedelta(hours=8))
        app.connectors["m365"].free_busy([CalendarRef("room-b@m365")], window)
        assert fake.sleeps == []
        # The throttled account's next caller, of another calendar, waits 7 s first.
        assert not app.sync.sync_calendar("room-a").failed
        assert fake.sleeps == [7]
        assert fake.clock() == throttled_at + 7
        text = generate_latest(app.metrics.registry).decode()
        assert sample(text, "calpool_account_throttles_total", account="work") == 1
        assert sample(text, "calpool_account_throttle_waits_total",
                      account="work", how="slept") == 1
        assert sample(text, "calpool_account_throttle_wait_seconds_total", account="work") == 7
        assert sample(text, "calpool_account_throttles_total", account="m365") is None
        assert sample(text, "calpool_account_throttle_waits_total",
                      account="m365", how="slept") is None
    finally:
        app.close()


def test_a_long_cool_down_defers_the_accounts_callers_unsent(tmp_path: Path) -> None:
    fake = FakeTime()
    memory = providers()
    config = two_account_site().migrated(tmp_path)
    app = build(config, clock=lambda: NOW, connectors=memory_registry(memory),
                limit_timing=LimitTiming(clock=fake.clock, sleep=fake.sleep, max_wait=10))
    try:
        memory["work"].inject(Fault(kind=FaultKind.THROTTLED, retry_after=300))
        assert app.sync.sync_calendar("alice").failed
        window = Interval(NOW, NOW + timedelta(hours=8))
        try:
            app.connectors["work"].free_busy([CalendarRef("room-a@work")], window)
        except RateLimited as exc:
            assert exc.retry_after == 300
        else:
            raise AssertionError("the live re-check should have been deferred")
        assert fake.sleeps == []
        text = generate_latest(app.metrics.registry).decode()
        assert sample(text, "calpool_account_throttle_waits_total",
                      account="work", how="deferred") == 1
    finally:
        app.close()


def test_the_readme_lists_every_account_metric() -> None:
    from daemon.metrics import Metrics

    metrics = Metrics()
    metrics.account_observer("acme", 3).throttled("acme", 1.0)
    metrics.account_observer("acme", 3).waited("acme", 1.0, deferred=False)
    names = {sample.name for family in metrics.registry.collect()
             for sample in family.samples if sample.name.startswith("calpool_account_")}
    names = {name for name in names if not name.endswith("_created")}
    assert len(names) == 5
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert [name for name in sorted(names) if f"| `{name}` |" not in readme] == []


def test_a_reload_keeps_each_accounts_limit_unless_its_size_changed(tmp_path: Path) -> None:
    """Calls still in flight on the old app count against the new one, and
    a cool-down carries over; a new ``max_concurrent`` starts a new limit."""
    fake = FakeTime()
    memory = providers()
    timing = LimitTiming(clock=fake.clock, sleep=fake.sleep, max_wait=10)
    first = build(two_account_site().migrated(tmp_path), clock=lambda: NOW,
                  connectors=memory_registry(memory), limit_timing=timing)
    try:
        memory["work"].inject(Fault(kind=FaultKind.THROTTLED, retry_after=6))
        assert first.sync.sync_calendar("alice").failed
        for folder in ("changed", "same"):
            (tmp_path / folder).mkdir()
        changed = two_account_site(work_limit=3).migrated(tmp_path / "changed")
        second = build(changed, clock=lambda: NOW, connectors=memory_registry(memory),
                       store=first.store, metrics=first.metrics, limits=first.limits,
                       limit_timing=timing)
        same = build(two_account_site().migrated(tmp_path / "same"), clock=lambda: NOW,
                     connectors=memory_registry(memory), store=first.store,
                     metrics=first.metrics, limits=first.limits, limit_timing=timing)
        assert same.limits["work"] is first.limits["work"]
        assert same.limits["m365"] is first.limits["m365"]
        assert second.limits["work"] is not first.limits["work"]
        assert second.limits["work"].max_concurrent == 3
        assert second.limits["m365"] is first.limits["m365"]
        assert not same.sync.sync_calendar("room-a").failed
        assert fake.sleeps == [6]  # the cool-down met before the reload held
        second.retire()
        same.retire()
    finally:
        first.close()


def test_the_reloader_hands_the_running_limits_on(tmp_path: Path) -> None:
    from daemon.reload import Reloader

    config = (SiteConfig()
              .daemon(database="sqlite:///calpool.db", timezone="UTC")
              .caldav_account("dav", url="https://dav.example/dav/")
              .calendars({"alice": "alice/", "room-a": "rooms/a/"}, persons={"alice"},
                         account="dav")
              .pool("rooms", members=["room-a"])
              .event_type("consult", title="Consult", duration="30m", owner="alice",
                          pools=["rooms"])
              .migrated(tmp_path))
    running = build(config, clock=lambda: NOW)
    try:
        assert running.limits["dav"].max_concurrent == 8  # CalDAV's default
        new = Reloader(lambda: config).prepare(running)
        assert new is not None
        assert new.limits["dav"] is running.limits["dav"]
        new.retire()
    finally:
        running.close()


def test_the_outbox_waits_out_a_throttle_that_a_sync_met(tmp_path: Path) -> None:
    """The sync of the owner's calendar met the 429; the booking's provider
    writes, made by the outbox on another thread, wait its 7 s before they
    reach the provider; the booking is confirmed once the invited room accepts."""
    from connectors.memory.events import Answer
    from engine.core.model import Attendee, BookingStatus

    fake = FakeTime()
    memory = providers()
    config = two_account_site().migrated(tmp_path)
    app = build(config, clock=lambda: NOW, connectors=memory_registry(memory),
                limit_timing=LimitTiming(clock=fake.clock, sleep=fake.sleep, max_wait=10))
    try:
        for key in ("alice", "room-a"):
            assert not app.sync.sync_calendar(key).failed
        memory["work"].inject(Fault(kind=FaultKind.THROTTLED, retry_after=7))
        assert app.sync.sync_calendar("alice").error_kind == "RateLimited"
        assert fake.sleeps == []
        booking = app.bookings.book_and_wait(
            "consult", NOW + timedelta(hours=2), Attendee("Carol", "carol@example.org"), "",
            NOW, confirm_within=timedelta(seconds=5))
        # Google invites room-a (same account) itself: the owner's event is
        # written, the room's answer awaited.
        assert booking.status is BookingStatus.PENDING
        assert fake.sleeps == [7]  # the write waited the throttle out first
        owner_event = _object_of(memory["work"], "alice@work")
        assert memory["work"].get("alice@work", owner_event)
        memory["work"].answer("alice@work", owner_event, "room-a@work", Answer.ACCEPTED)
        app.room_answers.check(NOW)
        assert app.bookings.get(booking.id).status is BookingStatus.CONFIRMED
    finally:
        app.close()


def _object_of(provider: MemoryProvider, calendar: str) -> str:
    stored, _ = provider.listing(calendar)
    assert len(stored) == 1
    return stored[0].id
