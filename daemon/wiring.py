"""The composition root: the one place that builds calpool's object graph
from a ``Config``.

Every subcommand that touches the database or the providers calls
:func:`build`; tests call it too, with their own config, clock and
connector registry.  Each service is built here once and handed what it
needs; none reaches another through its attributes.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.caldav import CalDAVAccount, CalDAVConnector, SyncMethod
from connectors.retrying import RetryPolicy
from connectors.smtp import SmtpMailSender
from connectors.webhook import HttpWebhookSender
from daemon.config import ConfigError, resolve_secret
from daemon.config.settings import (
    THROTTLED_PER_CALENDAR,
    Account,
    CaldavAccount,
    Config,
    GoogleAccount,
)
from daemon.config.settings import MicrosoftAccount as MicrosoftSettings
from daemon.documents import booking_document
from daemon.metrics import Metrics
from engine.core.model import Booking
from engine.ports import CalendarConnector, CalendarRef, RequestObserver
from engine.services.availability import BusyCache, SlotService
from engine.services.booking import BookingService
from engine.services.channels import ChannelPolicy, ChannelService, ChannelTarget
from engine.services.delivery import CalendarSource, invitation_delivery, known_addresses
from engine.services.drafts import Catalog
from engine.services.housekeeping import RetentionPeriods, register_calendars
from engine.services.idempotency import Claimer, IdempotencyKeys, IdempotentRequests
from engine.services.leases import LeaseKeeper
from engine.services.limits import AccountLimit, LimitedConnector, LimitTiming
from engine.services.links import LinkService
from engine.services.mail import MailComposer, MailDispatcher
from engine.services.manage import ManageService
from engine.services.outbox import OutboxPolicy, OutboxWorker
from engine.services.pools import PoolReports
from engine.services.processes import ProcessRegistry
from engine.services.push import PushReceiver, PushRoute
from engine.services.reschedule import RescheduleService
from engine.services.room_answers import RoomAnswers
from engine.services.status import StatusQuery
from engine.services.sync import CalendarBinding, FetchObserver, SyncService, SyncWindow
from engine.services.webhooks import Endpoint, WebhookDispatcher, decode_secret
from engine.store import StatusChange, Store

Clock = Callable[[], datetime]

ConnectorFactory = Callable[[Account, RequestObserver], CalendarConnector]
"""Builds the connector of one configured account; the observer counts its
HTTP requests."""

# A request under an Idempotency-Key has surely died when its claim is this
# much older than twice the longest it could wait for the providers.
ABANDONED_AFTER = timedelta(minutes=2)


def utc_now() -> datetime:
    return datetime.now(UTC)


def process_holder() -> str:
    """A name for this process in leases and the processes table:
    ``host:pid:random`` (the random part tells a restarted pid apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def caldav_connector(account: Account, observe: RequestObserver) -> CalendarConnector:
    assert isinstance(account, CaldavAccount)
    password = resolve_secret(account.password) if account.password is not None else None
    return CalDAVConnector(
        CalDAVAccount(
            url=account.url,
            username=account.username,
            password=password,
            ca_file=str(account.ca_file) if account.ca_file is not None else None,
            sync_method=SyncMethod(account.sync_method),
        ),
        observe=observe,
    )


def google_connector(account: Account, observe: RequestObserver) -> CalendarConnector:
    # Imported here, as the Microsoft connector below: google-api-python-client
    # and msal cost a process ~17 MB of RSS, which a site without such an
    # account should not pay (bench/scale.py's RSS target).
    from connectors.google import GoogleAccount as GoogleConnectorAccount
    from connectors.google import GoogleConnector

    assert isinstance(account, GoogleAccount)
    where = account.service_account.key_path
    try:
        info = json.loads(resolve_secret(account.service_account))
        settings = GoogleConnectorAccount(
            service_account_info=info,
            subject=account.subject,
            api_url=account.api_url,
            ca_file=str(account.ca_file) if account.ca_file is not None else None,
        )
    except (ValueError, TypeError, AttributeError) as exc:  # not JSON, or no key
        raise ConfigError([f"{where}: not a usable service account key ({exc})"]) from None
    return GoogleConnector(settings, observe=observe)


MICROSOFT_RETRY = RetryPolicy(attempts=3, initial_wait=0.5, max_wait=5.0)
"""Retries inside one Graph call.  A Retry-After longer than ``max_wait``
is not slept out in the call (Exchange asks for tens of seconds after a
burst): that would hold one of the account's slots and keep the throttle
from the calendar's status; it goes to the mailbox's cool-down and the
sync's retry instead."""


def microsoft_connector(account: Account, observe: RequestObserver) -> CalendarConnector:
    """A Microsoft 365 account: its client secret resolved, or its
    certificate's private key (PEM) read from ``certificate_file``."""
    from connectors.microsoft import MicrosoftAccount, MicrosoftConnector

    assert isinstance(account, MicrosoftSettings)
    where = f"accounts.{account.key}"
    secret = resolve_secret(account.client_secret) if account.client_secret is not None else None
    key: str | None = None
    if account.certificate_file is not None:
        try:
            key = account.certificate_file.read_text()
        except OSError as exc:
            raise ConfigError([f"{where}.certificate_file: {exc}"]) from None
    try:
        settings = MicrosoftAccount(
            tenant_id=account.tenant_id,
            client_id=account.client_id,
            client_secret=secret,
            certificate_key=key,
            certificate_thumbprint=account.certificate_thumbprint,
            graph_url=account.graph_url,
            authority_url=account.authority_url,
            ca_file=str(account.ca_file) if account.ca_file is not None else None,
            tentative_is_busy=account.tentative_is_busy,
            retry=MICROSOFT_RETRY,
        )
    except ValueError as exc:
        raise ConfigError([f"{where}: {exc}"]) from None
    return MicrosoftConnector(settings, observe=observe)


CONNECTORS: Mapping[str, ConnectorFactory] = {
    "caldav": caldav_connector,
    "google": google_connector,
    "microsoft": microsoft_connector,
}
"""The providers this build serves, by ``accounts.<key>.provider``."""


@dataclass
class App:
    """Everything a running calpool process uses, built once from config."""

    config: Config
    store: Store
    connectors: Mapping[str, CalendarConnector]
    cache: BusyCache
    sync: SyncService
    slots: SlotService
    bookings: BookingService
    outbox: OutboxWorker
    reschedule: RescheduleService
    links: LinkService
    pools: PoolReports
    webhooks: WebhookDispatcher
    manage: ManageService
    keyed: IdempotentRequests
    status: StatusQuery
    retention: RetentionPeriods
    clock: Clock
    push: PushReceiver
    channels: ChannelService
    room_answers: RoomAnswers
    leases: LeaseKeeper
    """This process's sync and job leases (one holder name for all)."""
    processes: ProcessRegistry
    """This process's record and its config's fingerprint in the database."""
    unavailable: Mapping[str, str] = field(default_factory=dict)
    """Accounts that this build cannot serve, with the reason."""
    limits: Mapping[str, AccountLimit] = field(default_factory=dict)
    """Each served account's limit, shared by every caller of its connector."""
    metrics: Metrics = field(default_factory=Metrics)
    mail: MailDispatcher | None = None
    """The attendee's emails; ``None`` without ``[smtp]``."""
    after_marks: list[Callable[[], object]] = field(default_factory=list)
    """Called after a push delivery marked calendars in this process: the
    running daemon wakes its sync-requested job, so the calendar is synced
    at once rather than at the job's next tick (empty without a scheduler)."""

    def marked(self) -> None:
        """A push delivery received here marked calendars for a sync."""
        for wake in self.after_marks:
            wake()

    def watch_metrics(self) -> None:
        """Let ``/metrics`` read this app's store (a reload calls it again
        on the app that stays when the new one could not be built)."""
        providers = {key: self.config.account_of(key).provider for key in self.config.sources}
        self.metrics.watch(self.status, self.clock, providers)

    def retire(self) -> None:
        """Stop what this app runs beside the store (a reload replaces it;
        the store is shared with the new app)."""
        self.bookings.close()
        self.webhooks.close()
        for connector in self.connectors.values():
            close = getattr(connector, "close", None)
            if callable(close):
                close()

    def close(self) -> None:
        self.retire()
        self.store.close()


def _calendars_fingerprint(config: Config) -> str:
    """A config not read from a file (tests build some): named by its calendars."""
    return hashlib.sha256(json.dumps(sorted(config.calendars)).encode()).hexdigest()


def _webhooks(config: Config, store: Store, metrics: Metrics,
              bookings: BookingService) -> WebhookDispatcher:
    endpoints = []
    for entry in config.webhooks:
        try:
            key = decode_secret(resolve_secret(entry.secret))
        except ValueError as exc:
            raise ConfigError([f"{entry.secret.key_path}: {exc}"]) from None
        endpoints.append(Endpoint(entry.url, key, entry.events, entry.event_types))

    def render(booking: Booking, history: Sequence[StatusChange]) -> Mapping[str, Any]:
        owner = config.calendars.get(booking.owner)
        zone = owner.timezone if owner is not None else config.daemon.timezone
        return booking_document(booking, list(history), zone,
                                deliveries=bookings.deliveries(booking.id))

    sender = HttpWebhookSender(observe=metrics.request_observer("webhook", "webhooks"))
    return WebhookDispatcher(store, endpoints, sender, render)


def _mail(config: Config, store: Store, sources: Mapping[str, CalendarSource]
          ) -> MailDispatcher | None:
    smtp = config.smtp
    if smtp is None:
        return None
    password = resolve_secret(smtp.password) if smtp.password is not None else None
    sender = SmtpMailSender(smtp.host, smtp.port, security=smtp.security,
                            username=smtp.username,
                            password=(lambda: password) if password is not None else None,
                            timeout=smtp.timeout.total_seconds())
    composer = MailComposer(sender=smtp.sender, public_url=config.http.public_url,
                            event_types=config.event_types, calendars=config.calendars,
                            sources=sources)
    return MailDispatcher(store, sender, composer, from_address=smtp.sender)


def _push_routes(config: Config, bindings: Mapping[str, CalendarBinding]
                 ) -> dict[str, PushRoute]:
    """Each served calendar's provider and connector, for push deliveries."""
    return {
        key: PushRoute(config.account_of(key).provider, binding.connector)
        for key, binding in bindings.items()
        if binding.connector is not None
    }


def build(
    config: Config,
    *,
    clock: Clock = utc_now,
    on_fetched: FetchObserver | None = None,
    load_cache: bool = True,
    store: Store | None = None,
    metrics: Metrics | None = None,
    connectors: Mapping[str, ConnectorFactory] = CONNECTORS,
    limit_timing: LimitTiming | None = None,
    limits: Mapping[str, AccountLimit] | None = None,
    holder: str | None = None,
) -> App:
    """Open the store (refusing an unmigrated one), build a connector per
    account with the factory registered for its provider, and the services
    over them.  Raises ``SchemaNotCurrent`` and ``ConfigError`` (an unset
    secret variable) for the caller to report.

    A reload passes the running ``store`` and ``metrics``: the new services
    share the database connection pool, and the counters carry on.

    Every connector is built behind its account's limit
    (``accounts.<key>.max_concurrent`` calls in flight, one cool-down after
    a throttle for all its callers); ``limit_timing`` is how the limits tell
    time (tests pass a clock they move).  A reload passes the running
    ``limits`` too: an account whose ``max_concurrent`` stayed keeps its
    limit, so calls still in flight on the old app count and a cool-down
    carries over.

    ``holder`` names this process in the leases it takes (a reload passes
    the running one, so the leases it holds stay its own)."""
    metrics = metrics or Metrics()
    built: dict[str, CalendarConnector] = {}
    account_limits: dict[str, AccountLimit] = {}
    unavailable: dict[str, str] = {}
    for key, account in config.accounts.items():
        factory = connectors.get(account.provider)
        if factory is None:
            unavailable[key] = f"the {account.provider} connector is not part of this build yet"
        else:
            connector = factory(account, metrics.request_observer(account.provider, key))
            limit = (limits or {}).get(key)
            if limit is None or limit.max_concurrent != account.max_concurrent:
                limit = AccountLimit(
                    key, max_concurrent=account.max_concurrent, timing=limit_timing,
                    observer=metrics.account_observer(key, account.max_concurrent),
                    cool_down_per_calendar=account.provider in THROTTLED_PER_CALENDAR)
            account_limits[key] = limit
            built[key] = LimitedConnector(connector, limit)
    if store is None:
        store = Store.open(config.daemon.database_url)
    bindings = {}
    for key, calendar in config.calendars.items():
        source = config.sources[key]
        bindings[key] = CalendarBinding(
            key,
            CalendarRef(source.external_id, calendar.timezone, source.subject),
            built.get(source.account),
            unavailable.get(source.account, ""),
        )
    register_calendars(store, config.calendars)
    leases = LeaseKeeper(store, holder or process_holder(), config.sync.lease_ttl, clock=clock)
    cache = BusyCache(config.calendars)
    if load_cache:
        cache.reload(store, list(config.calendars))
    slots = SlotService(
        store,
        cache,
        calendars=config.calendars,
        pools=config.pools,
        event_types=config.event_types,
        stale_after=config.sync.stale_after,
    )
    sources = {
        key: CalendarSource(source.account, config.accounts[source.account].provider,
                            source.external_id, source.subject)
        for key, source in config.sources.items()
    }
    catalog = Catalog(
        config.calendars,
        config.pools,
        config.event_types,
        bindings,
        addresses=known_addresses(sources),
        delivers=invitation_delivery(sources),
        accounts={key: source.account for key, source in sources.items()},
    )
    outbox = OutboxWorker(store, cache, catalog,
                          policy=OutboxPolicy(hold_for=config.daemon.outbox_claim_hold))
    room_answers = RoomAnswers(store, catalog, outbox,
                               answer_within=config.sync.room_answer_within, clock=clock)
    sync = SyncService(
        store,
        bindings,
        window=SyncWindow(config.sync.window_past, config.sync.window_future),
        cache=cache,
        clock=clock,
        leases=leases,
        on_fetched=on_fetched,
        on_synced=metrics.observe_sync,
        on_applied=room_answers.seen_in_sync,
    )
    bookings = BookingService(store, cache, catalog, outbox, clock=clock)
    reschedule = RescheduleService(store, cache, catalog, outbox)
    keys = IdempotencyKeys(store, clock=clock,
                           abandon_after=2 * config.http.confirm_within + ABANDONED_AFTER,
                           claimer=Claimer(holder=leases.holder,
                                           silent_for=config.sync.lease_ttl,
                                           runs_at_most=2 * config.http.confirm_within))
    app = App(
        config=config,
        store=store,
        connectors=built,
        cache=cache,
        sync=sync,
        slots=slots,
        bookings=bookings,
        outbox=outbox,
        reschedule=reschedule,
        links=LinkService(store, bookings, config.event_types,
                          default_expiry=config.links.default_expiry),
        pools=PoolReports(store, cache, calendars=config.calendars, pools=config.pools),
        webhooks=_webhooks(config, store, metrics, bookings),
        manage=ManageService(store, bookings, reschedule, config.event_types,
                             mail=config.smtp is not None),
        mail=_mail(config, store, sources),
        keyed=IdempotentRequests(keys),
        status=StatusQuery(store, list(config.calendars), stale_after=config.sync.stale_after),
        retention=RetentionPeriods(config.retention.bookings, config.retention.idempotency_keys),
        clock=clock,
        push=PushReceiver(store, _push_routes(config, bindings), clock=clock),
        channels=ChannelService(
            store,
            {key: ChannelTarget(route.provider, bindings[key].ref, route.connector)
             for key, route in _push_routes(config, bindings).items()},
            ChannelPolicy.from_settings(push=config.sync.push, public_url=config.http.public_url),
            clock=clock,
        ),
        room_answers=room_answers,
        leases=leases,
        processes=ProcessRegistry(
            store, holder=leases.holder, host=socket.gethostname(),
            fingerprint=config.fingerprint or _calendars_fingerprint(config),
            calendars=list(config.calendars), clock=clock, alive_within=config.sync.lease_ttl),
        unavailable=unavailable,
        limits=account_limits,
        metrics=metrics,
    )
    app.watch_metrics()
    return app
