"""The one place that builds calpool's object graph from a ``Config``.

Every subcommand that touches the database or the providers calls
:func:`build`; tests call it too, with their own config and clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connectors.caldav import CalDAVAccount, CalDAVConnector, SyncMethod
from daemon.config import resolve_secret
from daemon.config.settings import Account, CaldavAccount, Config
from daemon.metrics import Metrics
from engine.ports import CalendarConnector, CalendarRef
from engine.services.availability import BusyCache, SlotService
from engine.services.booking import BookingService
from engine.services.drafts import Catalog
from engine.services.outbox import OutboxPolicy, OutboxWorker
from engine.services.sync import CalendarBinding, FetchObserver, SyncService, SyncWindow
from engine.store import Store

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


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
    clock: Clock
    unavailable: Mapping[str, str] = field(default_factory=dict)
    """Accounts that this build cannot serve, with the reason."""
    metrics: Metrics = field(default_factory=Metrics)

    def close_connectors(self) -> None:
        for connector in self.connectors.values():
            close = getattr(connector, "close", None)
            if callable(close):
                close()

    def close(self) -> None:
        self.close_connectors()
        self.store.close()


def build(
    config: Config,
    *,
    clock: Clock = utc_now,
    on_fetched: FetchObserver | None = None,
    load_cache: bool = True,
    store: Store | None = None,
    metrics: Metrics | None = None,
) -> App:
    """Open the store (refusing an unmigrated one), build a connector per
    account and the services over them.  Raises ``SchemaNotCurrent`` and
    ``ConfigError`` (an unset secret variable) for the caller to report.

    A reload passes the running ``store`` and ``metrics``: the new services
    share the database connection pool, and the counters carry on."""
    connectors: dict[str, CalendarConnector] = {}
    unavailable: dict[str, str] = {}
    for key, account in config.accounts.items():
        connector = _connector(account)
        if connector is None:
            unavailable[key] = f"the {account.provider} connector is not part of this build yet"
        else:
            connectors[key] = connector
    metrics = metrics or Metrics()
    if store is None:
        store = Store.open(config.daemon.database_url)
    bindings = {}
    for key, calendar in config.calendars.items():
        source = config.sources[key]
        bindings[key] = CalendarBinding(
            key,
            CalendarRef(source.external_id, calendar.timezone),
            connectors.get(source.account),
            unavailable.get(source.account, ""),
        )
    with store.unit_of_work() as uow:
        uow.calendars.ensure(config.calendars)
        uow.commit()
    cache = BusyCache(config.calendars)
    if load_cache:
        cache.reload(store, list(config.calendars))
    sync = SyncService(
        store,
        bindings,
        window=SyncWindow(config.sync.window_past, config.sync.window_future),
        cache=cache,
        clock=clock,
        on_fetched=on_fetched,
        on_synced=metrics.observe_sync,
    )
    slots = SlotService(
        store,
        cache,
        calendars=config.calendars,
        pools=config.pools,
        event_types=config.event_types,
        stale_after=config.sync.stale_after,
    )
    catalog = Catalog(
        config.calendars,
        config.pools,
        config.event_types,
        bindings,
        addresses=_addresses(config),
        delivers=_delivers(config),
    )
    outbox = OutboxWorker(store, cache, catalog,
                          policy=OutboxPolicy(hold_for=config.daemon.outbox_claim_hold))
    bookings = BookingService(store, cache, catalog, outbox, clock=clock)
    app = App(config, store, connectors, cache, sync, slots, bookings, clock, unavailable, metrics)
    metrics.attach(app)
    return app


def _addresses(config: Config) -> dict[str, str]:
    """Email addresses of calendars where the config reveals one (a Google
    subject or a calendar id that is an address), for the event's
    organizer and attendees."""
    found = {}
    for key, source in config.sources.items():
        for candidate in (source.subject, source.external_id):
            if candidate and "@" in candidate and "/" not in candidate:
                found[key] = candidate
                break
    return found


def _delivers(config: Config) -> Callable[[str, str], bool]:
    """Google and Microsoft invite rooms and people of the owner's own
    account themselves; everything else gets its copy written by calpool."""

    def delivers(owner: str, other: str) -> bool:
        account = config.account_of(owner)
        native = account.provider in ("google", "microsoft")
        return native and config.sources[other].account == config.sources[owner].account

    return delivers


def _connector(account: Account) -> CalendarConnector | None:
    if isinstance(account, CaldavAccount):
        password = resolve_secret(account.password) if account.password is not None else None
        return CalDAVConnector(
            CalDAVAccount(
                url=account.url,
                username=account.username,
                password=password,
                ca_file=str(account.ca_file) if account.ca_file is not None else None,
                sync_method=SyncMethod(account.sync_method),
            )
        )
    return None
