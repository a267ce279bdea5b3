"""The validated configuration, as typed values the daemon is built from.

``daemon.config.load_config`` produces a ``Config``; nothing else builds one
from a file.  Paths are absolute (relative ones were resolved against the
config file's folder), durations are ``timedelta``, secrets are
``SecretRef``s to resolve when they are needed (``daemon.secret_refs``), and
calendars, pools and event types are the engine's own model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

from engine.core.model import Calendar, EventType, Pool


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Where a secret lives: an environment variable or a file.

    ``key_path`` is the config key that named it (``accounts.dav.password_env``),
    so an unset variable or unreadable file can be reported against it.
    """

    key_path: str
    env: str | None = None
    file: Path | None = None

    def __post_init__(self) -> None:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference names exactly one of env and file")


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonSettings:
    database_url: str
    timezone: str
    log_format: Literal["text", "json"]
    log_level: Literal["debug", "info", "warning", "error"]
    outbox_claim_hold: timedelta = timedelta(minutes=5)
    """How long one process holds a provider write it started; a write of
    a process that died is taken up again after this."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    host: str
    port: int
    public_url: str
    """Without a trailing slash: ``public_url + "/book/<token>"`` is a link."""
    tls_cert_file: Path | None
    tls_key_file: Path | None
    confirm_within: timedelta
    max_body: int = 64 * 1024
    """Bytes of a request body; a larger one gets 413 before it is read."""
    client_timeout: timedelta = timedelta(seconds=15)
    """How long a client may take to send a request's headers and body,
    and how long an idle keep-alive connection stays open."""
    max_connections: int = 512
    """Open connections at once; one more gets 503 as it opens."""
    public_rate: tuple[int, timedelta] = (20, timedelta(hours=1))
    """At most this many bookings per client address in this time on public pages."""
    trust_proxy: bool = False
    """Take the client address from ``X-Forwarded-For``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncSettings:
    push: bool
    poll_interval: timedelta
    safety_poll: timedelta
    window_past: timedelta
    window_future: timedelta
    stale_after: timedelta
    reconcile_every: timedelta
    room_answer_within: timedelta
    """An invited room (Google, Microsoft) silent this long counts as declined."""
    lease_ttl: timedelta
    """A dead process's sync and job leases are taken over after this; a
    holder renews its lease every third of it while it works."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSettings:
    default_expiry: timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionSettings:
    bookings: timedelta
    idempotency_keys: timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiToken:
    """A client of the HTTP hook.  Exactly one of ``secret`` (the token
    itself, to be hashed once resolved) and ``sha256`` (its hex digest,
    lower case) is set."""

    name: str
    scopes: frozenset[Literal["slots", "book", "admin"]]
    secret: SecretRef | None = None
    sha256: str | None = None


DEFAULT_MAX_CONCURRENT: Mapping[str, int] = {"microsoft": 4, "google": 10, "caldav": 8}
"""``accounts.<key>.max_concurrent`` by provider when the file sets none:
Graph throttles a mailbox beyond 4 concurrent requests; Google's per-user
quota takes more; a CalDAV server is one host that calpool should not crowd."""

THROTTLED_PER_CALENDAR: frozenset[str] = frozenset({"microsoft"})
"""Providers that throttle each calendar on its own, so a throttle cools
down only that calendar, not its whole account: Graph's Outlook limits are
per app and mailbox ("requests to one user do not impact the limit for
another user").
https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits"""


@dataclass(frozen=True, slots=True, kw_only=True)
class GoogleAccount:
    key: str
    service_account: SecretRef
    """The service account's key JSON (file or environment variable)."""
    subject: str | None
    api_url: str
    ca_file: Path | None
    max_concurrent: int = DEFAULT_MAX_CONCURRENT["google"]
    """Requests of this account in flight at once."""
    provider: Literal["google"] = "google"


@dataclass(frozen=True, slots=True, kw_only=True)
class MicrosoftAccount:
    """Client credentials: ``client_secret``, or ``certificate_file`` with
    ``certificate_thumbprint`` (exactly one of the two forms is set)."""

    key: str
    tenant_id: str
    client_id: str
    client_secret: SecretRef | None
    certificate_file: Path | None
    certificate_thumbprint: str | None
    graph_url: str
    authority_url: str
    tentative_is_busy: bool
    ca_file: Path | None
    max_concurrent: int = DEFAULT_MAX_CONCURRENT["microsoft"]
    """Requests of this account in flight at once."""
    provider: Literal["microsoft"] = "microsoft"


@dataclass(frozen=True, slots=True, kw_only=True)
class CaldavAccount:
    key: str
    url: str
    username: str | None
    password: SecretRef | None
    sync_method: Literal["auto", "sync-collection", "etag"]
    ca_file: Path | None
    max_concurrent: int = DEFAULT_MAX_CONCURRENT["caldav"]
    """Requests of this account in flight at once."""
    provider: Literal["caldav"] = "caldav"


Account = GoogleAccount | MicrosoftAccount | CaldavAccount


@dataclass(frozen=True, slots=True, kw_only=True)
class CalendarSource:
    """Where a calendar lives: its account and the provider's id for it.

    ``external_id`` is as written (a CalDAV path is resolved against the
    account URL by the connector); ``subject`` is the Google user to act as.
    """

    calendar: str
    account: str
    external_id: str
    subject: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSettings:
    """One ``[[webhooks]]`` entry; ``event_types`` empty means all."""

    url: str
    secret: SecretRef
    events: frozenset[str]
    event_types: frozenset[str] = frozenset()


SMTP_PORTS = {"starttls": 587, "tls": 465, "none": 25}


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpSettings:
    """``[smtp]``: where the attendee's emails are sent from."""

    host: str
    port: int
    security: str
    """``starttls``, ``tls`` or ``none``."""
    sender: str
    """The ``from`` key: the From header, e.g. ``Bookings <bookings@acme.example>``."""
    username: str | None = None
    password: SecretRef | None = None
    timeout: timedelta = timedelta(seconds=30)
    """How long one SMTP session may take (not configurable)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Everything the daemon is built from.  Mappings keep config order,
    which is meaningful for pool members and harmless elsewhere."""

    path: Path
    daemon: DaemonSettings
    http: HttpSettings
    sync: SyncSettings
    links: LinkSettings
    retention: RetentionSettings
    api_tokens: tuple[ApiToken, ...]
    accounts: Mapping[str, Account]
    calendars: Mapping[str, Calendar]
    sources: Mapping[str, CalendarSource]
    pools: Mapping[str, Pool]
    event_types: Mapping[str, EventType]
    webhooks: tuple[WebhookSettings, ...] = ()
    smtp: SmtpSettings | None = None
    fingerprint: str = ""
    """The sha256 of the file's document (its TOML content, key order and
    comments aside): processes compare it in the database."""

    def account_of(self, calendar: str) -> Account:
        """The account a calendar is read and written through."""
        return self.accounts[self.sources[calendar].account]
