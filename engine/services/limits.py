"""Per-account limits: how many requests one provider account has in flight,
and the cool-down every caller of it keeps after the provider throttled.

Each configured account has one :class:`AccountLimit`, shared by everything
that calls the account's connector: sync, the outbox, the live re-check of a
booking, the channel service.  The daemon wraps each connector in a
:class:`LimitedConnector` when it builds the object graph, so no caller can
reach a provider around the limit.  The rules:

- at most ``max_concurrent`` calls of the account run at once; a further
  caller waits (in arrival order, as far as the lock is fair) until one
  ends;
- a :class:`~engine.errors.RateLimited` that names a ``retry_after`` starts
  a cool-down of the whole account until that much later (a later throttle
  can extend it, never shorten it).  The caller that met it gets the error
  as it was, to schedule its own retry; every caller after it, of any
  calendar of the account, waits the cool-down out before its call reaches
  the provider;
- a caller does not sleep for longer than ``max_wait`` at a time: when
  more of the cool-down is left, its call is refused at once with ``RateLimited``
  carrying the seconds left (nothing is sent), so an outbox job is
  rescheduled after the cool-down and a request thread answers 503 with
  ``Retry-After`` instead of hanging.

A throttle without ``retry_after`` starts no cool-down: the connector backs
off itself (its retries) and the caller's own backoff does the rest.
Accounts are independent: one account's throttle slows no other account.

Where the provider throttles each calendar on its own (Microsoft Graph:
Outlook's limits are per app *and mailbox*, "requests to one user do not
impact the limit for another user"), the limit is built with
``cool_down_per_calendar``: a throttle then cools down only the calendars
of the call that met it, and the account's other calendars go on at once;
the concurrency cap stays the account's.  A call naming no calendar (a
channel's renewal) keeps to the account-wide cool-down.
https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits

Time is injected (``clock``: monotonic seconds; ``sleep``), so tests run a
cool-down in no time, and figures go to a :class:`LimitObserver`, so the
engine knows nothing of Prometheus.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from engine.core.model import ChangeSet, Interval, RemoteEvent
from engine.errors import RateLimited
from engine.ports import (
    CalendarConnector,
    CalendarRef,
    EventDraft,
    EventState,
    FreeBusy,
    Notification,
    PushChannel,
    WrittenEvent,
)

T = TypeVar("T")

_ACCOUNT = ""
"""The cool-down key of a whole account (and of calls that name no calendar)."""

MonotonicClock = Callable[[], float]
Sleeper = Callable[[float], None]


class CoolingDown(RateLimited):
    """A call the account's own limit refused before anything was sent: the
    account is cooling down for ``retry_after`` more seconds.  Unlike a
    provider's throttle it cost the provider nothing, so an outbox job met
    by it is put back without spending an attempt."""


class LimitObserver(Protocol):
    """Told what one account's limit does (the daemon's metrics)."""

    def in_flight(self, account: str, calls: int) -> None:
        """``calls`` of ``account`` are now running at the provider."""
        ...

    def throttled(self, account: str, retry_after: float) -> None:
        """The provider asked ``account``'s callers to wait ``retry_after``
        seconds: a cool-down started (or grew)."""
        ...

    def waited(self, account: str, seconds: float, *, deferred: bool) -> None:
        """A call waited ``seconds`` for a cool-down (``deferred``: it was
        refused instead, ``seconds`` being what was left)."""
        ...


class _Unobserved:
    def in_flight(self, account: str, calls: int) -> None:
        pass

    def throttled(self, account: str, retry_after: float) -> None:
        pass

    def waited(self, account: str, seconds: float, *, deferred: bool) -> None:
        pass


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitTiming:
    """How limits tell time: ``clock`` in monotonic seconds, ``sleep`` to
    wait, and ``max_wait``, the longest a caller sleeps for a cool-down
    before its call is refused with the time left instead."""

    clock: MonotonicClock = time.monotonic
    sleep: Sleeper = time.sleep
    max_wait: float = 10.0

    def __post_init__(self) -> None:
        if self.max_wait < 0:
            raise ValueError("max_wait must not be negative")


@dataclass(frozen=True, slots=True)
class LimitState:
    """A snapshot of one account's limit (for status and tests)."""

    account: str
    max_concurrent: int
    in_flight: int
    cooling_for: float
    """Seconds of cool-down left (0: none)."""


class AccountLimit:
    """The one limit of one account (see the module's docstring)."""

    def __init__(
        self,
        account: str,
        *,
        max_concurrent: int,
        timing: LimitTiming | None = None,
        observer: LimitObserver | None = None,
        cool_down_per_calendar: bool = False,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.account = account
        self.max_concurrent = max_concurrent
        self.cool_down_per_calendar = cool_down_per_calendar
        self._timing = timing or LimitTiming()
        self._observer: LimitObserver = observer or _Unobserved()
        self._changed = threading.Condition(threading.Lock())
        self._in_flight = 0
        # Monotonic instant each cool-down ends, by calendar id (or _ACCOUNT).
        self._cool_until: dict[str, float] = {}

    def state(self) -> LimitState:
        with self._changed:
            ends = max(self._cool_until.values(), default=float("-inf"))
            left = max(0.0, ends - self._timing.clock())
            return LimitState(self.account, self.max_concurrent, self._in_flight, left)

    def cooling_for(self, calendar_id: str) -> float:
        """Seconds of cool-down left for calls of ``calendar_id`` (0: none)."""
        with self._changed:
            return max(0.0, self._left(self._keys((calendar_id,))))

    def call(self, request: Callable[[], T], *, calendars: Collection[str] = ()) -> T:
        """Run ``request`` (one connector call, of ``calendars``: provider
        ids) within the limit: after any cool-down that holds for it, in
        one of the account's slots; a ``RateLimited`` it raises starts a
        cool-down (the account's, or its calendars' with
        ``cool_down_per_calendar``) and is re-raised."""
        keys = self._keys(calendars)
        self._enter(keys)
        try:
            return request()
        except RateLimited as exc:
            if exc.retry_after is not None and exc.retry_after > 0:
                self._cool_down(keys, exc.retry_after)
            raise
        finally:
            self._leave()

    # -- inside --------------------------------------------------------------------

    def _keys(self, calendars: Collection[str]) -> tuple[str, ...]:
        """The cool-downs a call of ``calendars`` keeps to and starts."""
        if not self.cool_down_per_calendar or not calendars:
            return (_ACCOUNT,)
        return (_ACCOUNT, *sorted(set(calendars)))

    def _left(self, keys: tuple[str, ...]) -> float:
        """Seconds until every cool-down of ``keys`` is over (lock held)."""
        ends = max((self._cool_until.get(key, float("-inf")) for key in keys),
                   default=float("-inf"))
        return ends - self._timing.clock()

    def _enter(self, keys: tuple[str, ...]) -> None:
        timing = self._timing
        waited = 0.0
        while True:
            with self._changed:
                left = self._left(keys)
                if left <= 0:
                    if self._in_flight < self.max_concurrent:
                        self._in_flight += 1
                        calls = self._in_flight
                        break
                    # A slot frees (or a throttle is met, in the same leave).
                    self._changed.wait()
                    continue
            if left > timing.max_wait:
                self._observer.waited(self.account, left, deferred=True)
                which = f"account {self.account}" if keys == (_ACCOUNT,) else (
                    f"{', '.join(keys[1:])} of account {self.account}")
                raise CoolingDown(
                    f"{which} is cooling down after the provider throttled it; "
                    f"nothing was sent ({left:.0f} s left)",
                    retry_after=left,
                )
            timing.sleep(left)  # outside the lock: other callers find the cool-down too
            waited += left
        self._observer.in_flight(self.account, calls)
        if waited > 0:
            self._observer.waited(self.account, waited, deferred=False)

    def _leave(self) -> None:
        with self._changed:
            self._in_flight -= 1
            calls = self._in_flight
            # All, not one: a woken caller may leave for a cool-down without
            # taking the slot, and the next must not sleep on through it.
            self._changed.notify_all()
        self._observer.in_flight(self.account, calls)

    def _cool_down(self, keys: tuple[str, ...], retry_after: float) -> None:
        # Per calendar: the calendars of the call, not the whole account.
        cooled = keys[1:] or keys
        with self._changed:
            until = self._timing.clock() + retry_after
            for key in cooled:
                self._cool_until[key] = max(self._cool_until.get(key, float("-inf")), until)
            self._changed.notify_all()  # callers queued for a slot meet the cool-down now
        self._observer.throttled(self.account, retry_after)


@dataclass(frozen=True)
class LimitedConnector:
    """A :class:`~engine.ports.CalendarConnector` that sends every call of
    ``inner`` through ``limit``.  Calls that reach no provider
    (:attr:`push_supported`, :meth:`parse_notification`) pass straight
    through; :meth:`close` closes ``inner`` when it has a ``close``."""

    inner: CalendarConnector
    limit: AccountLimit = field(compare=False)

    @property
    def push_supported(self) -> bool:
        return self.inner.push_supported

    def list_window(self, calendar: CalendarRef, window: Interval) -> ChangeSet:
        return self.limit.call(lambda: self.inner.list_window(calendar, window),
                               calendars=(calendar.id,))

    def changes_since(self, calendar: CalendarRef, cursor: str, window: Interval) -> ChangeSet:
        return self.limit.call(lambda: self.inner.changes_since(calendar, cursor, window),
                               calendars=(calendar.id,))

    def current_cursors(self, cursors: Mapping[CalendarRef, str]) -> frozenset[str]:
        return self.limit.call(lambda: self.inner.current_cursors(cursors),
                               calendars=[calendar.id for calendar in cursors])

    def events_in(self, calendar: CalendarRef, window: Interval) -> tuple[RemoteEvent, ...]:
        return self.limit.call(lambda: self.inner.events_in(calendar, window),
                               calendars=(calendar.id,))

    def free_busy(self, calendars: Sequence[CalendarRef], window: Interval) -> FreeBusy:
        return self.limit.call(lambda: self.inner.free_busy(calendars, window),
                               calendars=[calendar.id for calendar in calendars])

    def read_event(
        self, calendar: CalendarRef, booking_id: str, *, source: str = ""
    ) -> EventState | None:
        return self.limit.call(lambda: self.inner.read_event(calendar, booking_id, source=source),
                               calendars=(calendar.id,))

    def create_event(self, calendar: CalendarRef, draft: EventDraft) -> WrittenEvent:
        return self.limit.call(lambda: self.inner.create_event(calendar, draft),
                               calendars=(calendar.id,))

    def update_event(
        self, calendar: CalendarRef, draft: EventDraft, *, etag: str | None = None,
        source: str = "",
    ) -> WrittenEvent:
        return self.limit.call(
            lambda: self.inner.update_event(calendar, draft, etag=etag, source=source),
            calendars=(calendar.id,))

    def delete_event(self, calendar: CalendarRef, booking_id: str, *, source: str = "") -> None:
        self.limit.call(lambda: self.inner.delete_event(calendar, booking_id, source=source),
                        calendars=(calendar.id,))

    def start_channel(
        self, calendar: CalendarRef, *, address: str, token: str, ttl_seconds: int
    ) -> PushChannel | None:
        return self.limit.call(
            lambda: self.inner.start_channel(
                calendar, address=address, token=token, ttl_seconds=ttl_seconds
            ),
            calendars=(calendar.id,),
        )

    def renew_channel(self, channel: PushChannel, *, ttl_seconds: int) -> PushChannel:
        return self.limit.call(lambda: self.inner.renew_channel(channel, ttl_seconds=ttl_seconds),
                               calendars=(channel.calendar_id,))

    def stop_channel(self, channel: PushChannel) -> None:
        self.limit.call(lambda: self.inner.stop_channel(channel),
                        calendars=(channel.calendar_id,))

    def parse_notification(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> tuple[Notification, ...]:
        return self.inner.parse_notification(headers, body, query)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


def limited(
    connector: CalendarConnector,
    account: str,
    *,
    max_concurrent: int,
    timing: LimitTiming | None = None,
    observer: LimitObserver | None = None,
    cool_down_per_calendar: bool = False,
) -> LimitedConnector:
    """``connector`` behind a new limit of its own for ``account``."""
    limit = AccountLimit(account, max_concurrent=max_concurrent, timing=timing, observer=observer,
                         cool_down_per_calendar=cool_down_per_calendar)
    return LimitedConnector(connector, limit)
