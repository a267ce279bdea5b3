"""The memory connector: :class:`~engine.ports.CalendarConnector` over a
:class:`~connectors.memory.provider.MemoryProvider`.

It talks to the provider as the other connectors talk to theirs: each
public call is one request (or a few, for a create that finds its event
there already) made under the provider's lock, so a call sees the provider
whole and connectors on many threads do not interleave; the provider's
refusals are mapped onto :mod:`engine.errors` here, at the boundary, and
nothing else leaves.  A transient failure is retried at once, up to
``attempts`` tries in all, except a throttle that names its wait (that is
the caller's to schedule, with ``RateLimited.retry_after``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from connectors.memory import push
from connectors.memory.events import (
    answers_of,
    booking_object_id,
    event_from_draft,
    given_answers,
    same_booking,
)
from connectors.memory.faults import Operation, ProviderFailure, Refused
from connectors.memory.provider import MemoryProvider, StoredObject
from connectors.memory.reading import busy_in_window, instances_in_window
from engine.core.model import ChangeSet, Interval, RemoteEvent
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
from engine.ports import (
    CalendarRef,
    EventDraft,
    EventState,
    FreeBusy,
    Notification,
    PushChannel,
    WrittenEvent,
)

T = TypeVar("T")


def to_connector_error(failure: ProviderFailure, *, calendar: str) -> ConnectorError:
    """The error-tree equivalent of what the provider answered."""
    if not isinstance(failure, Refused):
        return TransientError(f"memory provider unreachable: {failure}", calendar=calendar)
    detail = f"memory provider answered {failure.status}: {failure.detail}"
    status = failure.status
    if status in (401, 403):
        return AuthFailed(detail, calendar=calendar)
    if status == 404:
        return NotFound(detail, calendar=calendar)
    if status == 410:
        return CursorExpired(detail, cursor="", calendar=calendar)
    if status in (409, 412):
        return Conflict(detail, href="", actual=failure.actual, calendar=calendar)
    if status == 429:
        return RateLimited(detail, retry_after=failure.retry_after, calendar=calendar)
    if status >= 500:
        return TransientError(detail, calendar=calendar)
    return PermanentError(detail, calendar=calendar)


class MemoryConnector:
    """One account of a memory provider; push channels supported."""

    def __init__(self, provider: MemoryProvider, *, account: str = "calpool", attempts: int = 2):
        if attempts < 1:
            raise ValueError("attempts counts the first try: at least 1")
        self._provider = provider
        self._account = account
        self._attempts = attempts

    @property
    def provider(self) -> MemoryProvider:
        return self._provider

    @property
    def push_supported(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to close (no sessions); here for parity with the CalDAV
        connector, which the daemon closes at shutdown."""

    # -- plumbing ----------------------------------------------------------------

    def _request(self, operation: Operation, calendar: str, work: Callable[[], T]) -> T:
        for attempt in range(1, self._attempts + 1):
            try:
                with self._provider.lock:
                    self._provider.admit(self._account, operation)
                    return work()
            except ConnectorError as raised_here:  # mapped by ``work`` itself: not retried
                if not raised_here.calendar:
                    raised_here.calendar = calendar
                raise
            except ProviderFailure as failure:
                error = to_connector_error(failure, calendar=calendar)
                if attempt < self._attempts and _retry_now(error):
                    continue
                raise error from failure
        raise AssertionError("unreachable: the last attempt returns or raises")

    # -- reading -----------------------------------------------------------------

    def list_window(self, calendar: CalendarRef, window: Interval) -> ChangeSet:
        def work() -> ChangeSet:
            stored, cursor = self._provider.listing(calendar.id)
            objects = {
                s.id: instances
                for s in stored
                if (instances := instances_in_window(s, window=window, zone=calendar.timezone))
            }
            return ChangeSet(cursor=cursor, objects=objects, full=True)

        return self._request(Operation.LIST, calendar.id, work)

    def changes_since(self, calendar: CalendarRef, cursor: str, window: Interval) -> ChangeSet:
        def work() -> ChangeSet:
            changed, next_cursor = self._provider.changes(calendar.id, cursor)
            objects: dict[str, tuple[RemoteEvent, ...]] = {
                object_id: (
                    ()
                    if stored is None
                    else instances_in_window(stored, window=window, zone=calendar.timezone)
                )
                for object_id, stored in changed.items()
            }
            return ChangeSet(cursor=next_cursor, objects=objects, full=False)

        try:
            return self._request(Operation.CHANGES, calendar.id, work)
        except CursorExpired as exc:
            raise CursorExpired(exc.detail, cursor=cursor, calendar=calendar.id) from exc

    def current_cursors(self, cursors: Mapping[CalendarRef, str]) -> frozenset[str]:
        asked = {calendar.id: cursor for calendar, cursor in cursors.items()}
        return self._request(Operation.CURSOR_CHECK, ",".join(asked),
                             lambda: self._provider.current_cursors(asked))

    def events_in(self, calendar: CalendarRef, window: Interval) -> tuple[RemoteEvent, ...]:
        def work() -> tuple[RemoteEvent, ...]:
            return tuple(
                event
                for stored in self._provider.current(calendar.id)
                for event in instances_in_window(stored, window=window, zone=calendar.timezone)
            )

        return self._request(Operation.EVENTS, calendar.id, work)

    def free_busy(self, calendars: Sequence[CalendarRef], window: Interval) -> FreeBusy:
        # One request for the batch, as Google's freeBusy.query and Graph's
        # getSchedule take many calendars; a calendar the provider refuses
        # is reported on its own, as those do.
        def work() -> FreeBusy:
            busy: dict[str, tuple[Interval, ...]] = {}
            errors: dict[str, ConnectorError] = {}
            for calendar in calendars:
                try:
                    stored = self._provider.current(calendar.id)
                except Refused as refused:
                    errors[calendar.id] = to_connector_error(refused, calendar=calendar.id)
                    continue
                events = (
                    e
                    for s in stored
                    for e in instances_in_window(s, window=window, zone=calendar.timezone)
                )
                busy[calendar.id] = busy_in_window(events, window)
            return FreeBusy(busy, errors)

        names = ",".join(c.id for c in calendars)
        return self._request(Operation.FREE_BUSY, names, work)

    def read_event(
        self, calendar: CalendarRef, booking_id: str, *, source: str = ""
    ) -> EventState | None:
        object_id = source or booking_object_id(booking_id)

        def work() -> EventState | None:
            try:
                stored = self._provider.fetch(calendar.id, object_id)
            except Refused as refused:
                if refused.status == 404:
                    return None
                raise
            event = stored.event
            start, end = event.start, event.end
            if event.booking_id != booking_id or event.is_series:
                return None  # not the event calpool wrote for this booking
            if not isinstance(start, datetime) or not isinstance(end, datetime):
                return None  # all day: not calpool's either
            return EventState(
                source=stored.id,
                etag=stored.etag,
                uid=event.uid,
                start=start,
                end=end,
                sequence=event.sequence,
                answers=answers_of(event),
            )

        return self._request(Operation.READ, calendar.id, work)

    # -- writing -----------------------------------------------------------------

    def create_event(self, calendar: CalendarRef, draft: EventDraft) -> WrittenEvent:
        object_id = booking_object_id(draft.booking_id)

        def work() -> WrittenEvent:
            try:
                event = event_from_draft(draft, calendar.id)
                stored = self._provider.create(calendar.id, object_id, event)
            except Refused as refused:
                if refused.status == 409:
                    raise Conflict(
                        f"the calendar holds the UID of booking {draft.booking_id} elsewhere",
                        href=object_id,
                        calendar=calendar.id,
                    ) from refused
                if refused.status != 412:
                    raise
                existing = self._provider.get(calendar.id, object_id)
                if existing is None or not same_booking(existing.event, draft):
                    raise Conflict(
                        f"another event is stored where booking {draft.booking_id} belongs",
                        href=object_id,
                        actual=refused.actual,
                        calendar=calendar.id,
                    ) from refused
                stored = existing  # a retry after a crash: the earlier write
            return _written(stored)

        return self._request(Operation.CREATE, calendar.id, work)

    def update_event(
        self, calendar: CalendarRef, draft: EventDraft, *, etag: str | None = None,
        source: str = "",
    ) -> WrittenEvent:
        object_id = source or booking_object_id(draft.booking_id)

        def work() -> WrittenEvent:
            try:
                existing = self._provider.fetch(calendar.id, object_id)
                # An attendee's answer stands while the meeting keeps its
                # time (a provider resets it when the time moves).
                kept = (given_answers(existing.event)
                        if (existing.event.start, existing.event.end) == (draft.start, draft.end)
                        else None)
                stored = self._provider.replace(
                    calendar.id, object_id, event_from_draft(draft, calendar.id, answered=kept),
                    if_match=etag,
                )
            except Refused as refused:
                if refused.status == 404:  # the event, or its whole calendar
                    raise NotFound(
                        f"the event of booking {draft.booking_id} is gone", calendar=calendar.id
                    ) from refused
                if refused.status != 412:
                    raise
                raise Conflict(
                    f"the event of booking {draft.booking_id} changed on the provider",
                    href=object_id,
                    expected=etag or "",
                    actual=refused.actual,
                    calendar=calendar.id,
                ) from refused
            return _written(stored)

        return self._request(Operation.UPDATE, calendar.id, work)

    def delete_event(self, calendar: CalendarRef, booking_id: str, *, source: str = "") -> None:
        object_id = source or booking_object_id(booking_id)
        self._request(
            Operation.DELETE, calendar.id, lambda: self._provider.remove(calendar.id, object_id)
        )

    # -- push --------------------------------------------------------------------

    def start_channel(
        self, calendar: CalendarRef, *, address: str, token: str, ttl_seconds: int
    ) -> PushChannel | None:
        ttl = timedelta(seconds=ttl_seconds)
        return self._request(
            Operation.START_CHANNEL,
            calendar.id,
            lambda: self._provider.open_channel(calendar.id, address=address, token=token, ttl=ttl),
        )

    def renew_channel(self, channel: PushChannel, *, ttl_seconds: int) -> PushChannel:
        ttl = timedelta(seconds=ttl_seconds)
        return self._request(
            Operation.RENEW_CHANNEL,
            channel.calendar_id,
            lambda: self._provider.extend_channel(channel.id, channel.resource_id, ttl=ttl),
        )

    def stop_channel(self, channel: PushChannel) -> None:
        self._request(
            Operation.STOP_CHANNEL,
            channel.calendar_id,
            lambda: self._provider.close_channel(channel.id, channel.resource_id),
        )

    def parse_notification(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> tuple[Notification, ...]:
        return push.parse(headers, body, query)


def _written(stored: StoredObject) -> WrittenEvent:
    return WrittenEvent(stored.id, stored.etag, stored.event.uid,
                        answers=answers_of(stored.event))


def _retry_now(error: ConnectorError) -> bool:
    if isinstance(error, RateLimited) and error.retry_after is not None:
        return False  # the provider named a wait: the caller schedules it
    return isinstance(error, TransientError)
