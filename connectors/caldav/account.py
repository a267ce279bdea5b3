"""A CalDAV account's settings and the URLs derived from them.

Calendar ids are resolved against the account URL as a browser resolves a
link (RFC 3986): ``"rooms/spree/"`` against ``https://h/dav/`` is
``https://h/dav/rooms/spree/``, ``"/x/"`` is ``https://h/x/``, and a full URL
stays itself.  A calendar URL always ends in ``/`` (a collection).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit

# Re-exported: the CalDAV code names them from here.
from connectors.retrying import RetryPolicy as RetryPolicy
from engine.core.uids import booking_name as booking_name
from engine.core.uids import booking_uid as booking_uid


class SyncMethod(enum.StrEnum):
    AUTO = "auto"  # sync-collection where the server offers it, else etag
    SYNC_COLLECTION = "sync-collection"
    ETAG = "etag"


@dataclass(frozen=True, slots=True, kw_only=True)
class CalDAVAccount:
    """``[accounts.<name>]`` with ``provider = "caldav"``, secrets resolved.

    ``ca_file`` is the CA bundle that verifies the server's TLS certificate
    (used instead of the system's store); ``timeout`` is per HTTP request:
    the whole answer, body included (connectors/caldav/transport.py).
    ``server_free_busy`` answers live free/busy with the server's
    free-busy-query REPORT where it has one; off by default because
    Radicale 3.9 shifts recurring instances across a DST change there, while
    a time-range query expanded by calpool reads events as sync does.
    """

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    sync_method: SyncMethod = SyncMethod.AUTO
    timeout: float = 30.0
    server_free_busy: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"CalDAV account url must be http(s)://host/…, got {self.url!r}")
        if not self.url.endswith("/"):
            # The account URL is a collection; without the slash a relative
            # id would replace its last segment instead of going below it.
            object.__setattr__(self, "url", self.url + "/")
        object.__setattr__(self, "sync_method", SyncMethod(self.sync_method))

    def calendar_url(self, calendar_id: str) -> str:
        """The collection URL of ``calendar_id`` (see the module docstring)."""
        if not calendar_id.strip():
            raise ValueError("a CalDAV calendar id must not be empty")
        url = urljoin(self.url, calendar_id)
        return url if url.endswith("/") else url + "/"


def booking_href(calendar_url: str, booking_id: str) -> str:
    """The URL of the booking's event inside ``calendar_url``."""
    return calendar_url + quote(booking_name(booking_id)) + ".ics"


def copy_uid(booking_id: str, calendar_id: str) -> str:
    """The UID of the booking's copy in calendar ``calendar_id`` (as
    configured) other than the owner's: derived from both, so a retry writes
    the same UID again, and different per calendar, as Cyrus refuses one UID
    in two calendars of one login (RFC 6638 3.2.4.1
    unique-scheduling-object-resource).  Sync recognises every copy by its
    ``X-CALPOOL-BOOKING``, not by its UID."""
    digest = hashlib.sha256(f"{booking_id}\n{calendar_id}".encode()).hexdigest()[:16]
    return f"{booking_name(booking_id)}-{digest}@calpool"
