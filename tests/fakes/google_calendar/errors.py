"""Google's error answers and the fake's fault injection.

Every Calendar API error is ``{"error": {"errors": [{"domain", "reason",
"message", ("locationType", "location")}], "code", "message"}}``.
Rate limits answer 403 ``rateLimitExceeded`` / ``userRateLimitExceeded`` (domain
``usageLimits``) or 429 ``rateLimitExceeded``; the fake adds ``Retry-After`` when a
fault names one.
https://developers.google.com/calendar/api/guides/errors
https://developers.google.com/calendar/api/guides/quota
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from starlette.responses import JSONResponse

_DEFAULT_REASONS = {
    400: "badRequest",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    409: "duplicate",
    410: "deleted",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
    500: "backendError",
    502: "backendError",
    503: "backendError",
}
_DEFAULT_MESSAGES = {
    400: "Bad Request",
    401: "Invalid Credentials",
    403: "Forbidden",
    404: "Not Found",
    409: "The requested identifier already exists.",
    410: "Resource has been deleted",
    412: "Precondition Failed",
    429: "Rate Limit Exceeded",
    500: "Backend Error",
    503: "Backend Error",
}
# The messages the errors guide shows for reasons whose message is not the
# status's own (a 403 rateLimitExceeded says "Rate Limit Exceeded").
_REASON_MESSAGES = {
    "rateLimitExceeded": "Rate Limit Exceeded",
    "userRateLimitExceeded": "User Rate Limit Exceeded",
    "quotaExceeded": "Calendar usage limits exceeded.",
    "dailyLimitExceeded": "Daily Limit Exceeded",
}
_USAGE_LIMIT_REASONS = {
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "quotaExceeded",
    "dailyLimitExceeded",
}
_CALENDAR_REASONS = {
    "timeRangeEmpty",
    "requiredAccessLevel",
    "tooManyCalendarsRequested",
    "timeRangeTooLong",
    "invalidSequenceValue",
}


def domain_of(reason: str) -> str:
    """The ``domain`` Google puts next to a ``reason`` (as shown on the errors guide)."""
    if reason in _USAGE_LIMIT_REASONS:
        return "usageLimits"
    if reason in _CALENDAR_REASONS:
        return "calendar"
    return "global"


def google_error(
    status: int,
    reason: str = "",
    message: str = "",
    *,
    location: str | None = None,
    location_type: str = "parameter",
    retry_after: int | None = None,
) -> JSONResponse:
    """A Calendar API error response in the documented shape."""
    reason = reason or _DEFAULT_REASONS.get(status, "unknown")
    message = (message or _REASON_MESSAGES.get(reason)
               or _DEFAULT_MESSAGES.get(status, f"The fake answers {status}."))
    item: dict[str, str] = {"domain": domain_of(reason), "reason": reason, "message": message}
    if location:
        item.update({"locationType": location_type, "location": location})
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return JSONResponse(
        {"error": {"errors": [item], "code": status, "message": message}},
        status_code=status,
        headers=headers,
    )


@dataclass
class Fault:
    """One ``GoogleCalendarFake.fail`` rule: answer matching requests with ``status``."""

    method: str | None
    path: re.Pattern[str] | None
    status: int
    reason: str
    message: str
    retry_after: int | None
    times: int
    delay: float
    query: re.Pattern[str] | None = None
    hold: float = 0.0

    def matches(self, method: str, path: str, query: str = "") -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        if self.query and not self.query.search(query):
            return False
        return not self.path or bool(self.path.search(path))


class Faults:
    """The pending fault rules; each use of a rule counts down its ``times``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._rules.append(fault)

    def take(self, method: str, path: str, query: str = "") -> Fault | None:
        """The first matching rule (used up once), or None."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path, query):
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
