"""The composition root builds each account's connector with the factory
registered for its provider: CalDAV and Google register themselves, and a
provider a build does not have is served by whatever a caller registers for
it.  Here a Google account is served by the in-memory connector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.memory import MemoryConnector, MemoryProvider
from connectors.memory.events import MemoryEvent
from daemon.config import ConfigError
from daemon.config.settings import Account
from daemon.wiring import CONNECTORS, build
from engine.core.model import Interval
from engine.ports import CalendarConnector, RequestObserver
from tests.support.config_builder import SiteConfig

NOW = datetime(2027, 3, 1, 7, tzinfo=UTC)


def google_site() -> SiteConfig:
    return (
        SiteConfig()
        .daemon(database="sqlite:///calpool.db", timezone="UTC")
        .sync(push=False)
        .account("work", provider="google", service_account_file="sa.json",
                 subject="admin@example.com")
        .calendars({"alice": "alice@example.com", "room-a": "room-a@example.com"},
                   persons={"alice"}, account="work")
        .pool("rooms", members=["room-a"])
        .event_type("consult", title="Consult", duration="30m", owner="alice", pools=["rooms"])
    )


def test_a_registered_factory_serves_its_provider(tmp_path: Path) -> None:
    provider = MemoryProvider()
    for calendar in ("alice@example.com", "room-a@example.com"):
        provider.add_calendar(calendar)
    provider.put("room-a@example.com", "busy", MemoryEvent(
        uid="busy", start=NOW + timedelta(hours=3), end=NOW + timedelta(hours=4)))
    made: list[tuple[str, str]] = []

    def memory(account: Account, observe: RequestObserver) -> CalendarConnector:
        made.append((account.provider, type(observe).__name__))
        return MemoryConnector(provider)

    config = google_site().migrated(tmp_path)
    app = build(config, clock=lambda: NOW, connectors={**CONNECTORS, "google": memory})
    try:
        assert made == [("google", "function")]
        assert app.unavailable == {}
        for key in ("alice", "room-a"):
            assert not app.sync.sync_calendar(key).failed
        answer = app.slots.slots("consult", Interval(NOW, NOW + timedelta(hours=8)), now=NOW)
        starts = {slot.start for slot in answer.slots}
        assert NOW + timedelta(hours=2) in starts
        assert NOW + timedelta(hours=3) not in starts  # the room is busy then
    finally:
        app.close()


def test_a_provider_without_a_factory_is_unavailable_with_a_reason(tmp_path: Path) -> None:
    config = google_site().migrated(tmp_path)
    without_google = {k: v for k, v in CONNECTORS.items() if k != "google"}
    app = build(config, clock=lambda: NOW, connectors=without_google)
    try:
        assert app.unavailable == {"work": "the google connector is not part of this build yet"}
        report = app.sync.sync_calendar("alice")
        assert report.failed
    finally:
        app.close()


def test_a_google_key_that_cannot_be_read_is_a_config_error(tmp_path: Path) -> None:
    config = google_site().migrated(tmp_path)
    (tmp_path / "sa.json").write_text("not json", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        build(config, clock=lambda: NOW)
    assert "service_account_file" in str(caught.value)
