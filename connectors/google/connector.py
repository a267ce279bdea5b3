"""The Google Calendar connector: :class:`~engine.ports.CalendarConnector`
for one Google Workspace service account with domain-wide delegation.

Each call acts as a user: a calendar's own ``subject`` (so the owner is the
organizer of what calpool writes), else the account's ``subject`` (who
reads rooms and free/busy).  Calls block; each thread gets its own
Calendar service (:mod:`connectors.google.client`).  Every public method
runs under :func:`~connectors.google.failures.guarded`, so transient
failures are retried per the account's :class:`RetryPolicy` and only
:mod:`engine.errors` exceptions leave.  Reading is described in
:mod:`connectors.google.sync`, writing in :mod:`connectors.google.writes`,
push in :mod:`connectors.google.push`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from connectors.google import push, writes
from connectors.google.account import GoogleAccount
from connectors.google.client import CalendarClients
from connectors.google.failures import guarded
from connectors.google.sync import CalendarSync, free_busy
from engine.core.model import ChangeSet, Interval, RemoteEvent
from engine.errors import CursorExpired, PermanentError
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


class GoogleConnector:
    """One Google account; ``observe`` hears of every HTTP request sent."""

    def __init__(self, account: GoogleAccount, *, observe: RequestObserver | None = None) -> None:
        self._account = account
        self._clients = CalendarClients(account, observe=observe)
        # The subject each calendar was last used as: channels.stop names
        # only the calendar, and must act as whoever opened the channel.
        self._subjects: dict[str, str | None] = {}
        self._addresses: dict[str, str] = {}  # channel id → address, of channels opened here

    @property
    def push_supported(self) -> bool:
        return True

    def close(self) -> None:
        self._clients.close()

    # -- plumbing ----------------------------------------------------------

    def _subject(self, calendar: CalendarRef | None) -> str | None:
        if calendar is not None and calendar.subject:
            return calendar.subject
        return self._account.subject

    def _run(self, calendar_id: str, subject: str | None, call: Callable[[Any], T]) -> T:
        return guarded(lambda: call(self._clients.service(subject)),
                       policy=self._account.retry, calendar=calendar_id,
                       subject=subject or "", client_id=self._account.client_id)

    def _on(self, calendar: CalendarRef, call: Callable[[Any], T]) -> T:
        subject = self._subject(calendar)
        self._subjects[calendar.id] = subject
        return self._run(calendar.id, subject, call)

    def _sync(self, service: Any, calendar: CalendarRef) -> CalendarSync:
        return CalendarSync(service, calendar.id, zone=calendar.timezone)

    # -- reading -----------------------------------------------------------

    def list_window(self, calendar: CalendarRef, window: Interval) -> ChangeSet:
        return self._on(calendar, lambda s: self._sync(s, calendar).list_window(window))

    def changes_since(self, calendar: CalendarRef, cursor: str, window: Interval) -> ChangeSet:
        try:
            return self._on(calendar,
                            lambda s: self._sync(s, calendar).changes_since(cursor, window))
        except CursorExpired as exc:
            if exc.cursor == cursor:
                raise
            raise CursorExpired(exc.detail, cursor=cursor, calendar=calendar.id) from exc

    def current_cursors(self, cursors: Mapping[CalendarRef, str]) -> frozenset[str]:
        # Google keeps no version of a calendar's events to read for many
        # calendars at once: events.list with the syncToken is the check.
        return frozenset()

    def events_in(self, calendar: CalendarRef, window: Interval) -> tuple[RemoteEvent, ...]:
        return self._on(calendar, lambda s: self._sync(s, calendar).events_in(window))

    def free_busy(self, calendars: Sequence[CalendarRef], window: Interval) -> FreeBusy:
        # Asked as the account's subject: who may see rooms' and people's
        # free/busy across the domain.
        ids = [calendar.id for calendar in calendars]
        return self._run(",".join(ids), self._account.subject,
                         lambda s: free_busy(s, ids, window))

    def read_event(
        self, calendar: CalendarRef, booking_id: str, *, source: str = ""
    ) -> EventState | None:
        return self._on(calendar, lambda s: writes.read_event(
            s, calendar.id, booking_id, source=source, zone=calendar.timezone))

    # -- writing -----------------------------------------------------------

    def create_event(self, calendar: CalendarRef, draft: EventDraft) -> WrittenEvent:
        return self._on(calendar, lambda s: writes.create_event(
            s, calendar.id, draft, zone=calendar.timezone))

    def update_event(
        self, calendar: CalendarRef, draft: EventDraft, *, etag: str | None = None,
        source: str = "",
    ) -> WrittenEvent:
        return self._on(calendar, lambda s: writes.update_event(
            s, calendar.id, draft, etag=etag, source=source, zone=calendar.timezone))

    def delete_event(self, calendar: CalendarRef, booking_id: str, *, source: str = "") -> None:
        self._on(calendar, lambda s: writes.delete_event(s, calendar.id, booking_id,
                                                         source=source))

    # -- push --------------------------------------------------------------

    def start_channel(
        self, calendar: CalendarRef, *, address: str, token: str, ttl_seconds: int
    ) -> PushChannel | None:
        channel = self._on(calendar, lambda s: push.start_channel(
            s, calendar.id, address=address, token=token, ttl_seconds=ttl_seconds))
        self._addresses[channel.id] = address
        return channel

    def renew_channel(self, channel: PushChannel, *, ttl_seconds: int) -> PushChannel:
        # Google has no renewal call: open a new channel to the same address
        # with the same token, then stop the old one.  Only a channel this
        # connector opened can be renewed so (a channel read back from the
        # store has neither its address nor its token); the channel service
        # replaces channels itself and never calls this.
        address = self._addresses.get(channel.id)
        if address is None or not channel.token:
            raise PermanentError("Google has no channel renewal: open a new channel and stop "
                                 "this one", calendar=channel.calendar_id)
        subject = self._subjects.get(channel.calendar_id, self._account.subject)
        calendar = CalendarRef(channel.calendar_id, subject=subject)
        renewed = self.start_channel(calendar, address=address, token=channel.token,
                                     ttl_seconds=ttl_seconds)
        assert renewed is not None
        self.stop_channel(channel)
        return renewed

    def stop_channel(self, channel: PushChannel) -> None:
        # As the user the calendar was read as (who opened the channel);
        # the account's subject for a calendar this process has not used.
        subject = self._subjects.get(channel.calendar_id, self._account.subject)
        self._run(channel.calendar_id, subject, lambda s: push.stop_channel(s, channel))

    def parse_notification(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> tuple[Notification, ...]:
        return push.parse(headers)
