"""A Google account's settings, and the ids calpool derives from a booking.

One account is one service account with domain-wide delegation: its key
(the JSON Google hands out, as a mapping), the user it acts as for rooms
and free/busy (``subject``), and where the API lives (``api_url``, a root:
``https://www.googleapis.com/`` in production, a proxy or a local fake in
tests).  Nothing past this module knows which of those it talks to.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urljoin, urlsplit

from connectors.retrying import RetryPolicy as RetryPolicy
from engine.core.uids import booking_uid

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
"""The one OAuth scope calpool asks for: read and write events, watch
calendars, ask free/busy.  Domain-wide delegation must grant it to the
service account's client id."""

BOOKING_PROPERTY = "calpoolBooking"
"""The extended property that carries the booking id on every event calpool
writes, both ``private`` (on calpool's copy) and ``shared`` (Google shows it
on the attendees' copies, so an invited room's copy names the booking too):
how sync recognises calpool's events."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GoogleAccount:
    """``[accounts.<name>]`` with ``provider = "google"``, the key resolved.

    ``service_account_info`` is the parsed key file; ``ca_file`` the CA
    bundle verifying TLS (instead of the system's); ``timeout`` per HTTP
    request in seconds."""

    service_account_info: Mapping[str, str] = field(repr=False)
    subject: str | None = None
    api_url: str = "https://www.googleapis.com/"
    ca_file: str | None = None
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        parts = urlsplit(self.api_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"Google api_url must be http(s)://host/…, got {self.api_url!r}")
        if not self.api_url.endswith("/"):
            object.__setattr__(self, "api_url", self.api_url + "/")
        for key in ("client_email", "private_key", "token_uri"):
            if not self.service_account_info.get(key):
                raise ValueError(f"the service account key has no {key}")
        object.__setattr__(
            self, "service_account_info", MappingProxyType(dict(self.service_account_info)))

    @property
    def endpoint(self) -> str:
        """Where googleapiclient sends Calendar calls: ``api_endpoint``
        replaces both the root and the service path, so it is the root
        joined with ``calendar/v3/``."""
        return urljoin(self.api_url, "calendar/v3/")

    @property
    def client_email(self) -> str:
        return str(self.service_account_info["client_email"])

    @property
    def client_id(self) -> str:
        return str(self.service_account_info.get("client_id", ""))


def _base32hex(data: bytes) -> str:
    return base64.b32hexencode(data).decode().rstrip("=").lower()


def event_id(booking_id: str, calendar_id: str, *, organizer_copy: bool) -> str:
    """The Google event id of the booking's copy: base32hex (``a-v0-9``, as
    events.insert demands for a client-chosen id), derived from the booking
    alone for the owner's copy (Google gives an invited room's copy the same
    id) and from the booking and the calendar for any other copy."""
    seed = booking_id if organizer_copy else f"{booking_id}\n{calendar_id}"
    return "cp" + _base32hex(hashlib.sha256(seed.encode()).digest()[:20])


def event_ical_uid(booking_id: str, calendar_id: str, *, organizer_copy: bool) -> str:
    """The iCalendar UID of the booking's copy: the owner's copy carries the
    UID the attendee's invitation shows (``engine.core.uids``), any other
    copy one of its own."""
    if organizer_copy:
        return booking_uid(booking_id)
    digest = hashlib.sha256(f"{booking_id}\n{calendar_id}".encode()).hexdigest()[:16]
    return f"{booking_uid(booking_id).removesuffix('@calpool')}-{digest}@calpool"
