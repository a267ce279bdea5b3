"""Graph's error answers and the fake's fault injection.

Every Graph error is ``{"error": {"code", "message", "innerError": {"date",
"request-id", "client-request-id"}}}``, with ``request-id`` and
``client-request-id`` (echoed) also as headers.
https://learn.microsoft.com/en-us/graph/errors

Throttling answers 429 with ``Retry-After`` in seconds; 503 and 504 may carry
it too; Outlook allows four concurrent requests per mailbox and answers the
fifth 429 ("Application is over its MailboxConcurrency limit").
https://learn.microsoft.com/en-us/graph/throttling
https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.responses import JSONResponse

_DEFAULT_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "ErrorAccessDenied",
    404: "ErrorItemNotFound",
    409: "ErrorIrresolvableConflict",
    410: "syncStateNotFound",
    412: "ErrorIrresolvableConflict",
    429: "TooManyRequests",
    500: "ErrorInternalServerError",
    502: "BadGateway",
    503: "ServiceNotAvailable",
    504: "GatewayTimeout",
}


def graph_error(
    status: int,
    code: str = "",
    message: str = "",
    *,
    request_headers: Mapping[str, str] | None = None,
    retry_after: int | None = None,
) -> JSONResponse:
    """A Graph error response in the documented shape."""
    request_id = str(uuid.uuid4())
    client_request_id = (request_headers or {}).get("client-request-id") or request_id
    body = {
        "error": {
            "code": code or _DEFAULT_CODES.get(status, "UnknownError"),
            "message": message or f"The fake answers {status}.",
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
    headers = {"request-id": request_id, "client-request-id": client_request_id}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class Fault:
    """One ``GraphFake.fail`` rule: answer matching requests with ``status`` (after ``delay``)."""

    method: str | None
    path: re.Pattern[str] | None
    status: int
    code: str
    message: str
    retry_after: int | None
    times: int
    delay: float
    until: float | None = None
    """A storm: every matching request until this ``time.monotonic()``
    instant (``times`` is then not counted down)."""

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path or bool(self.path.search(path))


class Faults:
    """The pending fault rules; each use of a rule counts down its ``times``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []

    def clear(self) -> None:
        """Drop every pending rule (a storm ends now)."""
        with self._lock:
            self._rules.clear()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._rules.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """The first matching rule (used up once, or still storming), or None."""
        with self._lock:
            now = time.monotonic()
            self._rules = [rule for rule in self._rules if rule.until is None or rule.until > now]
            for rule in self._rules:
                if rule.matches(method, path):
                    if rule.until is not None:
                        return rule
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                    return rule
        return None
