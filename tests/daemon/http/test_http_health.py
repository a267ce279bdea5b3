"""``/healthz`` and ``/readyz``."""

from __future__ import annotations

from datetime import timedelta

from tests.daemon.http.conftest import NOW, Site, assert_problem, unreachable_site

EVERY = ("alice", "bob", "room-a", "room-b", "room-c")


def test_healthz_answers_while_the_process_runs(site: Site) -> None:
    response = site.get("/healthz", token=None)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_not_ready_before_any_sync_attempt(site: Site) -> None:
    document = assert_problem(site.get("/readyz", token=None), 503, "/problems/not-ready")
    assert document["database"] == "ok"
    assert document["waiting_for"] == list(EVERY)


def test_not_ready_while_some_calendar_was_never_tried(site: Site) -> None:
    site.synced("alice", "bob", "room-a")
    site.failed("room-b")  # a failed attempt is an attempt
    document = assert_problem(site.get("/readyz", token=None), 503, "/problems/not-ready")
    assert document["waiting_for"] == ["room-c"]
    assert "room-c" in document["detail"]


def test_ready_once_every_calendar_was_tried_listing_failed_and_stale(site: Site) -> None:
    site.synced("alice", "bob")
    site.synced("room-a", at=NOW - timedelta(hours=2))
    site.synced("room-b", at=NOW - timedelta(minutes=1))
    site.failed("room-b")
    site.failed("room-c")  # tried, never succeeded
    response = site.get("/readyz", token=None)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "failed": [
            {"calendar": "room-b", "last_synced": "2027-03-25T06:59:00Z",
             "last_attempt": "2027-03-25T07:00:00Z"},
            {"calendar": "room-c", "last_synced": None, "last_attempt": "2027-03-25T07:00:00Z"},
        ],
        "stale": [
            {"calendar": "room-a", "last_synced": "2027-03-25T05:00:00Z",
             "last_attempt": "2027-03-25T05:00:00Z"},
        ],
    }


def test_ready_with_nothing_to_report(site: Site) -> None:
    site.synced(*EVERY)
    response = site.get("/readyz", token=None)
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "failed": [], "stale": []}


def test_not_ready_when_the_database_does_not_answer(site: Site) -> None:
    response = unreachable_site(site).get("/readyz")
    document = assert_problem(response, 503, "/problems/not-ready")
    assert document["database"] == "unreachable"
    assert "refused" not in response.text
