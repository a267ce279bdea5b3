"""The daemon's periodic jobs (APScheduler, one scheduler per process).

Jobs are per process; who does the work is decided by the database (sync
leases), so several daemons on one PostgreSQL never sync a calendar twice at
once (APScheduler 3's job stores cannot be shared between processes).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import UTC, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from daemon.wiring import App

log = logging.getLogger(__name__)

# How often due outbox jobs (booking writes, retries, deletes) are run; a
# booking request drains its own jobs at once, this catches the rest.
OUTBOX_EVERY = timedelta(seconds=2)

# How often expired bookings, idempotency keys and links are purged; the
# retention periods are days, so a few runs a day keep within them.
RETENTION_EVERY = timedelta(hours=6)

# Syncs at once: providers answer slowly; more threads would only queue on
# the provider's rate limits and on the store's write lock.
SYNC_WORKERS = 4


def jitter_for(interval: timedelta) -> int:
    """Seconds of random delay per run, so calendars spread over the
    interval instead of hitting the providers all at once."""
    return max(1, min(60, int(interval.total_seconds() / 10)))


def every(interval: timedelta) -> IntervalTrigger:
    return IntervalTrigger(
        seconds=interval.total_seconds(), jitter=jitter_for(interval), timezone=UTC
    )


def build_scheduler(app: App, *, rng: random.Random | None = None) -> BackgroundScheduler:
    """The jobs of ``calpool run``, not started yet."""
    rng = rng or random.Random()
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(SYNC_WORKERS)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC,
    )
    settings = app.config.sync
    now = app.clock()
    first_spread = min(10.0, settings.poll_interval.total_seconds())
    for key in app.config.calendars:
        scheduler.add_job(
            sync_calendar,
            every(settings.poll_interval),
            args=[app, key],
            id=f"poll:{key}",
            name=f"poll {key}",
            # Sync everything soon after start, spread over a few seconds.
            next_run_time=now + timedelta(seconds=rng.uniform(0, first_spread)),
        )
        scheduler.add_job(
            sync_calendar,
            every(settings.reconcile_every),
            args=[app, key],
            kwargs={"reconcile": True},
            id=f"reconcile:{key}",
            name=f"reconcile {key}",
        )
    scheduler.add_job(
        drain_outbox,
        IntervalTrigger(seconds=OUTBOX_EVERY.total_seconds(), timezone=UTC),
        args=[app],
        id="outbox",
        name="drain the outbox",
        next_run_time=now,
    )
    scheduler.add_job(
        purge_expired,
        IntervalTrigger(seconds=RETENTION_EVERY.total_seconds(), timezone=UTC),
        args=[app],
        id="retention",
        name="purge expired bookings, idempotency keys and links",
        next_run_time=now + timedelta(seconds=30),
    )
    # The sync window is whole UTC days; right after midnight every calendar
    # lists its moved window, dropping the day that left it.
    scheduler.add_job(
        roll_window_forward,
        CronTrigger(hour=0, minute=0, second=30, timezone=UTC),
        args=[app],
        id="window-roll-forward",
        name="roll the sync window forward",
    )
    return scheduler


def sync_calendar(app: App, key: str, *, reconcile: bool = False) -> None:
    """A scheduled sync; failures are logged by the sync service itself."""
    report = app.sync.sync_calendar(key, reconcile=reconcile)
    if not report.failed:
        log.debug("sync of %s: %s, %d changed, %d removed", key, report.outcome,
                  report.changed, report.removed, extra={"calendar": key})


def drain_outbox(app: App) -> None:
    report = app.bookings.outbox.drain(app.clock())
    app.bookings.outbox.settle(app.clock())  # a booking left pending with every write done
    app.metrics.observe_outbox(done=report.done, retried=report.retried, dead=report.dead)
    if report.jobs:
        log.info("outbox: %d done, %d to retry, %d given up",
                 report.done, report.retried, report.dead)


def roll_window_forward(app: App) -> None:
    moved = 0
    window = app.sync.window_at(app.clock())
    with app.store.reader() as uow:
        states = {state.calendar: state for state in uow.calendars.sync_states()}
    for key in app.config.calendars:
        state = states.get(key)
        if state is not None and state.window is not None and state.window != window:
            app.sync.sync_calendar(key)
            moved += 1
    log.info("sync window is now %s to %s (%d calendars relisted)", window.start, window.end, moved)


@dataclass(frozen=True, slots=True)
class Purged:
    bookings: int
    idempotency_keys: int
    links: int


def purge_expired(app: App) -> Purged:
    """Apply ``[retention]``: bookings that ended more than
    ``retention.bookings`` ago go with their attendee data (history,
    reservations, outbox jobs cascade), so do the links used for them;
    idempotency keys older than ``retention.idempotency_keys``; links that
    expired unused."""
    now = app.clock()
    settings = app.config.retention
    with app.store.unit_of_work() as uow:
        purged = Purged(
            bookings=uow.bookings.purge_ended_before(now - settings.bookings),
            idempotency_keys=uow.idempotency.purge_created_before(now - settings.idempotency_keys),
            links=uow.links.purge_expired_before(now)
            + uow.links.purge_used_before(now - settings.bookings),
        )
        uow.commit()
    for kind in ("bookings", "idempotency_keys", "links"):
        count = getattr(purged, kind)
        if count:
            app.metrics.retention_purged.labels(kind).inc(count)
    if purged.bookings or purged.idempotency_keys or purged.links:
        log.info("retention: purged %d bookings, %d idempotency keys, %d links",
                 purged.bookings, purged.idempotency_keys, purged.links)
    return purged


def forget_removed_calendars(app: App) -> list[str]:
    """Drop calendars that the config no longer names from the store, with
    their cached events, cursor, lease and push channels.  Bookings name
    calendars by key and stay.

    A removed calendar's push channels cannot be stopped at the provider:
    its account and provider id left the config with it, and the store keeps
    only a digest of each channel's token.  They run out at their expiry
    (days at most), and the hook answers their notifications as unknown
    once the rows are gone; the log names each one."""
    with app.store.unit_of_work() as uow:
        stored = uow.calendars.keys()
        removed = [key for key in stored if key not in app.config.calendars]
        for key in removed:
            for channel in uow.channels.for_calendar(key):
                log.info("push channel %s of removed calendar %s runs out at %s",
                         channel.channel_id, key, channel.expires_at.isoformat(),
                         extra={"calendar": key})
            uow.calendars.remove(key)
        uow.commit()
    if removed:
        log.info("dropped %d calendars no longer in the config from the cache: %s",
                 len(removed), ", ".join(removed))
    return removed
