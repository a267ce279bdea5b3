"""Where Google failures become :mod:`engine.errors`, and where transient
ones are retried.

:func:`to_connector_error` maps one exception of googleapiclient, google-auth
or the HTTP transport (httplib2, sockets, TLS) onto the error tree; it is
the only place that reads Google's error JSON (``error.errors[].reason``,
https://developers.google.com/workspace/calendar/api/guides/errors).
:func:`guarded` runs one public connector call: it retries transient
failures with tenacity under the account's :class:`RetryPolicy`, honouring
``Retry-After`` (googleapiclient's own ``num_retries`` ignores it, so it is
not used), and lets no exception of those libraries out.  An exception
raised by calpool's own code is a bug and propagates unchanged.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable
from typing import TypeVar

import httplib2
from google.auth import exceptions as auth_errors
from googleapiclient import errors as api_errors

from connectors import retrying
from connectors.google.account import CALENDAR_SCOPE, RetryPolicy
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
FOREIGN_MODULES = ("googleapiclient", "google", "google_auth_httplib2", "httplib2", "uritemplate")

# 403 reasons that are throttling, not a refusal of access
# (https://developers.google.com/workspace/calendar/api/guides/errors#403_usage_limits_exceeded).
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
# "Calendar usage limits exceeded": Google asks for minutes, not seconds.
_QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
QUOTA_BACKOFF = 300.0
"""Seconds to wait after ``quotaExceeded`` when Google names no Retry-After."""
# Failures of the transport that will not heal by themselves.
_PERMANENT_TRANSPORT = (
    ssl.SSLCertVerificationError,
    httplib2.RedirectLimit,
    httplib2.RedirectMissingLocation,
    httplib2.RelativeURIError,
    httplib2.MalformedHeader,
    httplib2.UnimplementedDigestAuthOptionError,
    httplib2.UnimplementedHmacDigestAuthOptionError,
)


def error_reasons(exc: api_errors.HttpError) -> tuple[str, ...]:
    """The ``reason`` of every entry of Google's error JSON (``()`` when the
    body is no such JSON: a proxy's page, an empty 5xx)."""
    try:
        document = json.loads(exc.content.decode("utf-8") if isinstance(exc.content, bytes)
                              else exc.content)
    except (ValueError, AttributeError):
        return ()
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return ()
    found = [str(e.get("reason", "")) for e in error.get("errors", []) if isinstance(e, dict)]
    if not found and isinstance(error.get("status"), str):
        found.append(error["status"])
    return tuple(reason for reason in found if reason)


def retry_after(exc: api_errors.HttpError) -> float | None:
    """``Retry-After`` in seconds (delta-seconds only; Google sends no dates)."""
    value = exc.resp.get("retry-after") if getattr(exc, "resp", None) is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def http_error(exc: api_errors.HttpError, *, calendar: str = "", cursor: str = "",
               subject: str = "", client_id: str = "") -> ConnectorError:
    """The error for an answer of the Calendar API."""
    if getattr(exc, "resp", None) is None:  # a BatchError about no answer in particular
        return PermanentError(f"{type(exc).__name__} without an answer", calendar=calendar)
    status = int(exc.resp.status)
    reasons = set(error_reasons(exc))
    detail = f"Google answered {status} {'/'.join(sorted(reasons)) or exc.resp.reason}"
    message = exc._get_reason()  # Google's own sentence ("Not Found", "Rate Limit Exceeded")
    if message and message not in detail:
        detail = f"{detail}: {message}"
    if reasons & _QUOTA_REASONS:
        wait = retry_after(exc)
        return RateLimited(f"{detail} (Calendar usage limits: backing off for minutes)",
                           retry_after=max(wait or 0.0, QUOTA_BACKOFF), calendar=calendar)
    if status == 429 or (status == 403 and reasons & _RATE_LIMIT_REASONS):
        return RateLimited(detail, retry_after=retry_after(exc), calendar=calendar)
    if status in (401, 403):
        who = f" acting as {subject}" if subject else ""
        return AuthFailed(
            f"{detail}: the service account{who} may not use this calendar; check that "
            f"the calendar is shared with that user and that domain-wide delegation grants "
            f"client id {client_id or '(see the key file)'} the scope {CALENDAR_SCOPE}",
            calendar=calendar)
    if status == 404:
        return NotFound(detail, calendar=calendar)
    if status == 410:
        # fullSyncRequired / updatedMinTooLongAgo: the sync token is gone.
        return CursorExpired(detail, cursor=cursor, calendar=calendar)
    if status in (409, 412):
        return Conflict(detail, href="", calendar=calendar)
    if status >= 500 or status in (408, 425):
        return TransientError(detail, calendar=calendar)
    return PermanentError(detail, calendar=calendar)


def refresh_error(exc: auth_errors.RefreshError, *, calendar: str = "", subject: str = "",
                  client_id: str = "") -> ConnectorError:
    """The token endpoint refused the JWT-bearer grant (or failed)."""
    detail = f"Google's token endpoint refused the service account: {exc}"
    if getattr(exc, "retryable", False):
        return TransientError(detail, calendar=calendar)
    who = f"impersonate {subject}" if subject else "act without a subject"
    return AuthFailed(
        f"{detail}; domain-wide delegation must let client id {client_id or '(see the key file)'} "
        f"{who} with the scope {CALENDAR_SCOPE} (Admin console → Security → API controls)",
        calendar=calendar)


def to_connector_error(exc: BaseException, *, calendar: str = "", cursor: str = "",
                       subject: str = "", client_id: str = "") -> ConnectorError | None:
    """The error-tree equivalent of ``exc``; ``None`` when ``exc`` is not a
    provider-side failure (calpool's own bug, which must stay visible)."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, api_errors.HttpError):
        return http_error(exc, calendar=calendar, cursor=cursor, subject=subject,
                          client_id=client_id)
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, auth_errors.RefreshError):
        return refresh_error(exc, calendar=calendar, subject=subject, client_id=client_id)
    if isinstance(exc, auth_errors.TransportError):
        # google-auth wraps the token request's transport failure; a
        # certificate the CA file does not vouch for stays a certificate error.
        if isinstance(exc.__cause__, _PERMANENT_TRANSPORT) or any(
                isinstance(arg, _PERMANENT_TRANSPORT) for arg in exc.args):
            return PermanentError(f"TLS to Google's token endpoint failed: {detail}",
                                  calendar=calendar)
        return TransientError(detail, calendar=calendar)
    if isinstance(exc, auth_errors.MalformedError | auth_errors.DefaultCredentialsError):
        return AuthFailed(f"the service account key is unusable: {detail}", calendar=calendar)
    if isinstance(exc, _PERMANENT_TRANSPORT):
        return PermanentError(detail, calendar=calendar)
    if isinstance(exc, httplib2.HttpLib2Error | OSError | auth_errors.GoogleAuthError):
        # ServerNotFoundError (DNS), refused or reset connections, timeouts
        # (TimeoutError, socket.timeout), TLS handshakes cut short.
        return TransientError(detail, calendar=calendar)
    if isinstance(exc, api_errors.Error):
        return PermanentError(detail, calendar=calendar)
    if raised_in(exc, FOREIGN_MODULES) or _defined_in_foreign_module(exc):
        return PermanentError(detail, calendar=calendar)
    return None


def _defined_in_foreign_module(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in FOREIGN_MODULES


def guarded(call: Callable[[], T], *, policy: RetryPolicy, calendar: str = "",
            subject: str = "", client_id: str = "") -> T:
    """Run ``call`` with retries; map provider failures onto the error tree."""
    return retrying.guarded(
        call, policy=policy, provider="google", calendar=calendar,
        to_error=lambda exc: to_connector_error(exc, calendar=calendar, subject=subject,
                                                client_id=client_id))
