"""The Microsoft 365 connector: :class:`~engine.ports.CalendarConnector`
for one tenant's app registration, through msal and Microsoft Graph.

A calendar is a mailbox's default calendar, named by the mailbox's
address.  Calls block; every public method runs under
:func:`~connectors.microsoft.failures.guarded`, so transient failures are
retried per the account's :class:`RetryPolicy` (honouring Graph's
Retry-After) and only :mod:`engine.errors` exceptions leave.  The
engine's per-account limit keeps Outlook's four concurrent requests per
mailbox (``accounts.<key>.max_concurrent``).

Push: Graph subscriptions on each mailbox's events
(:mod:`connectors.microsoft.push`); the safety poll runs as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from connectors.microsoft import push, schedule, writes
from connectors.microsoft.account import MicrosoftAccount
from connectors.microsoft.failures import guarded
from connectors.microsoft.graph import GraphSession
from connectors.microsoft.sync import CalendarReader
from engine.core.model import ChangeSet, Interval, RemoteEvent
from engine.ports import (
    CalendarRef,
    EventDraft,
    EventState,
    FreeBusy,
    Notification,
    PushChannel,
    RequestObserver,
    WrittenEvent,
)

T = TypeVar("T")


class MicrosoftConnector:
    """One Microsoft 365 account; ``observe`` hears of every HTTP request
    sent, token requests included (``engine.ports.RequestObserver``)."""

    def __init__(self, account: MicrosoftAccount, *, observe: RequestObserver | None = None):
        self._account = account
        self._graph = GraphSession(account, observe=observe)

    @property
    def push_supported(self) -> bool:
        return True

    def close(self) -> None:
        """Close every HTTP session this connector opened."""
        self._graph.close()

    def _run(self, calendar_id: str, call: Callable[[], T]) -> T:
        return guarded(call, policy=self._account.retry, calendar=calendar_id)

    def _reader(self, calendar: CalendarRef) -> CalendarReader:
        return CalendarReader(self._graph, calendar)

    # -- reading -----------------------------------------------------------

    def list_window(self, calendar: CalendarRef, window: Interval) -> ChangeSet:
        return self._run(calendar.id, lambda: self._reader(calendar).list_window(window))

    def changes_since(self, calendar: CalendarRef, cursor: str, window: Interval) -> ChangeSet:
        return self._run(
            calendar.id, lambda: self._reader(calendar).changes_since(cursor, window))

    def current_cursors(self, cursors: Mapping[CalendarRef, str]) -> frozenset[str]:
        # Graph keeps no version of a calendar's events to read for many
        # calendars at once: the delta round itself is the check.
        return frozenset()

    def events_in(self, calendar: CalendarRef, window: Interval) -> tuple[RemoteEvent, ...]:
        return self._run(calendar.id, lambda: self._reader(calendar).events_in(window))

    def free_busy(self, calendars: Sequence[CalendarRef], window: Interval) -> FreeBusy:
        return schedule.free_busy(self._graph, calendars, window, run=self._run)

    def read_event(
        self, calendar: CalendarRef, booking_id: str, *, source: str = ""
    ) -> EventState | None:
        return self._run(calendar.id, lambda: writes.read_event(
            self._graph, calendar.id, booking_id, source=source))

    # -- writing -----------------------------------------------------------

    def create_event(self, calendar: CalendarRef, draft: EventDraft) -> WrittenEvent:
        return self._run(calendar.id, lambda: writes.create_event(self._graph, calendar.id, draft))

    def update_event(
        self, calendar: CalendarRef, draft: EventDraft, *, etag: str | None = None,
        source: str = "",
    ) -> WrittenEvent:
        return self._run(calendar.id, lambda: writes.update_event(
            self._graph, calendar.id, draft, etag=etag, source=source))

    def delete_event(self, calendar: CalendarRef, booking_id: str, *, source: str = "") -> None:
        self._run(calendar.id, lambda: writes.delete_event(
            self._graph, calendar.id, booking_id, source=source))

    # -- push: Graph subscriptions -------------------------------------------

    def start_channel(
        self, calendar: CalendarRef, *, address: str, token: str, ttl_seconds: int
    ) -> PushChannel | None:
        return self._run(calendar.id, lambda: push.start(
            self._graph, calendar, address=address, token=token, ttl_seconds=ttl_seconds))

    def renew_channel(self, channel: PushChannel, *, ttl_seconds: int) -> PushChannel:
        return self._run(channel.calendar_id, lambda: push.renew(
            self._graph, channel, ttl_seconds=ttl_seconds))

    def stop_channel(self, channel: PushChannel) -> None:
        self._run(channel.calendar_id, lambda: push.stop(self._graph, channel))

    def parse_notification(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> tuple[Notification, ...]:
        return push.parse(headers, body, query)
