"""`calpool run`'s poll jobs: one poll of every calendar right after start,
then each calendar at its own phase of the poll interval (issue 24)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from daemon.scheduler import build_scheduler
from engine.services.poll_schedule import EPOCH, poll_phases
from tests.daemon.ops.conftest import NOW, Built

BuildApp = Callable[..., Built]


def test_each_calendar_polls_at_start_and_then_at_its_own_phase(build_app: BuildApp) -> None:
    built = build_app()
    calendars = built.app.config.calendars
    interval = built.app.config.sync.poll_interval
    phases = poll_phases(calendars, interval)

    scheduler = build_scheduler(built.app)
    scheduler.start(paused=True)  # jobs get their next run time; none runs
    try:
        runs = {job.id: job.next_run_time for job in scheduler.get_jobs()}
        triggers = {job.id: job.trigger for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)

    for key in calendars:
        assert NOW <= runs[f"first-poll:{key}"] <= NOW + timedelta(seconds=10)
        first = runs[f"poll:{key}"]
        assert NOW <= first < NOW + interval
        assert (first - EPOCH) % interval == phases[key]
        # Every later run keeps the phase: counted from the epoch, unjittered,
        # and not moved by the extra poll at start (a job of its own).
        assert triggers[f"poll:{key}"].get_next_fire_time(first, first) - first == interval
        assert triggers[f"poll:{key}"].jitter is None
        reconcile = triggers[f"reconcile:{key}"]
        assert reconcile.start_date - EPOCH == poll_phases(
            calendars, built.app.config.sync.reconcile_every)[key]
    # Spread: no two calendars share a phase.
    assert len({runs[f"poll:{key}"] for key in calendars}) == len(calendars)
