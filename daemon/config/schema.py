"""The shape of the TOML config file, as pydantic models.

These models check one section or one named entry at a time: types, allowed
values, unknown keys, durations and time zones.  Rules that span entries
(references, roles, secrets given exactly once) live in ``daemon.config``,
which also turns these raw sections into the engine's model.

Every model is strict: TOML is typed, so ``push = "yes"`` or ``capacity =
"6"`` is a mistake to report, not a value to coerce.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator

from daemon.config.durations import EXAMPLES, parse_duration, parse_rate
from daemon.config.values import check_zone, parse_listen, parse_size


def _duration(value: Any) -> timedelta:
    if not isinstance(value, str):
        raise ValueError(f"must be a duration string like {EXAMPLES}")
    return parse_duration(value)


def _size(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError('must be a size string like "64KiB"')
    size = parse_size(value)
    if size <= 0:
        raise ValueError("must be larger than 0B")
    return size


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http or https URL")
    return value


def _template(value: str) -> str:
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid template: {exc}") from None
    for name in fields:
        if not name.isidentifier():
            raise ValueError(f"{value!r}: placeholders are names in braces, like {{notes}}")
    return value


def _rate(value: str) -> str:
    parse_rate(value)
    return value


def _listen(value: str) -> str:
    parse_listen(value)
    return value


_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_key(value: str) -> str:
    """Keys of named tables appear in URLs and on the command line."""
    if not _KEY.fullmatch(value):
        raise ValueError("a key is letters, digits, '-', '_' and '.', "
                         "starting with a letter or digit")
    return value


Duration = Annotated[timedelta, PlainValidator(_duration)]
PositiveDuration = Annotated[timedelta, PlainValidator(_duration), AfterValidator(_positive)]
Zone = Annotated[str, AfterValidator(check_zone)]
Size = Annotated[int, PlainValidator(_size)]
Text = Annotated[str, Field(min_length=1)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
Template = Annotated[str, AfterValidator(_template)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DaemonSection(Section):
    database: Text = "sqlite:///calpool.db"
    timezone: Zone = "UTC"
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    outbox_claim_hold: PositiveDuration = timedelta(minutes=5)


class HttpSection(Section):
    listen: Annotated[str, AfterValidator(_listen)] = "127.0.0.1:8740"
    public_url: HttpUrl | None = None
    tls_cert_file: Text | None = None
    tls_key_file: Text | None = None
    confirm_within: Duration = timedelta(seconds=5)
    max_body: Size = 64 * 1024
    client_timeout: PositiveDuration = timedelta(seconds=15)
    max_connections: Annotated[int, Field(ge=1, le=100_000)] = 512
    public_rate: Annotated[str, AfterValidator(_rate)] = "20/h"
    trust_proxy: bool = False


class SyncSection(Section):
    push: bool = True
    poll_interval: PositiveDuration = timedelta(minutes=5)
    safety_poll: PositiveDuration = timedelta(hours=1)
    window_past: Duration = timedelta(days=1)
    window_future: PositiveDuration = timedelta(days=90)
    stale_after: PositiveDuration = timedelta(minutes=15)
    reconcile_every: PositiveDuration = timedelta(hours=24)
    room_answer_within: PositiveDuration = timedelta(minutes=2)
    lease_ttl: PositiveDuration = timedelta(minutes=2)


class LinksSection(Section):
    default_expiry: PositiveDuration = timedelta(days=7)


class RetentionSection(Section):
    bookings: PositiveDuration = timedelta(days=400)
    idempotency_keys: PositiveDuration = timedelta(hours=24)


Scope = Literal["slots", "book", "admin"]


class ApiTokenSection(Section):
    name: Text
    token_env: Text | None = None
    token_file: Text | None = None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")] | None = None
    scopes: Annotated[list[Scope], Field(min_length=1)]


class ApiSection(Section):
    tokens: list[ApiTokenSection] = []


WebhookEvent = Literal["booking.created", "booking.confirmed", "booking.rescheduled",
                       "booking.cancelled", "booking.failed", "booking.room_changed"]


class WebhookSection(Section):
    url: Text
    secret_env: Text | None = None
    secret_file: Text | None = None
    events: Annotated[list[WebhookEvent], Field(min_length=1)]
    event_types: list[Text] = []


class SmtpSection(Section):
    host: Annotated[Text, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: Text | None = None
    password_env: Text | None = None
    password_file: Text | None = None
    from_: Annotated[Text, Field(min_length=1, alias="from")]


class AccountSection(Section):
    ca_file: Text | None = None
    max_concurrent: Annotated[int, Field(ge=1)] | None = None
    """Requests in flight at once; ``None``: the provider's default
    (``daemon.config.settings.DEFAULT_MAX_CONCURRENT``)."""


class GoogleAccountSection(AccountSection):
    provider: Literal["google"]
    service_account_file: Text | None = None
    service_account_env: Text | None = None
    subject: Text | None = None
    api_url: HttpUrl = "https://www.googleapis.com/"


class MicrosoftAccountSection(AccountSection):
    provider: Literal["microsoft"]
    tenant_id: Text
    client_id: Text
    client_secret_env: Text | None = None
    client_secret_file: Text | None = None
    certificate_file: Text | None = None
    certificate_thumbprint: Text | None = None
    graph_url: HttpUrl = "https://graph.microsoft.com/v1.0"
    authority_url: HttpUrl = "https://login.microsoftonline.com"
    tentative_is_busy: bool = True


class CaldavAccountSection(AccountSection):
    provider: Literal["caldav"]
    url: HttpUrl
    username: Text | None = None
    password_env: Text | None = None
    password_file: Text | None = None
    sync_method: Literal["auto", "sync-collection", "etag"] = "auto"


AnyAccountSection = Annotated[
    GoogleAccountSection | MicrosoftAccountSection | CaldavAccountSection,
    Field(discriminator="provider"),
]
PROVIDERS = ("caldav", "google", "microsoft")


class CalendarSection(Section):
    account: Text
    id: Text
    kind: Literal["person", "room"]
    timezone: Zone | None = None
    subject: Text | None = None
    name: str | None = None
    capacity: Annotated[int, Field(ge=1)] | None = None
    working_hours: dict[str, str] | None = None
    overrides: dict[str, str] | None = None


class PoolSection(Section):
    members: Annotated[list[Text], Field(min_length=1)]
    assignment: Literal["longest_idle", "priority", "round_robin", "least_booked", "random"] = (
        "longest_idle"
    )
    reporting_cycle: Literal["day", "week", "month"] = "month"
    timezone: Zone | None = None


class EventTypeSection(Section):
    title: Annotated[Template, Field(min_length=1)]
    description: Template = ""
    duration: PositiveDuration
    step: PositiveDuration | None = None
    owner: Text
    with_: list[Text] = Field(default=[], alias="with")
    pools: list[Text] = []
    buffer_before: Duration = timedelta(0)
    buffer_after: Duration = timedelta(0)
    min_notice: Duration = timedelta(0)
    horizon: PositiveDuration = timedelta(days=60)
    max_per_day: Annotated[int, Field(ge=0)] = 0
    live_recheck: bool = False
    change_notice: Duration = timedelta(0)
    public: bool = False
    notify_attendee: bool = True


# Keys whose presence means a secret was written inline, and the forms to use instead.
INLINE_SECRETS: dict[str, str] = {
    "password": "password_env or password_file",
    "client_secret": "client_secret_env or client_secret_file",
    "token": "token_env, token_file or sha256",
    "service_account": "service_account_file or service_account_env",
    "private_key": "a *_file or *_env key",
    "secret": "a *_file or *_env key",
    "api_key": "a *_file or *_env key",
    "access_token": "a *_file or *_env key",
    "refresh_token": "a *_file or *_env key",
    "certificate_password": "a *_file or *_env key",
}

# How pydantic's error types read to someone editing a TOML file.
_MESSAGES: dict[str, Callable[[dict[str, Any]], str]] = {
    "missing": lambda e: "required key is missing",
    "string_type": lambda e: "must be a string",
    "bool_type": lambda e: "must be true or false",
    "int_type": lambda e: "must be an integer",
    "list_type": lambda e: "must be an array",
    "dict_type": lambda e: "must be a table",
    "model_type": lambda e: "must be a table",
    "model_attributes_type": lambda e: "must be a table",
    "string_too_short": lambda e: "must not be empty",
    "too_short": lambda e: "must not be empty",
    "greater_than_equal": lambda e: f"must be at least {e['ctx']['ge']}",
    "string_pattern_mismatch": lambda e: f"{e['input']!r} is not a sha256 digest (64 hex digits)",
    "literal_error": lambda e: f"must be one of {e['ctx']['expected']}, not {e['input']!r}",
    "value_error": lambda e: str(e["ctx"]["error"]),
    "union_tag_invalid": lambda e: (
        f"unknown provider {e['ctx']['tag']!r} (caldav, google or microsoft)"
    ),
    "union_tag_not_found": lambda e: "required key is missing (caldav, google or microsoft)",
}


def describe_error(error: dict[str, Any]) -> tuple[tuple[str | int, ...], str]:
    """The key path (relative to the validated value) and sentence of one
    pydantic error."""
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind = error["type"]
    if loc and loc[0] in PROVIDERS:
        loc = loc[1:]  # the discriminated union adds the provider as a step
    if kind.startswith("union_tag"):
        return (*loc, "provider"), _MESSAGES[kind](error)
    if kind == "extra_forbidden":
        name = loc[-1] if loc else ""
        if isinstance(name, str) and name in INLINE_SECRETS:
            return loc, f"secrets are never inline; use {INLINE_SECRETS[name]}"
        return loc, "unknown key"
    render = _MESSAGES.get(kind)
    if render is not None:
        return loc, render(error)
    message = str(error["msg"])
    return loc, message[:1].lower() + message[1:]
