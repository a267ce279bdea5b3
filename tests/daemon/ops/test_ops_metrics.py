"""``GET /metrics``: Prometheus text that parses, per-App registries, sync
outcomes through the sync service's observer, store state at scrape time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from daemon.http.app import create_app
from engine.core.model import Attendee, Booking, BookingStatus, ChangeSet, Interval
from engine.errors import RateLimited
from engine.ports import CalendarRef
from engine.services.sync import CalendarBinding, SyncService, SyncWindow
from tests.daemon.ops.conftest import API_TOKEN, NOW, Built

Sample = tuple[str, dict[str, str], float]


def scrape(built: Built) -> dict[str, list[Sample]]:
    with TestClient(create_app(built.app)) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(response.text):
        assert family.name.startswith("calpool_"), family.name
        families[family.name] = [(s.name, s.labels, s.value) for s in family.samples]
    return families


def value(families: dict[str, list[Sample]], sample: str, **labels: str) -> float:
    family = next(name for name in families if sample.startswith(name))
    found = [v for name, got, v in families[family] if name == sample and got == labels]
    assert len(found) == 1, (sample, labels, families[family])
    return found[0]


class ScriptedConnector:
    """A connector test double: lists a fixed window, or raises ``error``."""

    push_supported = False

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def list_window(self, calendar: CalendarRef, window: Interval) -> ChangeSet:
        if self.error is not None:
            raise self.error
        return ChangeSet(cursor="c1", objects={}, full=True)

    def changes_since(self, calendar: CalendarRef, cursor: str, window: Interval) -> ChangeSet:
        return ChangeSet(cursor=cursor, objects={}, full=False)


def test_sync_outcomes_and_provider_errors_reach_the_metrics(
    build_app: Callable[..., Built]
) -> None:
    built = build_app()
    store, metrics = built.app.store, built.app.metrics
    bindings = {
        "alice": CalendarBinding("alice", CalendarRef("a", "UTC"), ScriptedConnector()),  # type: ignore[arg-type]
        "room-a": CalendarBinding("room-a", CalendarRef("b", "UTC"), ScriptedConnector(
            RateLimited("slow down", retry_after=30))),  # type: ignore[arg-type]
    }
    service = SyncService(store, bindings, window=SyncWindow(timedelta(days=1), timedelta(days=30)),
                          clock=lambda: NOW, on_synced=metrics.observe_sync)
    service.sync_calendar("alice")
    service.sync_calendar("alice")
    service.sync_calendar("room-a")

    families = scrape(built)

    assert value(families, "calpool_syncs_total", calendar="alice", outcome="synced") == 2
    assert value(families, "calpool_syncs_total", calendar="room-a", outcome="failed") == 1
    assert value(families, "calpool_sync_duration_seconds_count",
                 calendar="alice", outcome="synced") == 2
    # These syncs sent no HTTP request (the connector is scripted): none is counted.
    assert families["calpool_provider_requests"] == []
    assert value(families, "calpool_provider_errors_total",
                 provider="caldav", kind="RateLimited") == 1
    assert value(families, "calpool_calendar_failed", calendar="room-a") == 1
    assert value(families, "calpool_calendar_failed", calendar="alice") == 0


def test_every_http_request_of_a_connector_is_counted_by_account_and_outcome(
    build_app: Callable[..., Built],
) -> None:
    """The config's CalDAV account points at ``dav.invalid``: each request
    the real connector sends (its retries too) ends without an answer."""
    built = build_app()
    report = built.app.sync.sync_calendar("room-a")
    assert report.failed

    families = scrape(built)

    errors = value(families, "calpool_provider_requests_total",
                   provider="caldav", account="dav", outcome="error")
    assert errors >= 1
    assert [labels for _, labels, _ in families["calpool_provider_requests"]
            if labels.get("outcome") != "error"] == []


def test_store_state_is_read_at_scrape_time(build_app: Callable[..., Built]) -> None:
    built = build_app()
    built.synced("alice", NOW - timedelta(minutes=20))
    built.synced("room-a", NOW - timedelta(seconds=30))
    with built.app.store.unit_of_work() as uow:
        for n, status in enumerate(("confirmed", "confirmed", "cancelled")):
            start = NOW + timedelta(days=1, hours=n)
            uow.bookings.reserve(Booking(
                id=f"b{n}", event_type="consult", start=start, end=start + timedelta(minutes=30),
                owner="alice", rooms={"rooms": "room-a"}, booked_at=NOW,
                attendee=Attendee("A", "a@example.org")))
            if status != "pending":
                uow.bookings.set_status(f"b{n}", BookingStatus(status), NOW)
        uow.outbox.enqueue("write", {}, due_at=NOW, now=NOW - timedelta(minutes=3))
        uow.outbox.enqueue("write", {}, due_at=NOW, now=NOW - timedelta(minutes=1))
        uow.commit()

    families = scrape(built)

    assert value(families, "calpool_store_up") == 1
    assert value(families, "calpool_calendar_staleness_seconds", calendar="alice") == 1200
    assert value(families, "calpool_calendar_staleness_seconds", calendar="room-a") == 30
    assert value(families, "calpool_calendar_staleness_seconds", calendar="room-b") == float("inf")
    assert value(families, "calpool_cached_events", calendar="alice") == 1
    assert value(families, "calpool_cached_events", calendar="room-b") == 0
    assert value(families, "calpool_bookings", status="confirmed") == 2
    assert value(families, "calpool_bookings", status="cancelled") == 1
    assert value(families, "calpool_bookings", status="pending") == 0
    assert value(families, "calpool_outbox_depth") == 2
    assert value(families, "calpool_outbox_oldest_age_seconds") == 180


def test_each_app_has_its_own_registry(build_app: Callable[..., Built]) -> None:
    first, second = build_app(), build_app()
    first.app.metrics.observe_outbox(done=3, retried=1, dead=0)

    assert value(scrape(first), "calpool_outbox_jobs_total", outcome="done") == 3
    assert value(scrape(first), "calpool_outbox_jobs_total", outcome="retried") == 1
    assert "calpool_outbox_jobs_total" not in {
        name for samples in scrape(second).values() for name, _, _ in samples}


def test_slot_queries_are_timed_whatever_their_answer(build_app: Callable[..., Built]) -> None:
    built = build_app()
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    with TestClient(create_app(built.app)) as client:
        assert client.get("/v1/event-types/consult/slots", headers=headers).status_code == 200
        assert client.get("/v1/event-types/nope/slots", headers=headers).status_code == 404
        assert client.get("/v1/event-types", headers=headers).status_code == 200

    families = scrape(built)

    assert value(families, "calpool_slot_query_seconds_count", route="event_type") == 2
    assert value(families, "calpool_slot_query_seconds_bucket", route="event_type", le="+Inf") == 2


def test_a_database_that_does_not_answer_gives_store_up_0(build_app: Callable[..., Built]) -> None:
    built = build_app()
    built.app.store.close()
    (built.path.parent / "calpool.db").unlink()
    (built.path.parent / "calpool.db").mkdir()  # a folder: SQLite cannot open it

    families = scrape(built)

    assert value(families, "calpool_store_up") == 0
    assert "calpool_bookings" not in families


def test_metrics_are_in_the_openapi_document(build_app: Callable[..., Built]) -> None:
    built = build_app()
    with TestClient(create_app(built.app)) as client:
        document = client.get("/openapi.json").json()
    operation = document["paths"]["/metrics"]["get"]
    assert "text/plain; version=0.0.4; charset=utf-8" in operation["responses"]["200"]["content"]
