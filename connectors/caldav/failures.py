"""Where CalDAV failures become :mod:`engine.errors`, and where transient
ones are retried.

:func:`to_connector_error` maps one exception of caldav, the HTTP client
(niquests, or requests where caldav runs on it), lxml or icalendar onto the
error tree.  :func:`guarded` runs one public connector call: it retries
transient failures with tenacity under the account's :class:`RetryPolicy`
(honouring Retry-After) and lets nothing but a ``ConnectorError`` out for
failures raised inside those libraries.  An exception raised by calpool's
own code is a bug and propagates unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import TypeVar

from caldav.lib import error as caldav_error
from caldav.lib.http_sync import requests as http
from lxml import etree

from connectors import retrying
from connectors.caldav.account import RetryPolicy
from connectors.retrying import raised_in
from engine.errors import (
    AuthFailed,
    Conflict,
    ConnectorError,
    CursorExpired,
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

# Modules whose exceptions must not escape a connector, whatever their type.
FOREIGN_MODULES = (
    "caldav",
    "niquests",
    "requests",
    "urllib3",
    "urllib3_future",
    "httpx",
    "icalendar",
    "recurring_ical_events",
    "x_wr_timezone",
    "lxml",
    "dateutil",
)

# HTTP-client failures that will not heal by themselves: a certificate the
# CA file does not vouch for, a URL that cannot be requested at all.
_PERMANENT_HTTP = (
    http.exceptions.SSLError,
    http.exceptions.InvalidURL,
    http.exceptions.MissingSchema,
    http.exceptions.InvalidSchema,
    http.exceptions.InvalidHeader,
    http.exceptions.URLRequired,
    http.exceptions.TooManyRedirects,
)


_CALDAV = "{urn:ietf:params:xml:ns:caldav}"
_DAV = "{DAV:}"

# Preconditions (RFC 4918 16, RFC 4791 5.3.2.1, RFC 6638 3.2.4) that say
# "another object of this calendar, or of this login, holds the UID": Cyrus
# answers them with 403, Radicale with 409.  Cyrus applies
# unique-scheduling-object-resource to every calendar of one user, even
# with scheduling off (cyrus-imapd issue #2345).
UID_CONFLICTS = frozenset(
    {f"{_CALDAV}no-uid-conflict", f"{_CALDAV}unique-scheduling-object-resource"}
)
# Preconditions about the object as sent: a retry of the same body fails
# the same way.
_INVALID_OBJECT = frozenset(
    f"{_CALDAV}{name}"
    for name in (
        "valid-calendar-object-resource",
        "valid-calendar-data",
        "supported-calendar-data",
        "supported-calendar-component",
        "calendar-collection-location-ok",
        "max-resource-size",
        "min-date-time",
        "max-date-time",
        "max-instances",
        "max-attendees-per-instance",
        "valid-organizer",
        "valid-scheduling-message",
        "same-organizer-in-all-components",
        "allowed-organizer-scheduling-object-change",
        "allowed-attendee-scheduling-object-change",
    )
)


def precondition_name(tag: str) -> str:
    """``C:no-uid-conflict`` for ``{urn:ietf:params:xml:ns:caldav}no-uid-conflict``."""
    return tag.replace(_CALDAV, "C:").replace(_DAV, "D:")


def precondition_error(
    status: int | None,
    preconditions: Collection[str],
    what: str,
    *,
    href: str = "",
    calendar: str = "",
) -> ConnectorError:
    """The error for an answer whose ``DAV:error`` body names
    ``preconditions`` (Clark notation, as caldav parses them).

    The body decides, not the status: Cyrus says "this UID is taken" with a
    403, which is no authorization failure.  Only ``D:need-privileges``
    (RFC 3744 7.1.1) is about access; a precondition calpool does not know
    is a refusal of the request as sent."""
    names = ", ".join(precondition_name(tag) for tag in preconditions)
    detail = f"{what}: server answered {status} with {names}"
    found = set(preconditions)
    if found & UID_CONFLICTS:
        return Conflict(detail, href=href, calendar=calendar)
    if f"{_DAV}valid-sync-token" in found:
        return CursorExpired(detail, cursor="", calendar=calendar)
    if f"{_DAV}need-privileges" in found:
        return AuthFailed(detail, calendar=calendar)
    if found & _INVALID_OBJECT:
        return PermanentError(f"{detail} (the object as written is refused)", calendar=calendar)
    return PermanentError(detail, calendar=calendar)


def status_error(status: int, what: str, *, calendar: str = "") -> ConnectorError:
    """The error for an HTTP status the caller did not expect."""
    detail = f"{what}: server answered {status}"
    if status in (401, 403):
        return AuthFailed(detail, calendar=calendar)
    if status == 404:
        return NotFound(detail, calendar=calendar)
    if status == 429:
        return RateLimited(detail, calendar=calendar)
    if status >= 500 or status in (408, 425):
        return TransientError(detail, calendar=calendar)
    return PermanentError(detail, calendar=calendar)


def to_connector_error(exc: BaseException, *, calendar: str = "") -> ConnectorError | None:
    """The error-tree equivalent of ``exc``; ``None`` when ``exc`` is not a
    provider-side failure (calpool's own bug, which must stay visible)."""
    if isinstance(exc, ConnectorError):
        return exc
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, caldav_error.RateLimitError):
        return RateLimited(detail, retry_after=exc.retry_after_seconds, calendar=calendar)
    if isinstance(exc, caldav_error.AuthorizationError):
        if exc.preconditions:
            # A 403 that explains itself is about the request, not the login.
            return precondition_error(
                exc.status, exc.preconditions, detail, href=exc.url or "", calendar=calendar
            )
        return AuthFailed(detail, calendar=calendar)
    if isinstance(exc, caldav_error.NotFoundError):
        return NotFound(detail, calendar=calendar)
    if isinstance(exc, caldav_error.DAVError):
        status = exc.status
        if status is not None:
            return status_error(status, detail, calendar=calendar)
        return PermanentError(detail, calendar=calendar)
    if isinstance(exc, _PERMANENT_HTTP):
        return PermanentError(detail, calendar=calendar)
    if isinstance(exc, http.exceptions.RequestException | OSError):
        return TransientError(detail, calendar=calendar)
    if isinstance(exc, etree.LxmlError):
        return PermanentError(f"unreadable XML from the server: {detail}", calendar=calendar)
    if raised_in(exc, FOREIGN_MODULES) or _defined_in_foreign_module(exc):
        return PermanentError(detail, calendar=calendar)
    return None


def _defined_in_foreign_module(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in FOREIGN_MODULES


def guarded(call: Callable[[], T], *, policy: RetryPolicy, calendar: str = "") -> T:
    """Run ``call`` with retries; map provider failures onto the error tree."""
    return retrying.guarded(call, policy=policy, provider="caldav", calendar=calendar,
                            to_error=lambda exc: to_connector_error(exc, calendar=calendar))
