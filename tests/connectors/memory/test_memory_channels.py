"""Push channels of the memory provider: expiry by the provider's clock,
TTL caps, renewal, the provider ending a channel or admitting a loss."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from connectors.memory import MemoryConnector, MemoryProvider
from engine.errors import NotFound, PermanentError
from engine.ports import Notification, NotificationKind, PushChannel
from tests.connectors.memory.memory_fixtures import CAL, Clock, connected, meeting

HOOK = "https://calpool.example.org/hooks/memory"


def heard(provider: MemoryProvider, connector: MemoryConnector) -> list[Notification]:
    return [
        note
        for delivery in provider.take_deliveries(HOOK)
        for note in connector.parse_notification(delivery.headers, delivery.body)
    ]


def opened(connector: MemoryConnector, ttl_seconds: int = 3600) -> PushChannel:
    channel = connector.start_channel(CAL, address=HOOK, token="tok", ttl_seconds=ttl_seconds)
    assert channel is not None
    return channel


def test_expired_channel_is_silent_and_cannot_be_renewed() -> None:
    clock = Clock()
    provider, connector = connected(clock)
    channel = opened(connector, ttl_seconds=60)
    heard(provider, connector)

    clock.advance(timedelta(seconds=61))
    provider.put(CAL.id, "late", meeting("late"))

    assert heard(provider, connector) == []
    assert provider.channels(CAL.id) == ()
    with pytest.raises(NotFound) as caught:
        connector.renew_channel(channel, ttl_seconds=60)
    assert caught.value.calendar == CAL.id
    connector.stop_channel(channel)  # gone already: fine


def test_channel_lives_until_just_before_its_expiry() -> None:
    clock = Clock()
    provider, connector = connected(clock)
    opened(connector, ttl_seconds=60)
    heard(provider, connector)

    clock.advance(timedelta(seconds=59))
    provider.put(CAL.id, "in-time", meeting("in-time"))

    assert [n.kind for n in heard(provider, connector)] == [NotificationKind.CHANGED]


def test_renewal_moves_the_expiry_from_now() -> None:
    clock = Clock()
    provider, connector = connected(clock)
    channel = opened(connector, ttl_seconds=60)
    clock.advance(timedelta(seconds=50))

    renewed = connector.renew_channel(channel, ttl_seconds=60)

    assert renewed.id == channel.id
    assert renewed.expires_at == clock.now + timedelta(seconds=60)
    clock.advance(timedelta(seconds=30))  # past the first expiry
    assert provider.channels(CAL.id) == (renewed,)


def test_provider_shortens_a_channel_longer_than_it_allows() -> None:
    clock = Clock()
    provider = MemoryProvider(clock=clock, max_channel_ttl=timedelta(hours=1))
    provider.add_calendar(CAL.id)
    channel = MemoryConnector(provider).start_channel(
        CAL, address=HOOK, token="tok", ttl_seconds=7 * 24 * 3600
    )
    assert channel is not None and channel.expires_at == clock.now + timedelta(hours=1)


@pytest.mark.parametrize(
    ("address", "ttl_seconds"), [("ftp://h/x", 60), ("", 60), (HOOK, 0), (HOOK, -5)]
)
def test_channel_needs_a_web_address_and_a_positive_ttl(address: str, ttl_seconds: int) -> None:
    _, connector = connected()
    with pytest.raises(PermanentError):
        connector.start_channel(CAL, address=address, token="t", ttl_seconds=ttl_seconds)


def test_channel_of_a_missing_calendar_is_not_found() -> None:
    _, connector = connected()
    with pytest.raises(NotFound):
        connector.start_channel(
            CAL.__class__("nowhere", "UTC"), address=HOOK, token="t", ttl_seconds=60
        )


def test_provider_ending_a_channel_says_removed_then_nothing() -> None:
    provider, connector = connected()
    channel = opened(connector)
    heard(provider, connector)

    provider.end_channel(channel.id)
    provider.put(CAL.id, "unheard", meeting("unheard"))

    assert [n.kind for n in heard(provider, connector)] == [NotificationKind.REMOVED]
    with pytest.raises(NotFound):
        connector.renew_channel(channel, ttl_seconds=60)


def test_provider_admitting_a_loss_says_missed() -> None:
    provider, connector = connected()
    channel = opened(connector)
    heard(provider, connector)

    provider.report_missed(channel.id)

    (note,) = heard(provider, connector)
    assert note == Notification(
        channel.id, channel.resource_id, "tok", NotificationKind.MISSED, message="2"
    )


def test_each_channel_hears_only_its_calendar() -> None:
    provider, connector = connected()
    provider.add_calendar("other")
    mine = opened(connector)
    theirs = connector.start_channel(
        CAL.__class__("other", "UTC"), address=HOOK, token="theirs", ttl_seconds=60
    )
    assert theirs is not None and theirs.resource_id != mine.resource_id
    heard(provider, connector)

    provider.put("other", "x", meeting("x"))

    assert [n.channel_id for n in heard(provider, connector)] == [theirs.id]


def test_stop_with_a_wrong_resource_id_closes_nothing() -> None:
    """As Google's channels.stop needs both the channel id and resource id."""
    provider, connector = connected()
    channel = opened(connector)
    impostor = PushChannel(
        id=channel.id,
        calendar_id=channel.calendar_id,
        resource_id="res-other",
        token=channel.token,
        expires_at=channel.expires_at,
    )
    connector.stop_channel(impostor)
    assert provider.channels() == (channel,)


def test_messages_of_a_channel_are_numbered() -> None:
    provider, connector = connected()
    opened(connector)
    provider.put(CAL.id, "a", meeting("a"))
    provider.delete(CAL.id, "a")

    numbers = [
        item["message"]
        for delivery in provider.take_deliveries(HOOK)
        for item in json.loads(delivery.body)["notifications"]
    ]
    assert numbers == [1, 2, 3]  # sync, changed, changed
