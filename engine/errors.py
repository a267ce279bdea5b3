"""The one error tree every connector maps its provider's failures onto.

::

    ConnectorError                  base: what failed (``detail``) and where (``calendar``)
    ├── AuthFailed                  401, or a 403 naming no precondition: fix credentials or rights
    ├── NotFound                    the calendar (or an object it must hold) does not exist
    ├── CursorExpired               the provider refuses the cursor: list the window anew
    ├── Conflict                    a write met another version, or a taken UID (``href``, …)
    ├── TransientError              network down, timeout, 5xx: the same call may work later
    │   └── RateLimited             the provider asks to wait ``retry_after`` seconds
    └── PermanentError              the provider refuses the request as sent; a retry will not help

A connector raises only these (chained with ``raise … from exc`` to the
provider's own exception, which the log shows); no exception of a provider
library, HTTP client, iCalendar or XML parser escapes it.  Callers decide by
type: retry ``TransientError`` (after ``retry_after`` for ``RateLimited``),
resync on ``CursorExpired``, mark the calendar failed on the rest.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """A connector call failed; ``calendar`` is the provider's calendar id
    where known, ``detail`` one sentence for logs and ``calpool status``."""

    def __init__(self, detail: str, *, calendar: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.calendar = calendar

    def __str__(self) -> str:
        where = f" (calendar {self.calendar})" if self.calendar else ""
        return f"{self.detail}{where}"


class AuthFailed(ConnectorError):
    """The provider rejected the credentials or denied access."""


class NotFound(ConnectorError):
    """The calendar, or an object that must exist, is not there."""


class CursorExpired(ConnectorError):
    """The cursor is unknown, expired or forged: drop the calendar's cache
    and list the window anew."""

    def __init__(self, detail: str, *, cursor: str, calendar: str = "") -> None:
        super().__init__(detail, calendar=calendar)
        self.cursor = cursor


class Conflict(ConnectorError):
    """A write met a version it did not expect: ``href`` is the object,
    ``expected`` the version the write assumed (an etag, ``""`` for "absent"),
    ``actual`` what the provider holds (``""`` when unknown)."""

    def __init__(
        self, detail: str, *, href: str, expected: str = "", actual: str = "", calendar: str = ""
    ) -> None:
        super().__init__(detail, calendar=calendar)
        self.href = href
        self.expected = expected
        self.actual = actual


class TransientError(ConnectorError):
    """The call may succeed later: network failure, timeout, 5xx."""


class RateLimited(TransientError):
    """The provider throttles; ``retry_after`` is the wait it asked for in
    seconds (``None`` when it named none)."""

    def __init__(
        self, detail: str, *, retry_after: float | None = None, calendar: str = ""
    ) -> None:
        super().__init__(detail, calendar=calendar)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """The provider refuses the request as sent (bad request, unsupported
    feature, unusable answer); repeating it will not help."""
