"""The connector contract, push: channels open, announce themselves, notify
changes, renew and stop; a provider without push opens none; a delivery no
provider would send is refused.  Cases that need deliveries skip where the
provider has none (CalDAV: the daemon polls)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.errors import PermanentError
from engine.ports import Notification, NotificationKind, PushChannel
from tests.contract.calendar_data import WINDOW, single, wall
from tests.contract.harness import Capability, Harness

ADDRESS = "https://calpool.example.org/hooks/contract"
TOKEN = "a-channel-token"


def notifications(h: Harness, address: str = ADDRESS) -> list[Notification]:
    """Everything the provider delivered to ``address`` since last asked, parsed."""
    return [
        note
        for headers, body in h.driver.pushes(address)
        for note in h.connector.parse_notification(headers, body)
    ]


def open_channel(h: Harness, *, ttl_seconds: int = 3600) -> PushChannel:
    h.require(Capability.PUSH_DELIVERY)
    assert h.connector.push_supported
    channel = h.connector.start_channel(
        h.calendar, address=ADDRESS, token=TOKEN, ttl_seconds=ttl_seconds
    )
    assert channel is not None
    return channel


def names(channel: PushChannel, note: Notification) -> bool:
    return (note.channel_id, note.resource_id, note.token) == (
        channel.id,
        channel.resource_id,
        channel.token,
    )


def test_without_push_no_channel_opens(harness: Harness) -> None:
    if harness.connector.push_supported:
        pytest.skip(f"{harness.label} has push channels")
    channel = harness.connector.start_channel(
        harness.calendar, address=ADDRESS, token=TOKEN, ttl_seconds=3600
    )
    assert channel is None


def test_channel_opens_for_at_most_its_ttl_and_first_says_sync(harness: Harness) -> None:
    h = harness
    before = h.now()
    channel = open_channel(h, ttl_seconds=3600)

    assert channel.calendar_id == h.calendar.id
    assert channel.token == TOKEN
    assert before < channel.expires_at <= h.now() + timedelta(seconds=3600)
    first = notifications(h)
    assert all(names(channel, note) for note in first)
    # Google announces a channel with "sync"; Graph validates instead: either way
    # nothing to fetch yet.
    assert {note.kind for note in first} <= {NotificationKind.SYNC}


def test_change_on_the_provider_is_notified(harness: Harness) -> None:
    h = harness
    cursor = h.connector.list_window(h.calendar, WINDOW).cursor
    channel = open_channel(h)
    notifications(h)  # the announcement

    created = h.driver.put(single("pushed"))

    changed = [note for note in notifications(h) if note.kind is NotificationKind.CHANGED]
    assert changed and all(names(channel, note) for note in changed)
    assert list(h.connector.changes_since(h.calendar, cursor, WINDOW).objects) == [created]


def test_renewed_channel_lasts_longer_and_still_delivers(harness: Harness) -> None:
    h = harness
    channel = open_channel(h, ttl_seconds=60)

    renewed = h.connector.renew_channel(channel, ttl_seconds=3600)

    assert renewed.calendar_id == channel.calendar_id and renewed.token == TOKEN
    assert renewed.expires_at > channel.expires_at
    notifications(h)
    h.driver.put(single("after-renewal", wall(2027, 3, 2, 10), wall(2027, 3, 2, 11)))
    assert any(
        names(renewed, note) and note.kind is NotificationKind.CHANGED for note in notifications(h)
    )


def test_stopped_channel_delivers_nothing_and_stopping_twice_is_fine(harness: Harness) -> None:
    h = harness
    channel = open_channel(h)
    notifications(h)

    h.connector.stop_channel(channel)
    h.connector.stop_channel(channel)
    h.driver.put(single("unheard"))

    assert [note for note in notifications(h) if names(channel, note)] == []


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, b""),
        ({"Content-Type": "text/plain"}, b"hello"),
        ({"Content-Type": "application/json"}, b'{"value": 42'),
        ({"Content-Type": "application/json"}, b'{"unexpected": ["shape"]}'),
    ],
    ids=["empty", "text", "broken-json", "json-of-no-provider"],
)
def test_delivery_no_provider_sends_is_refused(
    harness: Harness, headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(PermanentError):
        harness.connector.parse_notification(headers, body)
