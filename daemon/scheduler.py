"""The daemon's periodic jobs (APScheduler, one scheduler per process).

Jobs are per process; who does the work is decided by the database (named
leases: ``sync:<calendar>`` for each sync, ``job:retention``,
``job:window-roll`` and ``job:channels`` for the jobs that must run in one
process at a time), so several daemons on one PostgreSQL never sync a
calendar twice at once nor run those jobs side by side (APScheduler 3's job
stores cannot be shared between processes).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from concurrent import futures
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from daemon.cycles import PollCycles
from daemon.wiring import App
from engine.services import housekeeping, leases
from engine.services.housekeeping import Purged
from engine.services.poll_schedule import anchor_of, first_run, poll_phases

log = logging.getLogger(__name__)

# How often due outbox jobs (booking writes, retries, deletes) are run; a
# booking request drains its own jobs at once, this catches the rest.
OUTBOX_EVERY = timedelta(seconds=2)

# How often calendars marked by a push notification are looked for and
# synced (by whichever process gets the lease): push is only worth it when
# the change shows within seconds.
SYNC_REQUESTED_EVERY = timedelta(seconds=2)

# How often invited rooms' answers are read back (a room's booking assistant
# answers within seconds; a silent one is replaced after sync.room_answer_within).
ROOM_ANSWERS_EVERY = timedelta(seconds=10)

# How often push channels are opened, renewed and stopped as needed.
CHANNELS_EVERY = timedelta(minutes=5)

# How often expired bookings, idempotency keys and links are purged; the
# retention periods are days, so a few runs a day keep within them.
RETENTION_EVERY = timedelta(hours=6)

# Rounds a pushed-sync worker runs for marks that arrived while it synced
# its account, before it leaves them to the job's next tick.
WORKER_ROUNDS = 20

# Syncs at once: providers answer slowly; more threads would only queue on
# the provider's rate limits and on the store's write lock.
SYNC_WORKERS = 4


def at_phase(interval: timedelta, phase: timedelta) -> IntervalTrigger:
    """Every ``interval``, at ``phase`` of it counted from the epoch (no
    jitter: the phases spread the calendars, and a restart keeps them)."""
    return IntervalTrigger(seconds=interval.total_seconds(), start_date=anchor_of(phase),
                           timezone=UTC)


class SyncRequestedJob:
    """The job that syncs the calendars push notifications marked, run every
    :data:`SYNC_REQUESTED_EVERY` and at once when a delivery this process
    received marked one (:meth:`wake`): a single process would otherwise
    show a pushed change only at the job's next tick, up to 2 s later.

    The job itself only hands each account's marked calendars to a worker
    of its own pool and returns: one account's calendars are synced one
    after another, accounts side by side, so a throttled account that waits
    out a long Retry-After holds back neither the other accounts nor the
    next wake.  A worker looks again for its account's marks when it is
    done (not for a calendar another process's lease made it skip, which
    that process serves); a mark that lands just as a worker ends waits for
    the next tick."""

    JOB_ID = "sync-requested"

    def __init__(self, app: App) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._busy: set[str] = set()  # accounts whose worker runs
        self._closed = False
        self._pool = futures.ThreadPoolExecutor(SYNC_WORKERS, thread_name_prefix="pushed-sync")
        self._scheduler: BackgroundScheduler | None = None

    def attach(self, scheduler: BackgroundScheduler) -> None:
        self._scheduler = scheduler

    def __call__(self) -> None:
        for account, keys in self._due().items():
            with self._lock:
                if self._closed or account in self._busy:
                    continue
                self._busy.add(account)
            self._pool.submit(self._run, account, keys)

    def _due(self) -> dict[str, list[str]]:
        by_account: dict[str, list[str]] = {}
        for key in self._app.sync.requested_due():
            by_account.setdefault(self._app.config.sources[key].account, []).append(key)
        return by_account

    def _run(self, account: str, keys: list[str]) -> None:
        try:
            # Bounded, so a calendar marked again and again cannot keep a
            # worker for ever: the job's next tick takes the rest.
            for _ in range(WORKER_ROUNDS):
                if not keys:
                    break
                skipped = set()
                for key in keys:
                    report = self._app.sync.sync_calendar(key)
                    if report.outcome == "skipped":
                        skipped.add(key)
                    elif not report.failed:
                        log.debug("pushed sync of %s: %s, %d changed, %d removed", key,
                                  report.outcome, report.changed, report.removed,
                                  extra={"calendar": key})
                if self._closed:
                    return
                keys = [key for key in self._due().get(account, []) if key not in skipped]
        except Exception:  # the sync service reports a calendar's own failures
            log.exception("pushed syncs of account %s", account)
        finally:
            with self._lock:
                self._busy.discard(account)

    def wake(self) -> None:
        """Run the job now (it only reads the marks and hands them out)."""
        scheduler = self._scheduler
        if self._closed or scheduler is None or not scheduler.running:
            return
        # The scheduler may be stopping: the mark stays for another process or the next start.
        with contextlib.suppress(JobLookupError, SchedulerNotRunningError):
            scheduler.modify_job(self.JOB_ID, next_run_time=datetime.now(UTC))

    def close(self) -> None:
        """Let the syncs in flight commit (or roll back), start no more."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True)


def build_scheduler(
    app: App, *, rng: random.Random | None = None, cycles: PollCycles | None = None,
    requested: SyncRequestedJob | None = None,
) -> BackgroundScheduler:
    """The jobs of ``calpool run``, not started yet.  ``cycles`` counts the
    polls (progress of the first pass, a summary line per cycle);
    ``requested`` is the sync-requested job, which the caller may wake."""
    rng = rng or random.Random()
    requested = requested or SyncRequestedJob(app)
    cycles = cycles or PollCycles(app.config.calendars)
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(SYNC_WORKERS)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC,
    )
    settings = app.config.sync
    now = app.clock()
    first_spread = min(10.0, settings.poll_interval.total_seconds())
    keys = list(app.config.calendars)
    # Polls and reconciles spread evenly, each calendar at its own phase.
    polls = poll_phases(keys, settings.poll_interval)
    reconciles = poll_phases(keys, settings.reconcile_every)
    # Every calendar is polled once soon after start (spread over a few
    # seconds), by a job of its own: an interval trigger counts on from its
    # last run, so the calendar's own poll job keeps its phase.
    for key in keys:
        scheduler.add_job(
            poll_calendar,
            DateTrigger(now + timedelta(seconds=rng.uniform(0, first_spread)), timezone=UTC),
            args=[app, key, cycles],
            id=f"first-poll:{key}",
            name=f"first poll {key}",
        )
        scheduler.add_job(
            poll_calendar,
            at_phase(settings.poll_interval, polls[key]),
            args=[app, key, cycles],
            id=f"poll:{key}",
            name=f"poll {key}",
            next_run_time=first_run(polls[key], settings.poll_interval, now),
        )
        scheduler.add_job(
            sync_calendar,
            at_phase(settings.reconcile_every, reconciles[key]),
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
        deliver_webhooks,
        IntervalTrigger(seconds=OUTBOX_EVERY.total_seconds(), timezone=UTC),
        args=[app],
        id="webhooks",
        name="deliver webhooks",
        next_run_time=now,
    )
    if app.mail is not None:
        scheduler.add_job(
            send_emails,
            IntervalTrigger(seconds=OUTBOX_EVERY.total_seconds(), timezone=UTC),
            args=[app],
            id="mail",
            name="send the attendees' emails",
            next_run_time=now,
        )
    scheduler.add_job(
        check_room_answers,
        IntervalTrigger(seconds=ROOM_ANSWERS_EVERY.total_seconds(), timezone=UTC),
        args=[app],
        id="room-answers",
        name="read invited rooms' answers; replace rooms that declined or stayed silent",
        next_run_time=now + timedelta(seconds=5),
    )
    scheduler.add_job(
        requested,
        IntervalTrigger(seconds=SYNC_REQUESTED_EVERY.total_seconds(), timezone=UTC),
        id=SyncRequestedJob.JOB_ID,
        name="sync calendars a push notification marked",
        next_run_time=now,
    )
    scheduler.add_job(
        maintain_channels,
        IntervalTrigger(seconds=CHANNELS_EVERY.total_seconds(), timezone=UTC),
        args=[app],
        id="channels",
        name="open, renew and stop push channels",
        next_run_time=now + timedelta(seconds=first_spread),
    )
    scheduler.add_job(
        purge_expired,
        IntervalTrigger(seconds=RETENTION_EVERY.total_seconds(), timezone=UTC),
        args=[app],
        id="retention",
        name="purge expired bookings, idempotency keys and links",
        next_run_time=now + timedelta(seconds=30),
    )
    scheduler.add_job(
        app.processes.heartbeat,
        IntervalTrigger(seconds=settings.lease_ttl.total_seconds() / 3, timezone=UTC),
        id="process",
        name="say in the store that this process runs",
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
    requested.attach(scheduler)
    return scheduler


def sync_calendar(app: App, key: str, *, reconcile: bool = False) -> None:
    """A scheduled sync; failures are logged by the sync service itself."""
    report = app.sync.sync_calendar(key, reconcile=reconcile)
    if not report.failed:
        log.debug("sync of %s: %s, %d changed, %d removed", key, report.outcome,
                  report.changed, report.removed, extra={"calendar": key})


def poll_calendar(app: App, key: str, cycles: PollCycles | None = None) -> None:
    """A scheduled poll; a calendar with a live push channel is polled only
    every ``sync.safety_poll`` (push brings its changes; missed ones happen)."""
    pushed = key in app.channels.live()
    began = time.perf_counter()
    report = app.sync.poll(key, quiet_for=app.config.sync.safety_poll if pushed else None)
    if cycles is not None:
        cycles.polled(key, report, time.perf_counter() - began)
    if report is not None and not report.failed:
        log.debug("poll of %s: %s, %d changed, %d removed", key, report.outcome,
                  report.changed, report.removed, extra={"calendar": key})


def maintain_channels(app: App) -> None:
    """Open, renew and stop push channels (``engine.services.channels``),
    in one process at a time."""
    report = app.leases.run_exclusive(leases.CHANNELS, app.channels.maintain)
    if report is None:
        return
    if report.opened or report.renewed or report.stopped:
        log.info("push channels: %d opened, %d renewed, %d stopped",
                 len(report.opened), len(report.renewed), len(report.stopped))


def stop_channels(app: App) -> None:
    """On shutdown: stop this config's push channels at their providers."""
    try:
        stopped = app.channels.stop_all()
    except Exception:  # the database may be gone already; channels run out anyway
        log.exception("stopping the push channels failed")
        return
    if stopped:
        log.info("stopped %d push channels", len(stopped))


def leave(app: App) -> None:
    """On shutdown: take this process off the store's list of processes."""
    try:
        app.processes.leave()
    except Exception:  # the database may be gone already; the row ages out
        log.exception("removing this process from the store failed")


def stop_removed_channels(old: App, new: App) -> None:
    """On reload: the old config's connectors stop the push channels of
    calendars the new config no longer names."""
    stopped = old.channels.stop_removed(new.config.calendars)
    if stopped:
        log.info("stopped %d push channels of removed calendars", len(stopped))


def drain_outbox(app: App) -> None:
    report = app.outbox.drain(app.clock())
    app.outbox.settle(app.clock())  # a booking left pending with every write done
    app.metrics.observe_outbox(done=report.done, retried=report.retried, dead=report.dead)
    if report.jobs:
        log.info("outbox: %d done, %d to retry, %d given up",
                 report.done, report.retried, report.dead)


def check_room_answers(app: App) -> None:
    report = app.room_answers.check(app.clock())
    if report.accepted or report.reassigned or report.failed:
        log.info("room answers: %d accepted, %d reassigned, %d bookings failed",
                 len(report.accepted), len(report.reassigned), len(report.failed))


def deliver_webhooks(app: App) -> None:
    report = app.webhooks.drain(app.clock())
    app.metrics.observe_webhooks(sent=report.sent, retried=report.retried, failed=report.failed)


def send_emails(app: App) -> None:
    if app.mail is None:
        return
    report = app.mail.drain(app.clock())
    if report.retried or report.failed:
        log.info("emails: %d sent, %d to retry, %d given up", report.sent, report.retried,
                 report.failed)


def roll_window_forward(app: App) -> None:
    rolled = app.leases.run_exclusive(leases.WINDOW_ROLL, app.sync.roll_window_forward)
    if rolled is None:
        return
    window, moved = rolled
    log.info("sync window is now %s to %s (%d calendars relisted)",
             window.start, window.end, len(moved))


def purge_expired(app: App) -> Purged | None:
    """Apply ``[retention]`` (``engine.services.housekeeping``) in one
    process at a time, count and log it (``None``: another process runs it)."""
    purged = app.leases.run_exclusive(
        leases.RETENTION, lambda: housekeeping.purge_expired(app.store, app.retention, app.clock()))
    if purged is None:
        return None
    for kind in ("bookings", "idempotency_keys", "links"):
        count = getattr(purged, kind)
        if count:
            app.metrics.retention_purged.labels(kind).inc(count)
    if purged.any:
        log.info("retention: purged %d bookings, %d idempotency keys, %d links",
                 purged.bookings, purged.idempotency_keys, purged.links)
    return purged


def forget_removed_calendars(app: App, *, reload: bool = False) -> list[str]:
    """On start and reload: record this process and its config's
    fingerprint in the store (a config other than the newest is logged),
    then drop the calendars the config no longer names, only when it is the
    newest (``engine.services.processes``), and log it."""
    app.processes.announce(reload=reload)
    removed = app.processes.forget_removed_calendars()
    if removed:
        log.info("dropped %d calendars no longer in the config from the cache: %s",
                 len(removed), ", ".join(removed))
    return removed
