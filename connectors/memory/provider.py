"""The memory provider: the "server" a :class:`MemoryConnector` talks to.

It imitates what the connector protocol expects of any provider, not one
vendor: calendars holding objects under ids, each object with a version
(etag) that changes on every write; a change log behind opaque cursors that
the provider may forget (Google's 410 ``fullSyncRequired``, CalDAV's
``valid-sync-token``); conditional writes (``If-None-Match: *`` to create
once, ``If-Match`` to update a known version, a UID unique per calendar as
RFC 4791's ``no-uid-conflict``); push channels with an expiry the provider
may shorten, delivering JSON to the channel's address
(:mod:`connectors.memory.push`); and accounts whose credentials it accepts.

Two kinds of callers:

- the connector, through the protocol side (:meth:`admit`, :meth:`listing`,
  :meth:`changes`, :meth:`create`, :meth:`replace`, :meth:`remove`, the
  channel calls), which answers like a server: with a
  :class:`~connectors.memory.faults.ProviderFailure` carrying an HTTP-like status where a server
  would refuse (the connector maps it onto :mod:`engine.errors`);
- tests and demos, through the provider side (:meth:`put`, :meth:`delete`,
  :meth:`expire_cursors`, :meth:`inject`, :meth:`end_channel`, …), as a
  person with another client or the provider's operator would act behind
  calpool's back.

All state sits behind one re-entrant lock (:attr:`lock`), so connectors
on many threads, and a test editing meanwhile, see each call whole.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Concatenate, ParamSpec, TypeVar

from connectors.memory import push
from connectors.memory.events import Answer, MemoryEvent
from connectors.memory.faults import Fault, Operation, Refused, Unreachable
from engine.ports import Notification, NotificationKind, PushChannel


def _utc_now() -> datetime:
    return datetime.now(UTC)


P = ParamSpec("P")
R = TypeVar("R")


def _locked(
    method: Callable[Concatenate[MemoryProvider, P], R],
) -> Callable[Concatenate[MemoryProvider, P], R]:
    """Run a protocol-side request under the provider's lock.  The connector
    holds the lock across a whole call already (the lock is re-entrant);
    this keeps a request whole for any other caller too."""

    def locked(provider: MemoryProvider, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with provider.lock:
            return method(provider, *args, **kwargs)

    # By hand, not functools.wraps: mypy types wraps' result as another callable.
    locked.__name__, locked.__doc__ = method.__name__, method.__doc__
    return locked


# -- what it stores ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object of a calendar as the provider holds it now."""

    id: str
    etag: str
    event: MemoryEvent


@dataclass(slots=True)
class _Calendar:
    resource_id: str
    objects: dict[str, StoredObject] = field(default_factory=dict)
    # object id -> position of its last change; deletions stay as tombstones
    # so a cursor from before a deletion still learns of it.
    changed_at: dict[str, int] = field(default_factory=dict)
    position: int = 0


@dataclass(slots=True)
class _PendingFault:
    fault: Fault
    left: int


@dataclass(slots=True)
class _Channel:
    channel: PushChannel
    address: str
    messages: int = 0


class MemoryProvider:
    """The whole provider: accounts, calendars, channels, pending faults.

    ``max_channel_ttl`` caps what a channel may ask for (Google may shorten
    a watch, Graph caps subscriptions under 7 days); ``clock`` decides when
    channels expire.
    """

    def __init__(
        self,
        *,
        accounts: Iterable[str] = ("calpool",),
        clock: Callable[[], datetime] = _utc_now,
        max_channel_ttl: timedelta = timedelta(days=7),
    ) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        self._max_channel_ttl = max_channel_ttl
        self._accounts = set(accounts)
        self._calendars: dict[str, _Calendar] = {}
        self._tokens: dict[str, tuple[str, int]] = {}  # cursor -> (calendar, position)
        self._token_at: dict[tuple[str, int], str] = {}
        self._etags = itertools.count(1)
        self._channel_ids = itertools.count(1)
        self._channels: dict[str, _Channel] = {}
        self._faults: list[_PendingFault] = []
        self._reachable = True
        self._admitted: Counter[Operation] = Counter()
        self._deliveries: list[push.Delivery] = []

    # == provider side: the operator and other clients ==========================

    def add_account(self, account: str) -> None:
        with self.lock:
            self._accounts.add(account)

    def revoke_account(self, account: str) -> None:
        """Refuse ``account``'s credentials from now on (401)."""
        with self.lock:
            self._accounts.discard(account)

    def add_calendar(self, calendar_id: str) -> None:
        """Create an empty calendar (no-op when it exists)."""
        with self.lock:
            if calendar_id not in self._calendars:
                self._calendars[calendar_id] = _Calendar(resource_id=f"res-{secrets.token_hex(6)}")

    def calendar_ids(self) -> tuple[str, ...]:
        with self.lock:
            return tuple(self._calendars)

    def put(self, calendar_id: str, object_id: str, event: MemoryEvent) -> StoredObject:
        """Store ``event`` as ``object_id`` (create or replace), unconditionally."""
        if not object_id:
            raise ValueError("an object needs an id")
        with self.lock:
            return self._store(self._calendar(calendar_id), calendar_id, object_id, event)

    def delete(self, calendar_id: str, object_id: str) -> bool:
        """Remove ``object_id``; whether it was there."""
        with self.lock:
            calendar = self._calendar(calendar_id)
            if calendar.objects.pop(object_id, None) is None:
                return False
            self._record_change(calendar, calendar_id, object_id)
            return True

    def get(self, calendar_id: str, object_id: str) -> StoredObject | None:
        with self.lock:
            return self._calendar(calendar_id).objects.get(object_id)

    def objects(self, calendar_id: str) -> tuple[StoredObject, ...]:
        with self.lock:
            return tuple(self._calendar(calendar_id).objects.values())

    def expire_cursors(self, calendar_id: str) -> None:
        """Forget every cursor issued for the calendar so far, as a provider
        does after a while (Google's 410, a server that pruned its sync
        tokens): the next ``changes_since`` with one of them is refused."""
        with self.lock:
            calendar = self._calendar(calendar_id)
            for token, (owner, _) in list(self._tokens.items()):
                if owner == calendar_id:
                    del self._tokens[token]
            self._token_at = {k: v for k, v in self._token_at.items() if k[0] != calendar_id}
            # A fresh position, so the next cursor is a new token too.
            calendar.position += 1

    def inject(self, fault: Fault) -> None:
        """Make the next matching requests fail (see :class:`Fault`)."""
        if fault.times < 1:
            raise ValueError("a fault must apply at least once")
        with self.lock:
            self._faults.append(_PendingFault(fault, fault.times))

    @property
    def reachable(self) -> bool:
        with self.lock:
            return self._reachable

    @reachable.setter
    def reachable(self, value: bool) -> None:
        """``False``: every request goes unanswered until set back."""
        with self.lock:
            self._reachable = value

    def channels(self, calendar_id: str | None = None) -> tuple[PushChannel, ...]:
        """The live (open, unexpired) channels, of one calendar or all."""
        with self.lock:
            return tuple(
                record.channel
                for record in self._live_channels()
                if calendar_id is None or record.channel.calendar_id == calendar_id
            )

    def end_channel(self, channel_id: str) -> None:
        """The provider ends a channel on its own (Graph's
        ``subscriptionRemoved``): a ``removed`` notification, then silence."""
        with self.lock:
            record = self._channels.pop(channel_id, None)
            if record is not None:
                self._notify(record, NotificationKind.REMOVED)

    def report_missed(self, channel_id: str) -> None:
        """The provider admits it lost notifications (Graph's ``missed``)."""
        with self.lock:
            record = self._channels.get(channel_id)
            if record is not None:
                self._notify(record, NotificationKind.MISSED)

    def deliveries(self) -> tuple[push.Delivery, ...]:
        """Every webhook POST made so far, oldest first."""
        with self.lock:
            return tuple(self._deliveries)

    def take_deliveries(self, address: str | None = None) -> tuple[push.Delivery, ...]:
        """The POSTs made so far (to ``address``, or all), removing them."""
        with self.lock:
            taken: list[push.Delivery] = []
            kept: list[push.Delivery] = []
            for delivery in self._deliveries:
                wanted = address is None or delivery.address == address
                (taken if wanted else kept).append(delivery)
            self._deliveries = kept
            return tuple(taken)

    def admitted(self) -> Counter[Operation]:
        """How many requests of each kind got in (as a server's access log
        would tell), refused or not by what followed."""
        with self.lock:
            return Counter(self._admitted)

    # == protocol side: what the connector requests ================================

    @_locked
    def admit(self, account: str, operation: Operation) -> None:
        """Let a request in, or answer it as the provider is now: not at all,
        with an injected fault, or 401 for credentials it does not know."""
        if not self._reachable:
            raise Unreachable("the provider does not answer")
        self._admitted[operation] += 1
        for pending in self._faults:
            if pending.fault.applies_to(operation):
                pending.left -= 1
                if pending.left == 0:
                    self._faults.remove(pending)
                raise pending.fault.failure()
        if account not in self._accounts:
            raise Refused(401, f"account {account!r} is not known here")

    @_locked
    def listing(self, calendar_id: str) -> tuple[tuple[StoredObject, ...], str]:
        """Every object of the calendar and a cursor for what follows."""
        calendar = self._existing(calendar_id)
        return tuple(calendar.objects.values()), self._cursor(calendar, calendar_id)

    @_locked
    def current(self, calendar_id: str) -> tuple[StoredObject, ...]:
        """Every object of the calendar, without a cursor (a plain read, as
        Google's ``events.list`` without ``syncToken`` or Graph's
        ``calendarView`` outside a delta round)."""
        return tuple(self._existing(calendar_id).objects.values())

    @_locked
    def fetch(self, calendar_id: str, object_id: str) -> StoredObject:
        """One object; 404 when absent."""
        found = self._existing(calendar_id).objects.get(object_id)
        if found is None:
            raise Refused(404, f"{object_id} is not there")
        return found

    def answer(self, calendar_id: str, object_id: str, email: str, answer: Answer) -> StoredObject:
        """The attendee ``email`` of an event answers (a room's booking
        assistant accepting or declining): the event's participant is
        rewritten, as a change of the event, seen by sync and push."""
        with self.lock:
            calendar = self._calendar(calendar_id)
            stored = calendar.objects.get(object_id)
            if stored is None:
                raise KeyError(f"{object_id} is not in {calendar_id}")
            wanted = email.lower()
            if not any(p.email.lower() == wanted for p in stored.event.attendees):
                raise KeyError(f"{email} is not an attendee of {object_id}")
            attendees = tuple(
                replace(p, answer=answer) if p.email.lower() == wanted else p
                for p in stored.event.attendees
            )
            event = replace(stored.event, attendees=attendees)
            return self._store(calendar, calendar_id, object_id, event)

    @_locked
    def changes(self, calendar_id: str, cursor: str) -> tuple[dict[str, StoredObject | None], str]:
        """The objects changed since ``cursor`` (``None``: deleted) and the
        next cursor; 410 for a cursor this calendar did not issue or the
        provider has forgotten."""
        calendar = self._existing(calendar_id)
        issued = self._tokens.get(cursor)
        if issued is None or issued[0] != calendar_id:
            raise Refused(410, "the cursor is not known for this calendar")
        since = issued[1]
        changed = {
            object_id: calendar.objects.get(object_id)
            for object_id, at in calendar.changed_at.items()
            if at > since
        }
        return changed, self._cursor(calendar, calendar_id)

    @_locked
    def current_cursors(self, cursors: Mapping[str, str]) -> frozenset[str]:
        """The calendars (of ``cursors``: calendar id → cursor) whose cursor
        stands for their state now: issued for them at their last change,
        as a CalDAV collection's ``DAV:sync-token`` equals the token of the
        last sync-collection answer until something changes."""
        return frozenset(
            calendar_id for calendar_id, cursor in cursors.items()
            if calendar_id in self._calendars
            and self._tokens.get(cursor) == (calendar_id, self._calendars[calendar_id].position)
        )

    @_locked
    def create(self, calendar_id: str, object_id: str, event: MemoryEvent) -> StoredObject:
        """Store a new object; 412 when ``object_id`` is taken (answering with
        its etag), 409 when another object holds the UID."""
        calendar = self._existing(calendar_id)
        existing = calendar.objects.get(object_id)
        if existing is not None:
            raise Refused(412, f"{object_id} exists", actual=existing.etag)
        self._refuse_uid_elsewhere(calendar, object_id, event.uid)
        return self._store(calendar, calendar_id, object_id, event)

    @_locked
    def replace(
        self, calendar_id: str, object_id: str, event: MemoryEvent, *, if_match: str | None
    ) -> StoredObject:
        """Replace an existing object; 404 when absent, 412 when ``if_match``
        is not its etag (``None``: any version)."""
        calendar = self._existing(calendar_id)
        existing = calendar.objects.get(object_id)
        if existing is None:
            raise Refused(404, f"{object_id} is not there")
        if if_match is not None and if_match != existing.etag:
            raise Refused(412, f"{object_id} is at another version", actual=existing.etag)
        self._refuse_uid_elsewhere(calendar, object_id, event.uid)
        return self._store(calendar, calendar_id, object_id, event)

    @_locked
    def remove(self, calendar_id: str, object_id: str) -> None:
        """Delete ``object_id``; an absent one is no error (as a 404 on DELETE)."""
        self._existing(calendar_id)
        self.delete(calendar_id, object_id)

    @_locked
    def open_channel(
        self, calendar_id: str, *, address: str, token: str, ttl: timedelta
    ) -> PushChannel:
        """Open a channel for ``ttl`` (capped); its first delivery is ``sync``."""
        calendar = self._existing(calendar_id)
        if not address.startswith(("https://", "http://")) or ttl <= timedelta(0):
            raise Refused(400, "a channel needs an http(s) address and a positive TTL")
        channel = PushChannel(
            id=f"ch-{next(self._channel_ids)}-{secrets.token_hex(4)}",
            calendar_id=calendar_id,
            resource_id=calendar.resource_id,
            token=token,
            expires_at=self._clock() + min(ttl, self._max_channel_ttl),
        )
        record = _Channel(channel=channel, address=address)
        self._channels[channel.id] = record
        self._notify(record, NotificationKind.SYNC)
        return channel

    @_locked
    def extend_channel(self, channel_id: str, resource_id: str, *, ttl: timedelta) -> PushChannel:
        """Push a live channel's expiry out; 404 for one closed or expired."""
        record = self._live_channel(channel_id, resource_id)
        if ttl <= timedelta(0):
            raise Refused(400, "a channel needs a positive TTL")
        expires_at = self._clock() + min(ttl, self._max_channel_ttl)
        record.channel = replace(record.channel, expires_at=expires_at)
        return record.channel

    @_locked
    def close_channel(self, channel_id: str, resource_id: str) -> None:
        """Close a channel; one already gone is no error."""
        record = self._channels.get(channel_id)
        if record is not None and record.channel.resource_id == resource_id:
            del self._channels[channel_id]

    # == inside ===============================================================================

    def _calendar(self, calendar_id: str) -> _Calendar:
        calendar = self._calendars.get(calendar_id)
        if calendar is None:
            raise KeyError(f"no calendar {calendar_id!r} on this provider")
        return calendar

    def _existing(self, calendar_id: str) -> _Calendar:
        calendar = self._calendars.get(calendar_id)
        if calendar is None:
            raise Refused(404, f"no calendar {calendar_id!r}")
        return calendar

    def _refuse_uid_elsewhere(self, calendar: _Calendar, object_id: str, uid: str) -> None:
        for other in calendar.objects.values():
            if other.id != object_id and other.event.uid == uid:
                raise Refused(409, f"UID {uid} is stored as {other.id}")

    def _store(
        self, calendar: _Calendar, calendar_id: str, object_id: str, event: MemoryEvent
    ) -> StoredObject:
        stored = StoredObject(object_id, f'"{next(self._etags)}"', event)
        calendar.objects[object_id] = stored
        self._record_change(calendar, calendar_id, object_id)
        return stored

    def _record_change(self, calendar: _Calendar, calendar_id: str, object_id: str) -> None:
        calendar.position += 1
        calendar.changed_at[object_id] = calendar.position
        for record in self._live_channels():
            if record.channel.calendar_id == calendar_id:
                self._notify(record, NotificationKind.CHANGED)

    def _cursor(self, calendar: _Calendar, calendar_id: str) -> str:
        # One token per position: an unchanged calendar hands out the same
        # cursor again, as Google does.
        key = (calendar_id, calendar.position)
        token = self._token_at.get(key)
        if token is None:
            token = "m1." + secrets.token_urlsafe(16)
            self._token_at[key] = token
            self._tokens[token] = key
        return token

    def _live_channels(self) -> list[_Channel]:
        now = self._clock()
        for channel_id in [i for i, r in self._channels.items() if r.channel.expires_at <= now]:
            del self._channels[channel_id]
        return list(self._channels.values())

    def _live_channel(self, channel_id: str, resource_id: str) -> _Channel:
        record = next((r for r in self._live_channels() if r.channel.id == channel_id), None)
        if record is None or record.channel.resource_id != resource_id:
            raise Refused(404, f"no live channel {channel_id}")
        return record

    def _notify(self, record: _Channel, kind: NotificationKind) -> None:
        record.messages += 1
        channel = record.channel
        notification = Notification(channel.id, channel.resource_id, channel.token, kind)
        headers, body = push.encode([(notification, record.messages)])
        self._deliveries.append(push.Delivery(address=record.address, headers=headers, body=body))
