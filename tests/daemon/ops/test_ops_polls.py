"""`calpool run`'s poll jobs: each calendar at its phase of the poll
interval; calendars not synced within an interval right after start."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from daemon.scheduler import build_scheduler
from engine.services.poll_schedule import EPOCH, poll_phases
from tests.daemon.ops.conftest import NOW, Built

BuildApp = Callable[..., Built]


def test_synced_calendars_wait_for_their_phase_the_others_poll_at_once(
    build_app: BuildApp,
) -> None:
    built = build_app()
    built.synced("alice", NOW - timedelta(minutes=1))
    built.synced("room-a", NOW - timedelta(minutes=1))
    built.synced("room-b", NOW - timedelta(hours=1))  # older than the poll interval
    interval = built.app.config.sync.poll_interval
    phases = poll_phases(built.app.config.calendars, interval)

    scheduler = build_scheduler(built.app)
    scheduler.start(paused=True)  # jobs get their next run time; none runs
    try:
        runs = {job.id: job.next_run_time for job in scheduler.get_jobs()}
        triggers = {job.id: job.trigger for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)

    for key in ("alice", "room-a"):
        assert NOW <= runs[f"poll:{key}"] < NOW + interval
        assert (runs[f"poll:{key}"] - EPOCH) % interval == phases[key]
        assert f"first-poll:{key}" not in runs
    assert NOW <= runs["first-poll:room-b"] <= NOW + timedelta(seconds=10)
    # room-b's own poll keeps its phase: counted from the epoch, unjittered.
    first = runs["poll:room-b"]
    assert (first - EPOCH) % interval == phases["room-b"]
    later = triggers["poll:room-b"].get_next_fire_time(first, first)
    assert later - first == interval
    assert triggers["poll:room-b"].jitter is None
    reconcile = triggers["reconcile:alice"]
    assert (reconcile.start_date - EPOCH) == poll_phases(
        built.app.config.calendars, built.app.config.sync.reconcile_every)["alice"]
