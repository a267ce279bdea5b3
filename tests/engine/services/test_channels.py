"""The channel service on the in-memory provider with a clock the test
controls: channels open where push is on, renew before they run out (new
channel persisted first, then the old one stopped), and stop when a
calendar leaves the config, when push is off, and on shutdown."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from connectors.memory import MemoryConnector, MemoryProvider
from engine.ports import CalendarRef
from engine.services.channels import ChannelPolicy, ChannelService, ChannelTarget
from engine.store import Store

NOW = datetime(2027, 3, 1, 7, tzinfo=UTC)
PUBLIC = "https://calpool.example.org"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def targets_on(provider: MemoryProvider) -> dict[str, ChannelTarget]:
    return {key: ChannelTarget("google", CalendarRef(f"{key}@example.com"),
                               MemoryConnector(provider))
            for key in ("alice", "room-a")}


def setup(store: Store, *, policy: ChannelPolicy | None = None,
          max_ttl: timedelta = timedelta(days=7)) -> tuple[ChannelService, MemoryProvider, Clock]:
    clock = Clock()
    provider = MemoryProvider(clock=clock, max_channel_ttl=max_ttl)
    for key in ("alice", "room-a"):
        provider.add_calendar(f"{key}@example.com")
    targets = targets_on(provider)
    policy = policy or ChannelPolicy(enabled=True, public_url=PUBLIC)
    return ChannelService(store, targets, policy, clock=clock), provider, clock


def stored(store: Store) -> dict[str, list[str]]:
    with store.reader() as uow:
        channels = uow.channels.all()
    found: dict[str, list[str]] = {}
    for channel in channels:
        found.setdefault(channel.calendar, []).append(channel.id)
    return found


def test_channels_open_for_each_calendar_once(store: Store) -> None:
    service, provider, _ = setup(store)

    report = service.maintain()

    assert sorted(report.opened) == ["alice", "room-a"]
    assert {key: len(ids) for key, ids in stored(store).items()} == {"alice": 1, "room-a": 1}
    assert {d.address for d in provider.deliveries()} == {f"{PUBLIC}/hooks/google"}
    assert service.maintain().opened == ()  # live and far from expiry: nothing to do


def test_a_channel_is_renewed_before_it_runs_out(store: Store) -> None:
    service, provider, clock = setup(store, max_ttl=timedelta(hours=2))  # the provider caps
    service.maintain()
    (old,) = stored(store)["room-a"]

    clock.advance(timedelta(minutes=30))
    assert service.maintain().renewed == ()  # 90 min left of 120: not yet
    clock.advance(timedelta(minutes=35))  # 55 min left: under half its life
    report = service.maintain()

    assert sorted(report.renewed) == ["alice", "room-a"]
    (new,) = stored(store)["room-a"]
    assert new != old
    assert [c.id for c in provider.channels("room-a@example.com")] == [new]  # old one stopped
    assert service.live()["room-a"].expires_at == clock.now + timedelta(hours=2)


def test_an_expired_channel_is_replaced(store: Store) -> None:
    service, _, clock = setup(store, max_ttl=timedelta(hours=1))
    service.maintain()
    clock.advance(timedelta(hours=2))  # the daemon was down past the expiry

    report = service.maintain()

    assert sorted(report.opened) == ["alice", "room-a"]
    assert len(report.stopped) == 2  # the dead rows are dropped
    assert {key: len(ids) for key, ids in stored(store).items()} == {"alice": 1, "room-a": 1}


def outstanding(store: Store) -> list[str]:
    with store.reader() as uow:
        return sorted(uow.sync_requests.outstanding())


def test_a_calendars_first_channel_marks_it_for_sync_and_a_renewal_does_not(
    store: Store,
) -> None:
    """What changed between the last sync and the provider's knowing the
    channel was notified to nobody: one sync picks it up.  A renewal has
    the old channel live until the new one is stored: no mark."""
    service, _, clock = setup(store, max_ttl=timedelta(hours=2))
    service.maintain()
    assert outstanding(store) == ["alice", "room-a"]
    with store.unit_of_work() as uow:
        for key in ("alice", "room-a"):
            uow.sync_requests.serve(key, uow.sync_requests.requested(key))
        uow.commit()

    clock.advance(timedelta(minutes=65))
    assert sorted(service.maintain().renewed) == ["alice", "room-a"]
    assert outstanding(store) == []
    clock.advance(timedelta(hours=3))  # expired: a gap without a channel again
    assert sorted(service.maintain().opened) == ["alice", "room-a"]
    assert outstanding(store) == ["alice", "room-a"]


def test_channels_stop_when_their_calendar_leaves_the_config(store: Store) -> None:
    service, provider, _ = setup(store)
    service.maintain()

    stopped = service.stop_removed(["alice"])

    assert len(stopped) == 1
    assert list(stored(store)) == ["alice"]
    assert provider.channels("room-a@example.com") == ()
    assert len(provider.channels("alice@example.com")) == 1


def test_channels_stop_on_shutdown(store: Store) -> None:
    service, provider, _ = setup(store)
    service.maintain()

    assert len(service.stop_all()) == 2
    assert stored(store) == {} and provider.channels() == ()


def test_push_off_or_a_plain_http_address_opens_none_and_stops_what_is_open(store: Store) -> None:
    service, provider, clock = setup(store)
    service.maintain()
    off = ChannelService(store, targets_on(provider),
                         ChannelPolicy.from_settings(push=True, public_url="http://calpool.lan"),
                         clock=clock)

    report = off.maintain()

    assert report.opened == () and len(report.stopped) == 2
    assert stored(store) == {} and provider.channels() == ()


def test_two_processes_opening_at_once_converge_on_one_channel(store: Store) -> None:
    service, provider, clock = setup(store)
    service.maintain()
    (first,) = stored(store)["room-a"]
    clock.advance(timedelta(seconds=1))
    # Another process opened one for room-a at the same time and stored it.
    twin = MemoryConnector(provider).start_channel(
        CalendarRef("room-a@example.com"), address=f"{PUBLIC}/hooks/google", token="twin",
        ttl_seconds=7 * 86400)
    assert twin is not None
    with store.unit_of_work() as uow:
        uow.channels.save(replace(twin, calendar="room-a", created_at=clock.now))
        uow.commit()

    report = service.maintain()

    assert report.stopped == (first,)  # the one running out sooner
    assert stored(store)["room-a"] == [twin.id]
    assert [c.id for c in provider.channels("room-a@example.com")] == [twin.id]
