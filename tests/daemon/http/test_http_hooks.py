"""``POST /hooks/{provider}`` end to end: a Google account served by the
in-memory connector (whose provider delivers webhooks as JSON), channels
opened by the channel service, deliveries posted to the hook with FastAPI's
TestClient, and the sync that follows run as the scheduler's job does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.memory import MemoryConnector, MemoryProvider
from connectors.memory.events import MemoryEvent
from connectors.memory.push import Delivery
from daemon.config.settings import Account
from daemon.http.app import create_app
from daemon.http.problems import MEDIA_TYPE
from daemon.metrics import Metrics
from daemon.scheduler import (
    SyncRequestedJob,
    build_scheduler,
    maintain_channels,
    poll_calendar,
    stop_channels,
)
from daemon.wiring import CONNECTORS, App, build
from engine.core.model import Interval
from engine.ports import CalendarConnector, RequestObserver
from engine.services.sync import SyncReport
from engine.store import Store
from tests.support.config_builder import SiteConfig

NOW = datetime(2027, 3, 1, 7, tzinfo=UTC)
HOOK = "https://calpool.example.org/hooks/google"
ROOM = "room-a@example.com"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class CountingMetrics(Metrics):
    """Keeps every sync's report (the sync service tells its metrics of each)."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[SyncReport] = []

    def observe_sync(self, report: SyncReport, seconds: float) -> None:
        self.reports.append(report)
        super().observe_sync(report, seconds)


@dataclass
class PushSite:
    app: App
    client: TestClient
    provider: MemoryProvider
    clock: Clock
    syncs: list[SyncReport]

    def post(self, delivery: Delivery, *, provider: str = "google", **kwargs: Any) -> Any:
        return self.client.post(f"/hooks/{provider}", content=delivery.body,
                                headers=dict(delivery.headers), **kwargs)

    def deliveries(self) -> tuple[Delivery, ...]:
        return self.provider.take_deliveries(HOOK)

    def room_free_at(self, start: datetime) -> bool:
        answer = self.app.slots.slots("consult", Interval(NOW, NOW + timedelta(hours=10)), now=NOW)
        return start in {slot.start for slot in answer.slots}

    def outstanding(self) -> list[str]:
        with self.app.store.reader() as uow:
            return uow.sync_requests.outstanding()


def site_config() -> SiteConfig:
    return (
        SiteConfig()
        .daemon(database="sqlite:///calpool.db", timezone="UTC")
        .http(public_url="https://calpool.example.org")
        .sync(push=True)
        .account("work", provider="google", service_account_file="sa.json",
                 subject="admin@example.com")
        .calendars({"alice": "alice@example.com", "room-a": ROOM},
                   persons={"alice"}, account="work")
        .pool("rooms", members=["room-a"])
        .event_type("consult", title="Consult", duration="30m", owner="alice", pools=["rooms"])
    )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[PushSite]:
    clock = Clock()
    provider = MemoryProvider(clock=clock)
    for calendar in ("alice@example.com", ROOM):
        provider.add_calendar(calendar)

    def memory(account: Account, observe: RequestObserver) -> CalendarConnector:
        return MemoryConnector(provider)

    metrics = CountingMetrics()
    syncs = metrics.reports
    app = build(site_config().migrated(tmp_path), clock=clock, metrics=metrics,
                connectors={**CONNECTORS, "google": memory})
    try:
        for key in ("alice", "room-a"):
            assert not app.sync.sync_calendar(key).failed
        maintain_channels(app)
        pushed = PushSite(app, TestClient(create_app(app, environ={})), provider, clock, syncs)
        for delivery in pushed.deliveries():  # each channel announces itself ("sync")
            assert pushed.post(delivery).status_code == 202
        # A calendar's first channel marks it for one sync (changes made before
        # the channel existed were notified to nobody).
        assert sorted(pushed.outstanding()) == ["alice", "room-a"]
        assert not any(report.failed for report in app.sync.sync_requested())
        assert pushed.outstanding() == []
        syncs.clear()
        yield pushed
    finally:
        app.close()


def busy(uid: str, hours: int) -> MemoryEvent:
    return MemoryEvent(uid=uid, start=NOW + timedelta(hours=hours),
                       end=NOW + timedelta(hours=hours + 1))


def test_channels_are_opened_for_every_calendar_and_shown_by_status(site: PushSite) -> None:
    status = site.app.status.read(NOW, channels=True)
    assert {key: len(channels) for key, channels in status.channels.items()} == {
        "alice": 1, "room-a": 1}
    channel = status.channels["room-a"][0]
    assert channel.calendar_id == ROOM and channel.token == "" and len(channel.token_sha256) == 64
    assert [c.id for c in site.provider.channels(ROOM)] == [channel.id]


def test_a_pushed_change_reaches_the_slots(site: PushSite) -> None:
    assert site.room_free_at(NOW + timedelta(hours=3))
    site.provider.put(ROOM, "busy", busy("busy", 3))

    (delivery,) = site.deliveries()
    answer = site.post(delivery)
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 1, "duplicates": 0}
    assert site.outstanding() == ["room-a"]

    site.app.sync.sync_requested()  # what the scheduler's job runs, in every process

    assert [(r.calendar, r.outcome) for r in site.syncs] == [("room-a", "synced")]
    assert not site.room_free_at(NOW + timedelta(hours=3))
    assert site.outstanding() == []


def test_a_delivery_wakes_the_sync_requested_job_of_the_process_that_received_it(
        site: PushSite) -> None:
    requested = SyncRequestedJob(site.app)
    scheduler = build_scheduler(site.app, requested=requested)
    for job in scheduler.get_jobs():
        if job.id != SyncRequestedJob.JOB_ID:
            scheduler.remove_job(job.id)
    # Its next tick an hour away: only the wake can run it within the bound.
    scheduler.modify_job(SyncRequestedJob.JOB_ID,
                         next_run_time=datetime.now(UTC) + timedelta(hours=1))
    scheduler.start()
    site.app.after_marks.append(requested.wake)  # as the running daemon does
    try:
        site.provider.put(ROOM, "busy", busy("busy", 3))
        (delivery,) = site.deliveries()
        assert site.post(delivery).status_code == 202
        # The report is recorded after the sync's transaction clears the mark,
        # so wait for the report, not for the mark.
        deadline = time.monotonic() + 30
        while not site.syncs:
            assert time.monotonic() < deadline, "the woken job did not sync the calendar"
            time.sleep(0.02)
        assert [(r.calendar, r.outcome) for r in site.syncs] == [("room-a", "synced")]
        assert site.outstanding() == []
        assert not site.room_free_at(NOW + timedelta(hours=3))
    finally:
        site.app.after_marks.clear()
        scheduler.shutdown(wait=True)
        requested.close()


def test_a_push_while_another_session_holds_the_lease_is_not_lost(site: PushSite) -> None:
    other = Store.open(site.app.config.daemon.database_url)  # another process's store
    try:
        with other.unit_of_work() as uow:
            assert uow.leases.try_acquire("sync:room-a", "other-process", timedelta(minutes=2), NOW)
            uow.commit()
        site.provider.put(ROOM, "busy", busy("busy", 3))
        for delivery in site.deliveries():
            assert site.post(delivery).status_code == 202

        site.app.sync.sync_requested()
        assert [r.outcome for r in site.syncs] == ["skipped"]
        assert site.outstanding() == ["room-a"]  # the notification waits for the lease

        with other.unit_of_work() as uow:
            uow.leases.release("sync:room-a", "other-process")
            uow.commit()
        site.app.sync.sync_requested()
    finally:
        other.close()
    assert [r.outcome for r in site.syncs] == ["skipped", "synced"]
    assert not site.room_free_at(NOW + timedelta(hours=3))


def test_a_wrong_channel_token_is_refused_and_triggers_nothing(site: PushSite) -> None:
    site.provider.put(ROOM, "busy", busy("busy", 3))
    (delivery,) = site.deliveries()
    document = json.loads(delivery.body)
    document["notifications"][0]["token"] = "guessed"
    forged = Delivery(address=delivery.address, headers=delivery.headers,
                      body=json.dumps(document).encode())

    answer = site.post(forged)

    assert answer.status_code == 401
    assert answer.headers["content-type"] == MEDIA_TYPE
    assert answer.json()["type"] == "/problems/wrong-channel-token"
    assert site.outstanding() == []
    site.app.sync.sync_requested()
    assert site.syncs == []


def test_an_unknown_channel_is_404_and_triggers_nothing(site: PushSite) -> None:
    site.provider.put(ROOM, "busy", busy("busy", 3))
    (delivery,) = site.deliveries()
    document = json.loads(delivery.body)
    document["notifications"][0]["channel_id"] = "ch-never-opened"
    forged = Delivery(address=delivery.address, headers=delivery.headers,
                      body=json.dumps(document).encode())

    answer = site.post(forged)
    assert answer.status_code == 404 and answer.json()["type"] == "/problems/unknown-channel"
    # A real channel posted to another provider's hook is unknown there too.
    answer = site.post(delivery, provider="microsoft")
    assert answer.status_code == 404 and answer.json()["type"] == "/problems/unknown-channel"
    assert site.outstanding() == []


def test_a_duplicate_delivery_triggers_one_sync(site: PushSite) -> None:
    site.provider.put(ROOM, "busy", busy("busy", 3))
    (delivery,) = site.deliveries()

    assert site.post(delivery).json() == {"accepted": 1, "duplicates": 0}
    site.app.sync.sync_requested()
    assert site.post(delivery).json() == {"accepted": 0, "duplicates": 1}
    site.app.sync.sync_requested()

    assert [(r.calendar, r.outcome) for r in site.syncs] == [("room-a", "synced")]


def test_a_handshake_is_answered_with_the_token_as_plain_text(site: PushSite) -> None:
    answer = site.client.post("/hooks/google", params={"validationToken": "Validation: ok 1"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text == "Validation: ok 1"
    assert site.outstanding() == []


def test_a_body_that_is_no_delivery_is_400(site: PushSite) -> None:
    answer = site.client.post("/hooks/google", content=b"hello",
                              headers={"Content-Type": "text/plain"})
    assert answer.status_code == 400
    assert answer.json()["type"] == "/problems/not-a-notification"


def test_the_hook_needs_no_bearer_token_and_is_in_the_openapi_document(site: PushSite) -> None:
    document = site.client.get("/openapi.json").json()
    operation = document["paths"]["/hooks/{provider}"]["post"]
    assert {"200", "202", "400", "401", "404"} <= set(operation["responses"])
    assert "/problems/wrong-channel-token" in document["info"]["description"]
    assert "security" not in operation
    receipt = operation["responses"]["202"]["content"]["application/json"]["schema"]
    assert receipt == {"$ref": "#/components/schemas/PushReceipt"}
    assert list(operation["responses"]["200"]["content"]) == ["text/plain"]


def test_shutdown_stops_the_channels_at_the_provider(site: PushSite) -> None:
    assert len(site.provider.channels()) == 2
    stop_channels(site.app)
    assert site.provider.channels() == ()
    assert site.app.status.read(NOW, channels=True).channels == {"alice": [], "room-a": []}


def test_a_calendar_with_a_live_channel_is_polled_only_by_the_safety_poll(site: PushSite) -> None:
    poll_calendar(site.app, "room-a")
    assert site.syncs == []  # just synced, and push brings the changes
    site.clock.now = NOW + site.app.config.sync.safety_poll
    poll_calendar(site.app, "room-a")
    assert [(r.calendar, r.outcome) for r in site.syncs] == [("room-a", "synced")]


def test_a_channel_the_provider_ends_is_dropped_resynced_and_reopened(site: PushSite) -> None:
    (old,) = site.app.status.read(NOW, channels=True).channels["room-a"]
    site.provider.end_channel(old.id)  # Graph's subscriptionRemoved

    (delivery,) = site.deliveries()
    assert site.post(delivery).status_code == 202
    assert site.outstanding() == ["room-a"]
    assert site.app.status.read(NOW, channels=True).channels["room-a"] == []

    report = site.app.channels.maintain()
    assert report.opened == ("room-a",)
    site.app.sync.sync_requested()
    assert [(r.calendar, r.outcome) for r in site.syncs] == [("room-a", "synced")]
