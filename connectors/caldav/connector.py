"""The CalDAV connector: :class:`~engine.ports.CalendarConnector` for one
CalDAV account (Radicale, Xandikos, Cyrus, Nextcloud, …).

Calls block; each thread gets its own HTTP session.  Every public method
runs under :func:`~connectors.caldav.failures.guarded`, so transient failures
are retried per the account's :class:`RetryPolicy` and only
:mod:`engine.errors` exceptions leave.  CalDAV has no push channels here
(``push_supported`` is false): the daemon polls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar
from urllib.parse import urljoin

from connectors.caldav import writes
from connectors.caldav.account import CalDAVAccount, SyncMethod
from connectors.caldav.dav import DavSession, href_path
from connectors.caldav.failures import guarded
from connectors.caldav.sync import CalendarSync, CursorVersion, cursor_version
from engine.core.model import ChangeSet, Interval, RemoteEvent
from engine.errors import ConnectorError, PermanentError
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

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CalDAVConnector:
    """One CalDAV account; ``clock`` stamps written events (DTSTAMP);
    ``observe`` hears of every HTTP request sent (``engine.ports.RequestObserver``)."""

    def __init__(self, account: CalDAVAccount, *, clock: Callable[[], datetime] = _utc_now,
                 observe: RequestObserver | None = None) -> None:
        self._account = account
        self._clock = clock
        self._observe = observe
        self._local = threading.local()
        self._sessions: list[DavSession] = []
        self._lock = threading.Lock()
        # What ``auto`` settled on per calendar URL; a fresh process relearns.
        self._methods: dict[str, SyncMethod] = {}

    @property
    def push_supported(self) -> bool:
        return False

    @property
    def etag_reads_after_put(self) -> int:
        """GETs spent reading an etag back because a PUT answered without
        one (Cyrus, for every event with an ORGANIZER), over all sessions."""
        with self._lock:
            return sum(session.etag_reads_after_put for session in self._sessions)

    def close(self) -> None:
        """Close every session this connector opened."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    # -- plumbing ----------------------------------------------------------

    def _session(self) -> DavSession:
        session: DavSession | None = getattr(self._local, "session", None)
        if session is None:
            session = DavSession(self._account, observe=self._observe)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _url(self, calendar: CalendarRef) -> str:
        try:
            return self._account.calendar_url(calendar.id)
        except ValueError as exc:
            raise PermanentError(str(exc), calendar=calendar.id) from exc

    def _run(self, calendar_id: str, call: Callable[[], T]) -> T:
        return guarded(call, policy=self._account.retry, calendar=calendar_id)

    def _sync(self, calendar: CalendarRef) -> CalendarSync:
        url = self._url(calendar)
        with self._lock:
            method = self._methods.get(url, self._account.sync_method)
        return CalendarSync(
            self._session(), url, zone=calendar.timezone, method=method, calendar_id=calendar.id
        )

    # -- reading -----------------------------------------------------------

    def list_window(self, calendar: CalendarRef, window: Interval) -> ChangeSet:
        def call() -> ChangeSet:
            changes, method = self._sync(calendar).list_window(window)
            with self._lock:
                self._methods[self._url(calendar)] = method
            return changes

        return self._run(calendar.id, call)

    def changes_since(self, calendar: CalendarRef, cursor: str, window: Interval) -> ChangeSet:
        return self._run(calendar.id, lambda: self._sync(calendar).changes_since(cursor, window))

    def current_cursors(self, cursors: Mapping[CalendarRef, str]) -> frozenset[str]:
        # One depth-1 PROPFIND per parent collection answers for all of its
        # calendars: on Radicale, 500 calendars' sync tokens cost less than half
        # of what 500 sync-collection REPORTs cost (bench/scale.py).
        below: dict[str, dict[str, tuple[str, CursorVersion]]] = {}
        for calendar, cursor in cursors.items():
            try:
                url = self._url(calendar)
            except PermanentError:
                continue  # its own sync says what is wrong with it
            with self._lock:
                method = self._methods.get(url, self._account.sync_method)
            version = cursor_version(cursor, calendar_id=calendar.id, method=method)
            if version is None:
                continue
            located = self._session().located(url)
            below.setdefault(urljoin(located, ".."), {})[href_path(located)] = (
                calendar.id, version)
        current: set[str] = set()
        for parent, calendars in below.items():
            versions = [version for _, version in calendars.values()]
            first = next(iter(calendars.values()))[0]
            try:
                # Tried once: a failure costs the pass no retry waits, as
                # each calendar's own sync retries (and reports) anyway.
                now = guarded(partial(
                    self._session().collection_versions, parent,
                    tokens=any(v.sync_token for v in versions),
                    ctags=any(v.ctag for v in versions)),
                    policy=replace(self._account.retry, attempts=1), calendar=first)
            except ConnectorError as exc:
                # Only a shortcut: the calendars are asked one by one instead.
                log.info("caldav: the versions below %s were not read: %s", parent, exc)
                continue
            current.update(
                calendar_id for path, (calendar_id, version) in calendars.items()
                if (found := now.get(path)) is not None and version.is_current(found)
            )
        return frozenset(current)

    def events_in(self, calendar: CalendarRef, window: Interval) -> tuple[RemoteEvent, ...]:
        return self._run(calendar.id, partial(self._sync(calendar).events_in, window))

    def free_busy(self, calendars: Sequence[CalendarRef], window: Interval) -> FreeBusy:
        # One time-range query per collection: a collection that fails is
        # reported on its own; the call raises only when every one failed.
        busy: dict[str, tuple[Interval, ...]] = {}
        errors: dict[str, ConnectorError] = {}
        for calendar in calendars:
            sync = self._sync(calendar)
            try:
                busy[calendar.id] = self._run(
                    calendar.id,
                    partial(sync.free_busy, window, server_report=self._account.server_free_busy),
                )
            except ConnectorError as exc:
                errors[calendar.id] = exc
        if errors and not busy:
            raise next(iter(errors.values()))
        return FreeBusy(busy, errors)

    def read_event(
        self, calendar: CalendarRef, booking_id: str, *, source: str = ""
    ) -> EventState | None:
        # The href is derived from the booking (``source`` is that same
        # path, kept by the engine), so it is not needed to find the event.
        return self._run(
            calendar.id, lambda: writes.read_event(self._session(), self._url(calendar), booking_id)
        )

    # -- writing -----------------------------------------------------------

    def create_event(self, calendar: CalendarRef, draft: EventDraft) -> WrittenEvent:
        uid = writes.event_uid(draft, calendar.id)
        return self._run(
            calendar.id,
            lambda: writes.create_event(
                self._session(), self._url(calendar), draft, uid=uid, now=self._clock
            ),
        )

    def update_event(
        self, calendar: CalendarRef, draft: EventDraft, *, etag: str | None = None,
        source: str = "",
    ) -> WrittenEvent:
        uid = writes.event_uid(draft, calendar.id)
        return self._run(
            calendar.id,
            lambda: writes.update_event(
                self._session(), self._url(calendar), draft, uid=uid, etag=etag, now=self._clock
            ),
        )

    def delete_event(self, calendar: CalendarRef, booking_id: str, *, source: str = "") -> None:
        self._run(
            calendar.id,
            lambda: writes.delete_event(self._session(), self._url(calendar), booking_id),
        )

    # -- push: none --------------------------------------------------------

    def start_channel(
        self, calendar: CalendarRef, *, address: str, token: str, ttl_seconds: int
    ) -> PushChannel | None:
        return None

    def renew_channel(self, channel: PushChannel, *, ttl_seconds: int) -> PushChannel:
        raise PermanentError("CalDAV has no push channels to renew", calendar=channel.calendar_id)

    def stop_channel(self, channel: PushChannel) -> None:
        return None

    def parse_notification(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> tuple[Notification, ...]:
        raise PermanentError("CalDAV delivers no push notifications")
