"""Retries and the error boundary, shared by every provider connector.

Each connector maps its own libraries' exceptions onto
:mod:`engine.errors` (one ``to_connector_error`` per provider); what is the
same for all of them lives here: a transient failure is retried inside one
call with jittered exponential backoff (tenacity), a server's Retry-After
is honoured up to the policy's ``max_wait`` and a longer one is left to the
caller (the account's limiter cools every caller of the account down), and
only engine errors leave the call.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from tenacity import RetryCallState, Retrying, stop_after_attempt

from engine.errors import ConnectorError, RateLimited, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

ErrorMapping = Callable[[Exception], ConnectorError | None]
"""A provider's mapping of an exception onto the error tree; ``None``: not
the provider's failure (a bug of calpool's, which must surface as it is)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a transient failure is retried inside one call.

    ``attempts`` counts the first try; waits grow from ``initial_wait``
    (seconds, doubled each time, jittered) up to ``max_wait``; a server's
    Retry-After is honoured up to ``max_wait`` (a longer wait is left to the
    caller: the call raises ``RateLimited``)."""

    attempts: int = 3
    initial_wait: float = 0.5
    max_wait: float = 30.0


def guarded(call: Callable[[], T], *, policy: RetryPolicy, to_error: ErrorMapping,
            provider: str, calendar: str = "") -> T:
    """Run ``call`` with retries per ``policy``; an exception ``to_error``
    maps leaves as that engine error (naming ``calendar`` when it names
    none), chained to the original."""

    def mapped() -> T:
        try:
            return call()
        except Exception as exc:
            error = to_error(exc)
            if error is None:
                raise
            if not error.calendar:
                error.calendar = calendar
            if error is exc:
                raise
            raise error from exc

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info("%s: retrying after %s (attempt %d)", provider, exc, state.attempt_number)

    retrying = Retrying(
        stop=stop_after_attempt(max(1, policy.attempts)),
        wait=_wait(policy),
        retry=_should_retry(policy),
        reraise=True,
        before_sleep=log_retry,
    )
    return retrying(mapped)


def raised_in(exc: BaseException, packages: Collection[str]) -> bool:
    """Whether the innermost frame of ``exc`` ran in one of ``packages``
    (a ValueError from a provider library's parser, not from calpool)."""
    tb: TracebackType | None = exc.__traceback__
    module = ""
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    return module.split(".")[0] in packages


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(float(exc.retry_after), policy.max_wait)
        backoff = policy.initial_wait * 2.0 ** (state.attempt_number - 1)
        return min(policy.max_wait, backoff * random.uniform(0.5, 1.0))

    return wait


def _should_retry(policy: RetryPolicy) -> Callable[[RetryCallState], bool]:
    def check(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if not isinstance(exc, TransientError):
            return False
        # A wait longer than the policy allows is the caller's to schedule.
        return not (isinstance(exc, RateLimited) and exc.retry_after is not None
                    and exc.retry_after > policy.max_wait)

    return check
