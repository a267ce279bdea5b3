"""The connector protocol: what the engine asks of a calendar provider.

One connector serves one configured account (one CalDAV server login, one
Google service account, one Microsoft tenant) and every calendar of it: the
daemon builds it once from the account's settings, and each call names the
calendar with a :class:`CalendarRef`, which carries the calendar's zone
(floating times and all-day events of CalDAV are local to it).  Per account,
not per calendar, because providers batch across calendars (free/busy of
many calendars in one call) and share sessions and token caches.

Every method may raise only :mod:`engine.errors` exceptions.  Instants in and
out are UTC-aware; a window is an :class:`~engine.core.model.Interval`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from engine.core.model import (
    Attendee,
    AttendeeAnswer,
    ChangeSet,
    Interval,
    RemoteEvent,
    as_utc,
)
from engine.errors import ConnectorError, PermanentError


def instance_key(original_start: datetime) -> str:
    """``RemoteEvent.instance`` of an occurrence of a series: its original
    start (the RECURRENCE-ID) in UTC, ``2027-03-01T09:00:00Z``; every
    connector spells it so, so instances compare across providers."""
    return as_utc(original_start, what="original start").strftime("%Y-%m-%dT%H:%M:%SZ")


RequestObserver = Callable[[str], None]
"""Told of every HTTP request a connector sends, with its outcome: the
answer's status class (:func:`status_class`) or ``"error"`` when no answer
came (timeout, refused, TLS).  The daemon counts them per account."""


def status_class(status: int) -> str:
    """``"2xx"`` … ``"5xx"`` of an HTTP status; ``"error"`` outside 100–599."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "error"


@dataclass(frozen=True, slots=True)
class CalendarRef:
    """A calendar of the connector's account: ``id`` as configured
    (``calendars.<key>.id``), ``timezone`` its IANA zone, ``subject`` the
    user to act as for it (``calendars.<key>.subject``: Google's
    domain-wide delegation, so the owner organizes what calpool writes);
    ``None`` acts as the account's own subject."""

    id: str
    timezone: str = "UTC"
    subject: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventDraft:
    """The event calpool writes for a booking.

    ``booking_id`` is the idempotency key: the provider's object id / UID /
    transaction id is derived from it (and from the calendar written to), so
    writing the same draft twice leaves one event.  ``rooms`` are resource
    attendees (name, email; the email may be empty for a CalDAV room written
    into its own collection).

    ``organizer_copy`` says whether the draft goes into the owner's calendar.
    That copy carries the UID the attendee's invitation shows; every other
    copy (a room's, a ``with`` person's) gets a UID of its own, derived from
    the booking and that calendar, because servers such as Cyrus refuse one
    UID in two calendars of one login.  Every copy carries the booking id
    (CalDAV ``X-CALPOOL-BOOKING``), which is how sync recognises them.

    ``invite`` are the parties (rooms, ``with`` people) the owner's provider
    delivers the event to by itself (Google ``resource: true`` attendees,
    Graph ``type: "resource"`` attendees of the same account): the connector
    writing the organizer copy adds them as attendees that get the
    provider's invitation, and their answers come back through
    :meth:`CalendarConnector.read_event` and sync.  A room in ``rooms`` but
    not in ``invite`` gets its copy written by calpool and is named on the
    event without being invited.  ``notify_attendee`` says whether the
    provider itself sends the customer its invitation (Google
    ``sendUpdates``, Graph's attendee mail); the rooms in ``invite`` are
    invited either way.
    """

    booking_id: str
    title: str
    start: datetime
    end: datetime
    description: str = ""
    location: str = ""
    organizer: Attendee | None = None
    attendees: tuple[Attendee, ...] = ()
    rooms: tuple[Attendee, ...] = ()
    sequence: int = 0
    organizer_copy: bool = True
    invite: tuple[Attendee, ...] = ()
    notify_attendee: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start, what="event start"))
        object.__setattr__(self, "end", as_utc(self.end, what="event end"))
        if self.end <= self.start:
            raise ValueError("an event must end after it starts")
        if not self.booking_id:
            raise ValueError("an event draft needs its booking id")


@dataclass(frozen=True, slots=True)
class WrittenEvent:
    """Where a write landed: ``source`` as :class:`RemoteEvent.source` reports
    it (the CalDAV href, the Google/Graph event id), the provider's version
    ``etag`` (for a later conditional update) and the iCalendar ``uid``.
    ``answers`` are the invited attendees' answers as the provider reported
    them in its reply to the write, by lower-case email (often
    ``needs_action`` at first; a room answers seconds later)."""

    source: str
    etag: str
    uid: str
    answers: Mapping[str, AttendeeAnswer] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventState:
    """One event calpool wrote, as the provider holds it now
    (:meth:`CalendarConnector.read_event`): where it is, its version, its
    time, its iCalendar SEQUENCE (Google ``sequence``; ``0`` where the
    provider keeps none) and the attendees' answers by lower-case email."""

    source: str
    etag: str
    uid: str
    start: datetime
    end: datetime
    sequence: int = 0
    answers: Mapping[str, AttendeeAnswer] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start, what="event start"))
        object.__setattr__(self, "end", as_utc(self.end, what="event end"))
        object.__setattr__(self, "answers", MappingProxyType(
            {email.lower(): answer for email, answer in self.answers.items()}))

    def answer_of(self, email: str) -> AttendeeAnswer | None:
        """The answer of the attendee with ``email`` (any case); ``None``
        when the event does not name that attendee."""
        return self.answers.get(email.lower())


@dataclass(frozen=True, slots=True)
class FreeBusy:
    """A live free/busy answer: ``busy`` per calendar id (sorted, merged) for
    every calendar the provider answered, ``errors`` per calendar id for
    those it could not (Google's per-calendar ``errors``, Graph's
    per-schedule ``error``, a CalDAV collection that refused), so one bad
    room does not fail the check of a whole pool."""

    busy: Mapping[str, tuple[Interval, ...]] = field(default_factory=dict)
    errors: Mapping[str, ConnectorError] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "busy", MappingProxyType(dict(self.busy)))
        object.__setattr__(self, "errors", MappingProxyType(dict(self.errors)))

    def of(self, calendar_id: str) -> tuple[Interval, ...]:
        """The busy intervals of ``calendar_id``; raises the calendar's own
        error when the provider could not answer for it, and
        :class:`~engine.errors.PermanentError` when it was not asked."""
        if calendar_id in self.errors:
            raise self.errors[calendar_id]
        if calendar_id not in self.busy:
            raise PermanentError(f"free/busy of {calendar_id} was not asked")
        return self.busy[calendar_id]


def token_digest(token: str) -> str:
    """The sha256 (hex) of a channel token: what the store keeps of it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class PushChannel:
    """A push channel (Google watch channel, Graph subscription): the one
    type the connectors, the services and the store share.

    ``calendar_id`` is the provider's calendar id (:attr:`CalendarRef.id`);
    ``calendar`` the configured calendar key, set by the engine when it
    persists a channel (a connector leaves it empty).  ``token`` is the
    channel's secret (Google channel token, Graph clientState), known only
    to whoever opened the channel; the store keeps ``token_sha256`` alone,
    so a channel read back has ``token == ""``.  :meth:`accepts` checks what
    a notification echoed, in constant time.
    """

    id: str
    calendar_id: str
    resource_id: str
    expires_at: datetime
    token: str = ""
    token_sha256: str = ""
    calendar: str = ""
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "expires_at", as_utc(self.expires_at, what="channel expiry"))
        if self.created_at is not None:
            object.__setattr__(self, "created_at", as_utc(self.created_at, what="channel start"))
        if self.token:
            digest = token_digest(self.token)
            if self.token_sha256 and not hmac.compare_digest(digest, self.token_sha256):
                raise ValueError("a channel's token_sha256 must be the digest of its token")
            object.__setattr__(self, "token_sha256", digest)

    def accepts(self, token: str) -> bool:
        """Whether ``token`` is this channel's secret (constant time)."""
        if not self.token_sha256:
            return False
        return hmac.compare_digest(token_digest(token), self.token_sha256)


class NotificationKind(enum.StrEnum):
    SYNC = "sync"  # the channel is up (Google's first delivery): nothing to fetch
    CHANGED = "changed"  # something changed: run changes_since for the calendar
    MISSED = "missed"  # notifications were lost: resync the calendar
    REMOVED = "removed"  # the provider ended the channel: open a new one, resync
    REAUTHORIZE = "reauthorize"  # the provider wants the channel re-authorised (renew it)
    HANDSHAKE = "handshake"  # the provider checks the address (Graph's validationToken): answer


@dataclass(frozen=True, slots=True)
class HookReply:
    """What to answer a delivery with, when the provider expects a
    particular answer (Graph's validation: 200 ``text/plain`` echoing the
    token) rather than a plain 2xx."""

    status: int
    content_type: str
    body: str


@dataclass(frozen=True, slots=True)
class Notification:
    """One parsed push notification; ``token`` is what the provider echoed
    (Google channel token, Graph clientState) for the caller to check in
    constant time against the channel's (:meth:`PushChannel.accepts`).

    ``message`` identifies the notification within its channel (Google's
    ``X-Goog-Message-Number``, a Graph notification's id) so a redelivery
    triggers one sync; ``""`` when the provider gives none.  A
    :attr:`NotificationKind.HANDSHAKE` carries the ``reply`` to send and
    may name no channel (Graph validates before the subscription exists).
    """

    channel_id: str
    resource_id: str
    token: str
    kind: NotificationKind
    message: str = ""
    reply: HookReply | None = None


@runtime_checkable
class CalendarConnector(Protocol):
    """One account of one provider.  Calls are blocking and thread-safe for
    different calendars; they retry transient failures briefly themselves and
    raise :class:`~engine.errors.TransientError` when that did not help."""

    @property
    def push_supported(self) -> bool:
        """Whether :meth:`start_channel` can open channels at all."""
        ...

    def list_window(self, calendar: CalendarRef, window: Interval) -> ChangeSet:
        """Every object of ``calendar`` with instances in ``window``, expanded
        there, as ``ChangeSet(full=True)`` with a fresh cursor for
        :meth:`changes_since`.  Objects that cannot be parsed are logged
        (with their source) and left out; the rest is still returned."""
        ...

    def changes_since(self, calendar: CalendarRef, cursor: str, window: Interval) -> ChangeSet:
        """What changed since ``cursor`` (from a previous ``list_window`` or
        ``changes_since`` of the same calendar) as ``ChangeSet(full=False)``:
        each changed or deleted object with all its instances in ``window``
        (``()`` when gone or outside the window), and the next cursor.

        An unchanged object is not reported again, so when the caller moves
        the window it must call :meth:`list_window` to pick up instances that
        entered it.  Raises :class:`~engine.errors.CursorExpired` when the
        provider no longer knows the cursor (or it is forged).
        """
        ...

    def current_cursors(self, cursors: Mapping[CalendarRef, str]) -> frozenset[str]:
        """The ids of the calendars in ``cursors`` whose cursor is still
        current: nothing changed at the provider since it was issued, so
        :meth:`changes_since` would report nothing.  Asked for many calendars
        at once, in as few requests as the provider allows (CalDAV: one
        depth-1 PROPFIND of the sync tokens per parent collection), so a
        pass over many calendars skips the unchanged ones.

        Never claims a changed calendar current; a calendar left out may
        or may not have changed (an unknown or foreign cursor, a provider
        that cannot tell cheaply: Google and Graph answer an empty set).
        Raises :mod:`engine.errors` exceptions as every call does; the
        caller then asks :meth:`changes_since` as usual."""
        ...

    def events_in(self, calendar: CalendarRef, window: Interval) -> tuple[RemoteEvent, ...]:
        """Every instance of ``calendar`` in ``window`` (busy or not, with
        ``booking_id`` and ``answers``), read live without touching any sync
        state: no cursor is made or moved, no new Google sync-token or Graph
        delta round is opened.  For "who holds this room now"."""
        ...

    def free_busy(self, calendars: Sequence[CalendarRef], window: Interval) -> FreeBusy:
        """Busy intervals now, asked of the provider live (not from a cache),
        per calendar id, sorted and merged.  A calendar the provider could
        not answer for is in :attr:`FreeBusy.errors`; the call raises only
        when nothing could be asked at all (the account's login failed, the
        server is down)."""
        ...

    def read_event(
        self, calendar: CalendarRef, booking_id: str, *, source: str = ""
    ) -> EventState | None:
        """The event calpool wrote into ``calendar`` for ``booking_id``, as
        the provider holds it now, attendee answers included; ``None`` when
        it is gone.  ``source`` is where the write landed
        (:attr:`WrittenEvent.source`, kept in the delivery record): needed
        where the provider chose the id (Graph), used where it is known."""
        ...

    def create_event(self, calendar: CalendarRef, draft: EventDraft) -> WrittenEvent:
        """Write ``draft`` once.  When the event derived from its booking id
        exists already with the same content, return it (a retry after a
        crash); with other content raise :class:`~engine.errors.Conflict`."""
        ...

    def update_event(
        self, calendar: CalendarRef, draft: EventDraft, *, etag: str | None = None,
        source: str = "",
    ) -> WrittenEvent:
        """Replace the event of ``draft.booking_id`` (at ``source`` when
        given, as for :meth:`read_event`) in place: same id and UID.  With
        ``etag`` only if the provider still holds that version (else
        ``Conflict``); ``None`` overwrites.  Raises
        :class:`~engine.errors.NotFound` when it is gone."""
        ...

    def delete_event(self, calendar: CalendarRef, booking_id: str, *, source: str = "") -> None:
        """Remove the event of ``booking_id`` (at ``source`` when given, as
        for :meth:`read_event`); an event already gone is not an error
        (deleting twice is fine)."""
        ...

    def start_channel(
        self, calendar: CalendarRef, *, address: str, token: str, ttl_seconds: int
    ) -> PushChannel | None:
        """Open a push channel delivering to ``address`` (https); ``None``
        when the provider has no push (then the caller polls).  The returned
        expiry may be earlier than asked."""
        ...

    def renew_channel(self, channel: PushChannel, *, ttl_seconds: int) -> PushChannel:
        """Extend ``channel`` (or replace it; the returned one is current)."""
        ...

    def stop_channel(self, channel: PushChannel) -> None:
        """Close ``channel``; one already gone is not an error."""
        ...

    def parse_notification(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> tuple[Notification, ...]:
        """The notifications in one webhook delivery (header names in any
        case; ``query`` the delivery URL's query parameters, ``None`` taken
        as none).  A handshake (Graph's ``?validationToken=``) is one
        notification of kind ``HANDSHAKE`` whose ``reply`` the caller sends.
        Raises :class:`~engine.errors.PermanentError` for a delivery that is
        not one of this provider's."""
        ...


@runtime_checkable
class WebhookSender(Protocol):
    """Sends one signed webhook delivery (``engine.services.webhooks``)."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST ``body`` to ``url`` and return the answer's status.  Raises
        :class:`~engine.errors.TransientError` when no answer came (refused,
        timeout, TLS)."""
        ...


class MailSender(Protocol):
    """Hands one email to the mail server (``engine.services.mail``)."""

    def send(self, message: bytes, sender: str, recipients: Sequence[str]) -> None:
        """Submit ``message`` (RFC 5322 bytes) from ``sender`` to
        ``recipients``; returns once the server accepted it.  Raises
        :class:`~engine.errors.TransientError` when it did not (refused
        connection, timeout, TLS, a 4xx answer) and
        :class:`~engine.errors.PermanentError` when it never will (a 5xx
        answer: bad login, a refused recipient)."""
        ...
