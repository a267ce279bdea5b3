"""How the memory provider fails: its answers instead of a result, and the
faults a test injects to make it answer so.

A :class:`Refused` carries an HTTP-like status, as a real server's error
would (the connector maps it onto :mod:`engine.errors` at its boundary);
:class:`Unreachable` is a request nothing answered.  A :class:`Fault` makes
the next matching requests fail on purpose: the provider side of the
contract's failure cases (unreachable, credentials refused) and of the
connector's retry tests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# -- how the provider refuses ----------------------------------------------------


class ProviderFailure(Exception):
    """What a server answers instead of a result."""


class Unreachable(ProviderFailure):
    """Nothing answered: connection refused, timed out."""


class Refused(ProviderFailure):
    """The provider answered with an error ``status`` (HTTP's meaning:
    400 bad request, 401 credentials, 404 absent, 409 UID taken, 410 cursor
    forgotten, 412 version mismatch, 429 throttled, 503 unavailable)."""

    def __init__(
        self, status: int, detail: str, *, retry_after: float | None = None, actual: str = ""
    ) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.actual = actual  # the etag the provider holds, where the refusal is about one


# -- faults a test injects -----------------------------------------------------------


class Operation(enum.StrEnum):
    """The protocol-side requests, for aiming a :class:`Fault`."""

    LIST = "list"
    CHANGES = "changes"
    CURSOR_CHECK = "cursor_check"  # which cursors are current (current_cursors)
    FREE_BUSY = "free_busy"
    EVENTS = "events"  # a window read without a cursor (events_in)
    READ = "read"  # one event (read_event)
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    START_CHANNEL = "start_channel"
    RENEW_CHANNEL = "renew_channel"
    STOP_CHANNEL = "stop_channel"


class FaultKind(enum.StrEnum):
    UNREACHABLE = "unreachable"  # no answer at all
    UNAVAILABLE = "unavailable"  # 503
    THROTTLED = "throttled"  # 429, with the fault's retry_after
    UNAUTHORIZED = "unauthorized"  # 401: credentials refused
    BAD_REQUEST = "bad_request"  # 400: refused as sent


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """The next ``times`` requests (of ``operations``; empty: of any kind)
    fail with ``kind``.  Faults queue: the oldest matching one answers."""

    kind: FaultKind
    times: int = 1
    operations: frozenset[Operation] = frozenset()
    retry_after: float | None = None

    def applies_to(self, operation: Operation) -> bool:
        return not self.operations or operation in self.operations

    def failure(self) -> ProviderFailure:
        if self.kind is FaultKind.UNREACHABLE:
            return Unreachable("injected: the provider does not answer")
        status = {
            FaultKind.UNAVAILABLE: 503,
            FaultKind.THROTTLED: 429,
            FaultKind.UNAUTHORIZED: 401,
            FaultKind.BAD_REQUEST: 400,
        }[self.kind]
        return Refused(status, f"injected {self.kind.value}", retry_after=self.retry_after)
