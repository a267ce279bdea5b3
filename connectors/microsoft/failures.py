"""Where Microsoft failures become :mod:`engine.errors`, and where
transient ones are retried: the one place for Graph's HTTP answers, the
identity platform's token errors, and exceptions of msal and requests.

Graph's error answers are ``{"error": {"code", "message"}}``
(https://learn.microsoft.com/en-us/graph/errors):

=========================================  ======================================
401 (after a fresh token was refused too)  ``AuthFailed``
403 ``ErrorAccessDenied`` …                ``AuthFailed``
404 ``ErrorItemNotFound``/``ErrorInvalidUser``  ``NotFound``
410, ``syncStateNotFound``, ``resyncRequired``  ``CursorExpired``
409, 412 ``ErrorIrresolvableConflict``     ``Conflict``
429; 503 / 504 with ``Retry-After``        ``RateLimited`` (its wait)
other 5xx, 408                             ``TransientError``
other 4xx                                  ``PermanentError``
=========================================  ======================================

Throttling: https://learn.microsoft.com/en-us/graph/throttling — honour
``Retry-After``, else back off exponentially.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import requests

from connectors import retrying
from connectors.microsoft.account import RetryPolicy
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

# Modules whose exceptions must not escape the connector, whatever their type.
FOREIGN_MODULES = ("msal", "requests", "urllib3", "jwt", "cryptography", "icalendar", "json")

RESYNC_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
"""Delta error codes that mean "drop the token, start a new round"
(https://learn.microsoft.com/en-us/graph/delta-query-overview)."""

# HTTP-client failures that will not heal by themselves.
_PERMANENT_HTTP = (
    requests.exceptions.SSLError,
    requests.exceptions.InvalidJSONError,  # an answer that is not JSON will not become JSON
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
    requests.exceptions.TooManyRedirects,
)

# Token endpoint errors (RFC 6749 5.2, AADSTS) that a retry may heal.
_TRANSIENT_TOKEN_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


def graph_error_code(body: object) -> tuple[str, str]:
    """(code, message) of a Graph error body; ``("", "")`` when it is none."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return str(error.get("code") or ""), str(error.get("message") or "")
    return "", ""


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Graph's ``Retry-After`` (delta seconds), ``None`` when absent or unreadable."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def response_error(response: requests.Response, what: str, *, calendar: str = "") -> ConnectorError:
    """The error for a Graph answer the caller did not expect."""
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    code, message = graph_error_code(body)
    detail = f"{what}: Graph answered {status}" + (f" {code}: {message}" if code else "")
    wait = retry_after(response.headers)
    if status == 410 or code.lower() in RESYNC_CODES:
        return CursorExpired(detail, cursor="", calendar=calendar)
    if status in (401, 403):
        return AuthFailed(detail, calendar=calendar)
    if status == 404:
        return NotFound(detail, calendar=calendar)
    if status in (409, 412):
        return Conflict(detail, href="", calendar=calendar)
    if status == 429 or (status in (503, 504) and wait is not None):
        return RateLimited(detail, retry_after=wait, calendar=calendar)
    if status >= 500 or status == 408:
        return TransientError(detail, calendar=calendar)
    return PermanentError(detail, calendar=calendar)


def token_error(result: Mapping[str, Any], *, calendar: str = "") -> ConnectorError:
    """The error for a failed msal ``acquire_token_for_client``: its
    ``error`` / ``error_description`` (AADSTS…) as the identity platform
    answered them (https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes)."""
    error = str(result.get("error") or "no access token")
    description = str(result.get("error_description") or "").splitlines()
    detail = f"Microsoft identity platform refused the app: {error}" + (
        f": {description[0]}" if description else "")
    if error in _TRANSIENT_TOKEN_ERRORS:
        return TransientError(detail, calendar=calendar)
    return AuthFailed(detail, calendar=calendar)


def to_connector_error(exc: BaseException, *, calendar: str = "") -> ConnectorError | None:
    """The error-tree equivalent of ``exc``; ``None`` when ``exc`` is not a
    provider-side failure (calpool's own bug, which must stay visible)."""
    if isinstance(exc, ConnectorError):
        return exc
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, _PERMANENT_HTTP):
        return PermanentError(detail, calendar=calendar)
    if isinstance(exc, requests.exceptions.RequestException | OSError):
        return TransientError(detail, calendar=calendar)
    if isinstance(exc, ValueError) and _raised_in(exc, "msal"):
        # msal raises ValueError when the authority's OpenID configuration
        # cannot be had (an unknown tenant, a wrong authority_url).
        return AuthFailed(f"msal: {detail}", calendar=calendar)
    if raised_in(exc, FOREIGN_MODULES) or _defined_in_foreign_module(exc):
        return PermanentError(detail, calendar=calendar)
    return None


def _defined_in_foreign_module(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in FOREIGN_MODULES


def _frames(exc: BaseException) -> list[str]:
    modules = []
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        modules.append(str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0])
        tb = tb.tb_next
    return modules


def _raised_in(exc: BaseException, module: str) -> bool:
    return module in _frames(exc)


def guarded(call: Callable[[], T], *, policy: RetryPolicy, calendar: str = "") -> T:
    """Run ``call`` with retries; map provider failures onto the error tree."""
    return retrying.guarded(call, policy=policy, provider="microsoft", calendar=calendar,
                            to_error=lambda exc: to_connector_error(exc, calendar=calendar))
