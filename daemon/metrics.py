"""Prometheus metrics of one calpool process (``GET /metrics``).

Each :class:`Metrics` owns its ``CollectorRegistry`` (never the global one),
so a test can build many apps side by side.  Two kinds of figures:

- events counted as they happen, fed by the daemon: every sync through the
  sync service's ``on_synced`` observer (the engine knows nothing of
  Prometheus), every outbox pass through the scheduler's drain job, every
  slot query through the HTTP hook's middleware;
- state read from the store when scraped (:class:`StoreCollector`), so the
  figures are true even when another process did the work: staleness,
  cached events, bookings by status, outbox depth and the age of its oldest
  job.

Every name starts with ``calpool_``; the README lists them.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine.services.limits import LimitObserver
from engine.services.status import StatusQuery
from engine.services.sync import SyncReport

log = logging.getLogger("calpool.metrics")

# Syncs take from tens of milliseconds (an unchanged CalDAV collection) to
# minutes (a first listing of a busy calendar over a slow link).
SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# The slot query's target is 25 ms at the median; the buckets resolve that.
SLOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Metrics:
    """The counters and histograms of one process, and its registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._watched: Watched | None = None
        self._lock = threading.Lock()
        self.sync_seconds = Histogram(
            "calpool_sync_duration_seconds",
            "Time one sync of one calendar took, by outcome (synced, failed, skipped).",
            ["calendar", "outcome"], buckets=SYNC_BUCKETS, registry=self.registry,
        )
        self.syncs = Counter(
            "calpool_syncs",
            "Syncs of a calendar by outcome: synced, failed, or skipped (leased elsewhere).",
            ["calendar", "outcome"], registry=self.registry,
        )
        self.provider_requests = Counter(
            "calpool_provider_requests",
            "HTTP requests connectors sent to a provider, by provider, account and outcome "
            "(the answer's status class 2xx, 3xx, 4xx, 5xx, or error: no answer).",
            ["provider", "account", "outcome"], registry=self.registry,
        )
        self.provider_errors = Counter(
            "calpool_provider_errors",
            "Failed syncs of a calendar by the provider and the error's kind.",
            ["provider", "kind"], registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "calpool_webhook_deliveries",
            "Webhook delivery attempts by outcome: sent (2xx), retried, failed (given up).",
            ["outcome"], registry=self.registry,
        )
        self.outbox_jobs = Counter(
            "calpool_outbox_jobs",
            "Outbox jobs (provider writes of bookings) run, by outcome: "
            "done, retried (will run again), dead (given up).",
            ["outcome"], registry=self.registry,
        )
        self.retention_purged = Counter(
            "calpool_retention_purged",
            "Rows removed by the retention job: bookings, idempotency_keys, links.",
            ["kind"], registry=self.registry,
        )
        self.slot_query_seconds = Histogram(
            "calpool_slot_query_seconds",
            "Time to answer a slot query over HTTP, by route (event_type, link).",
            ["route"], buckets=SLOT_BUCKETS, registry=self.registry,
        )
        self.account_in_flight = Gauge(
            "calpool_account_requests_in_flight",
            "Connector calls of an account running at its provider now.",
            ["account"], registry=self.registry,
        )
        self.account_max_concurrent = Gauge(
            "calpool_account_max_concurrent",
            "The account's limit on calls in flight (accounts.<key>.max_concurrent).",
            ["account"], registry=self.registry,
        )
        self.account_throttles = Counter(
            "calpool_account_throttles",
            "Throttles (429 with a Retry-After) that started or extended an account's cool-down.",
            ["account"], registry=self.registry,
        )
        self.account_throttle_waits = Counter(
            "calpool_account_throttle_waits",
            "Calls that met an account's cool-down: slept (waited it out) or deferred "
            "(refused unsent, the caller retries after it).",
            ["account", "how"], registry=self.registry,
        )
        self.account_throttle_wait_seconds = Counter(
            "calpool_account_throttle_wait_seconds",
            "Seconds calls slept for an account's cool-down.",
            ["account"], registry=self.registry,
        )
        self.registry.register(StoreCollector(self.watched))

    def watch(self, status: StatusQuery, clock: Callable[[], datetime],
              providers: Mapping[str, str]) -> None:
        """Read store figures through ``status`` from now on, and name the
        provider of each calendar (``providers``: calendar key → provider)
        in sync figures; a reload watches the new ones, the counters carry
        on."""
        with self._lock:
            self._watched = Watched(status, clock, dict(providers))

    def watched(self) -> Watched | None:
        with self._lock:
            return self._watched

    def request_observer(self, provider: str, account: str) -> Callable[[str], None]:
        """The ``observe`` callback of one account's connector: one count
        per HTTP request it sent, by its outcome."""
        counter = self.provider_requests

        def observe(outcome: str) -> None:
            counter.labels(provider, account, outcome).inc()

        return observe

    def account_observer(self, account: str, max_concurrent: int) -> LimitObserver:
        """The observer of one account's limit (``engine.services.limits``)."""
        self.account_max_concurrent.labels(account).set(max_concurrent)
        self.account_in_flight.labels(account).set(0)
        return _AccountFigures(self)

    def observe_sync(self, report: SyncReport, seconds: float) -> None:
        """The sync service's ``on_synced`` observer."""
        self.sync_seconds.labels(report.calendar, report.outcome).observe(seconds)
        self.syncs.labels(report.calendar, report.outcome).inc()
        if report.failed:
            watched = self.watched()
            # A calendar the reloaded config dropped has no provider any more.
            provider = watched.providers.get(report.calendar, "unknown") if watched else "unknown"
            self.provider_errors.labels(provider, report.error_kind or "error").inc()

    def observe_webhooks(self, *, sent: int, retried: int, failed: int) -> None:
        for outcome, count in (("sent", sent), ("retried", retried), ("failed", failed)):
            if count:
                self.webhook_deliveries.labels(outcome).inc(count)

    def observe_outbox(self, *, done: int, retried: int, dead: int) -> None:
        for outcome, count in (("done", done), ("retried", retried), ("dead", dead)):
            if count:
                self.outbox_jobs.labels(outcome).inc(count)


class _AccountFigures:
    """Feeds the ``calpool_account_*`` figures from an account's limit."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def in_flight(self, account: str, calls: int) -> None:
        self._metrics.account_in_flight.labels(account).set(calls)

    def throttled(self, account: str, retry_after: float) -> None:
        self._metrics.account_throttles.labels(account).inc()

    def waited(self, account: str, seconds: float, *, deferred: bool) -> None:
        metrics = self._metrics
        metrics.account_throttle_waits.labels(account, "deferred" if deferred else "slept").inc()
        if not deferred:
            metrics.account_throttle_wait_seconds.labels(account).inc(seconds)


@dataclass(frozen=True, slots=True)
class Watched:
    status: StatusQuery
    clock: Callable[[], datetime]
    providers: Mapping[str, str]


class StoreCollector(Collector):
    """Figures read from the store at scrape time.  A store that does not
    answer gives ``calpool_store_up 0`` and nothing else, not a failed scrape."""

    def __init__(self, watched: Callable[[], Watched | None]) -> None:
        self._watched = watched

    def describe(self) -> list[Metric]:
        return []  # dynamic: registering must not read the store

    def collect(self) -> Iterator[Metric]:
        watched = self._watched()
        families: list[Metric] = []
        answered = False
        if watched is not None:
            try:
                families = list(_store_families(watched))
                answered = True
            except Exception as exc:  # the scrape reports the outage instead of failing
                log.warning("metrics: the database did not answer: %s", exc)
        up = GaugeMetricFamily("calpool_store_up", "1 when the database answered this scrape.")
        up.add_metric([], 1 if answered else 0)
        yield up
        yield from families


def _store_families(watched: Watched) -> Iterator[Metric]:
    now = watched.clock()
    status = watched.status.read(now, bookings=True, event_counts=True, webhooks=True)
    states, events, by_status = status.states, status.cached_events, status.bookings_by_status
    depth, oldest = status.outbox_depth, status.outbox_oldest
    staleness = GaugeMetricFamily(
        "calpool_calendar_staleness_seconds",
        "Seconds since the calendar's last successful sync (+Inf: never synced).",
        labels=["calendar"],
    )
    last_success = GaugeMetricFamily(
        "calpool_calendar_last_success_timestamp_seconds",
        "Unix time of the calendar's last successful sync (absent: never).",
        labels=["calendar"],
    )
    failing = GaugeMetricFamily(
        "calpool_calendar_failed",
        "1 when the calendar's most recent sync failed.", labels=["calendar"],
    )
    unreadable = GaugeMetricFamily(
        "calpool_calendar_unreadable_objects",
        "Objects of the calendar its connector fetched but could not read (their busy time is "
        "missing).", labels=["calendar"],
    )
    cached = GaugeMetricFamily(
        "calpool_cached_events", "Events of the calendar in the local cache.",
        labels=["calendar"],
    )
    for key in status.calendars:
        state = states.get(key)
        success = state.last_success_at if state is not None else None
        staleness.add_metric([key], _seconds_between(success, now))
        if success is not None:
            last_success.add_metric([key], success.timestamp())
        failing.add_metric([key], 1 if state is not None and state.failed else 0)
        cached.add_metric([key], events[key])
        unreadable.add_metric([key], len(state.unreadable) if state is not None else 0)
    yield from (staleness, last_success, failing, cached, unreadable)
    bookings = GaugeMetricFamily(
        "calpool_bookings", "Bookings in the store by status.", labels=["status"])
    for name in ("pending", "confirmed", "failed", "cancelled"):
        bookings.add_metric([name], by_status.get(name, 0))
    yield bookings
    webhooks = GaugeMetricFamily(
        "calpool_webhook_deliveries_by_state",
        "Webhook deliveries in the store by state: pending, done, failed (given up).",
        labels=["state"])
    for name in ("pending", "done", "failed"):
        webhooks.add_metric([name], status.webhooks.get(name, 0))
    yield webhooks
    yield GaugeMetricFamily(
        "calpool_outbox_depth", "Outbox jobs waiting to be done (provider writes).", value=depth)
    yield GaugeMetricFamily(
        "calpool_outbox_oldest_age_seconds",
        "Age of the oldest waiting outbox job (0: none waits).",
        value=0 if oldest is None else max(0.0, (now - oldest).total_seconds()),
    )


def _seconds_between(earlier: datetime | None, now: datetime) -> float:
    if earlier is None:
        return math.inf
    return max(0.0, (now - earlier).total_seconds())
