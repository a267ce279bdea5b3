"""Push notifications in: find the channel, check its token, mark the calendar.

``POST /hooks/{provider}`` hands each delivery to :meth:`PushReceiver.receive`
and only maps the answer.  The steps and why:

1. Parse the delivery with a connector of that provider (parsing is the
   provider's, not the account's: a Google delivery reads alike for every
   Google account).  A handshake (Graph's ``validationToken``) is answered
   with the reply the connector made and triggers nothing.
2. Look every notification's channel up by id in the store; the channel's
   calendar must be configured and served by an account of ``provider``,
   and its connector must parse the delivery too.  An unknown channel is
   ``unknown_channel``; a token that is not the channel's (checked in
   constant time against the stored digest, :meth:`PushChannel.accepts`)
   or another resource id is ``wrong_token``.  Either refuses the whole
   delivery and changes nothing.
3. In one transaction: record each notification's message id (a
   redelivered message is a duplicate and triggers nothing more), and mark
   each calendar that changed as "sync requested".  The process that holds
   or next takes the calendar's sync lease runs the sync
   (:meth:`engine.services.sync.SyncService.sync_requested`); a mark is
   never lost because another process is syncing.

A channel the provider ended (``removed``) is dropped from the store and its
calendar marked; the channel service opens a new one.  ``reauthorize``
brings the channel's renewal forward to now.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from engine.errors import PermanentError
from engine.ports import CalendarConnector, HookReply, Notification, NotificationKind, PushChannel
from engine.store import Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

_SYNCS = frozenset({NotificationKind.CHANGED, NotificationKind.MISSED, NotificationKind.REMOVED})


@dataclass(frozen=True, slots=True)
class PushRoute:
    """Who serves one configured calendar's channels: the provider of its
    account and that account's connector."""

    provider: str
    connector: CalendarConnector


class PushOutcome(enum.StrEnum):
    ACCEPTED = "accepted"  # checked; changed calendars marked
    HANDSHAKE = "handshake"  # the provider checked the address: send ``reply``
    NOT_A_DELIVERY = "not_a_delivery"  # no connector of the provider reads it
    UNKNOWN_CHANNEL = "unknown_channel"  # no such channel (for this provider)
    WRONG_TOKEN = "wrong_token"  # the channel exists; the token is not its own


@dataclass(frozen=True, slots=True)
class PushAnswer:
    outcome: PushOutcome
    detail: str = ""
    reply: HookReply | None = None
    accepted: int = 0
    duplicates: int = 0
    marked: tuple[str, ...] = field(default=())


class PushReceiver:
    """Receives push deliveries for the calendars of ``routes`` (by key)."""

    def __init__(
        self,
        store: Store,
        routes: Mapping[str, PushRoute],
        *,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._routes = dict(routes)
        self._clock = clock

    def providers(self) -> set[str]:
        return {route.provider for route in self._routes.values()}

    def receive(
        self,
        provider: str,
        headers: Mapping[str, str],
        body: bytes,
        query: Mapping[str, str] | None = None,
    ) -> PushAnswer:
        """One delivery to ``/hooks/{provider}``; see the module docstring."""
        notes = self._parse(provider, headers, body, query)
        if isinstance(notes, PushAnswer):
            return notes
        handshake = next((n for n in notes if n.kind is NotificationKind.HANDSHAKE), None)
        if handshake is not None:
            if handshake.reply is None:
                return PushAnswer(PushOutcome.NOT_A_DELIVERY, "a handshake without a reply")
            return PushAnswer(PushOutcome.HANDSHAKE, reply=handshake.reply)
        now = self._clock()
        with self._store.unit_of_work() as uow:
            channels: dict[str, PushChannel] = {}
            for note in notes:
                channel = channels.get(note.channel_id) or uow.channels.get(note.channel_id)
                refusal = self._check(provider, note, channel, headers, body, query)
                if refusal is not None:
                    log.warning("push delivery to /hooks/%s refused: %s", provider, refusal.detail)
                    return refusal
                assert channel is not None
                channels[note.channel_id] = channel
            accepted = duplicates = 0
            marked: list[str] = []
            for note in notes:
                channel = channels[note.channel_id]
                if note.message and not uow.channels.first_delivery(channel.id, note.message, now):
                    duplicates += 1
                    continue
                accepted += 1
                if note.kind in _SYNCS:
                    uow.sync_requests.request(channel.calendar, now)
                    if channel.calendar not in marked:
                        marked.append(channel.calendar)
                if note.kind is NotificationKind.REMOVED:
                    uow.channels.remove(channel.id)
                elif note.kind is NotificationKind.REAUTHORIZE:
                    uow.channels.save(replace(channel, expires_at=now))
            uow.commit()
        return PushAnswer(PushOutcome.ACCEPTED, accepted=accepted, duplicates=duplicates,
                          marked=tuple(marked))

    def _parse(
        self,
        provider: str,
        headers: Mapping[str, str],
        body: bytes,
        query: Mapping[str, str] | None,
    ) -> tuple[Notification, ...] | PushAnswer:
        parsers = [route.connector for route in self._routes.values()
                   if route.provider == provider]
        if not parsers:
            return PushAnswer(PushOutcome.UNKNOWN_CHANNEL,
                              f"no configured calendar is served by provider {provider!r}")
        try:
            notes = parsers[0].parse_notification(headers, body, query)
        except PermanentError as exc:
            return PushAnswer(PushOutcome.NOT_A_DELIVERY, str(exc))
        if not notes:
            return PushAnswer(PushOutcome.NOT_A_DELIVERY, "the delivery holds no notification")
        return notes

    def _check(
        self,
        provider: str,
        note: Notification,
        channel: PushChannel | None,
        headers: Mapping[str, str],
        body: bytes,
        query: Mapping[str, str] | None,
    ) -> PushAnswer | None:
        unknown = PushAnswer(PushOutcome.UNKNOWN_CHANNEL, f"no channel {note.channel_id!r}")
        if channel is None:
            return unknown
        route = self._routes.get(channel.calendar)
        if route is None or route.provider != provider:
            return unknown
        if not channel.accepts(note.token) or (
            channel.resource_id and note.resource_id != channel.resource_id
        ):
            return PushAnswer(PushOutcome.WRONG_TOKEN,
                              f"the token of channel {note.channel_id!r} does not match")
        if route.connector is not self._routes_parser(provider):
            # The channel's own account reads the delivery too (a delivery
            # its connector refuses is not one of its channel's).
            try:
                route.connector.parse_notification(headers, body, query)
            except PermanentError as exc:
                return PushAnswer(PushOutcome.NOT_A_DELIVERY, str(exc))
        return None

    def _routes_parser(self, provider: str) -> CalendarConnector | None:
        return next((route.connector for route in self._routes.values()
                     if route.provider == provider), None)
