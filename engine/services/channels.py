"""Push channels: open, persist, renew before expiry, stop.

:meth:`ChannelService.maintain` (a scheduler job of every process) keeps one
live channel per calendar whose connector has push, while ``sync.push`` is
on and ``http.public_url`` is https:

- a calendar without a live channel gets one (address
  ``<public_url>/hooks/<provider>``, a fresh random token of which the
  store keeps the digest), and is marked for one sync: what changed
  between its last sync and the channel's start was notified to nobody;
- a channel that runs out within its renewal margin is replaced: a new
  channel is opened and persisted first, then the old one is stopped (Google
  has no renewal call; Graph could extend, but one way for all is simpler
  and never leaves a calendar without a channel);
- extra channels of a calendar (two processes opened one at once) and
  channels of calendars that no longer want one (push turned off, or the
  calendar's provider has none) are stopped and dropped.

:meth:`stop_removed` stops the channels of calendars that left the config
(the reloading process still has their connectors); :meth:`stop_all` runs
on shutdown.  The safety poll keeps running either way (``sync.safety_poll``
instead of ``sync.poll_interval`` for a calendar with a live channel).
A provider failure is logged and retried on the next run.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from engine.errors import ConnectorError
from engine.ports import CalendarConnector, CalendarRef, PushChannel
from engine.store import Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# How long the message ids of push deliveries are kept to spot redeliveries
# (providers redeliver within minutes to hours).
MESSAGES_KEPT = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ChannelTarget:
    """A configured calendar that may have a channel: its provider (the
    hook's path segment), the reference its connector understands, the
    connector."""

    provider: str
    ref: CalendarRef
    connector: CalendarConnector


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """``enabled``: ``sync.push`` with an https ``http.public_url``.
    ``ttl`` is asked of the provider (which may shorten it); a channel is
    replaced when less than ``renew_before`` (at most half its lifetime)
    is left."""

    enabled: bool
    public_url: str
    ttl: timedelta = timedelta(days=7)
    renew_before: timedelta = timedelta(days=1)

    @classmethod
    def from_settings(cls, *, push: bool, public_url: str) -> ChannelPolicy:
        return cls(enabled=push and public_url.startswith("https://"), public_url=public_url)

    def address(self, provider: str) -> str:
        return f"{self.public_url.rstrip('/')}/hooks/{provider}"


@dataclass(frozen=True, slots=True)
class ChannelReport:
    opened: tuple[str, ...] = ()
    renewed: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


class ChannelService:
    def __init__(
        self,
        store: Store,
        targets: Mapping[str, ChannelTarget],
        policy: ChannelPolicy,
        *,
        clock: Clock = lambda: datetime.now(UTC),
        new_token: Callable[[], str] = lambda: secrets.token_urlsafe(32),
    ) -> None:
        self._store = store
        self._targets = dict(targets)
        self._policy = policy
        self._clock = clock
        self._new_token = new_token

    def wanted(self) -> list[str]:
        """The calendars that should have a live channel."""
        if not self._policy.enabled:
            return []
        return [key for key, target in self._targets.items() if target.connector.push_supported]

    def live(self, now: datetime | None = None) -> dict[str, PushChannel]:
        """Each calendar's live channel (the one lasting longest)."""
        now = now or self._clock()
        with self._store.reader() as uow:
            stored = uow.channels.all()
        return {channel.calendar: channel for channel in stored if channel.expires_at > now}

    def maintain(self) -> ChannelReport:
        now = self._clock()
        wanted = set(self.wanted())
        with self._store.unit_of_work() as uow:
            uow.channels.forget_messages_before(now - MESSAGES_KEPT)
            stored = uow.channels.all()  # soonest expiry first
            uow.commit()
        by_calendar: dict[str, list[PushChannel]] = {}
        for channel in stored:
            by_calendar.setdefault(channel.calendar, []).append(channel)
        opened: list[str] = []
        renewed: list[str] = []
        stopped: list[str] = []
        failed: list[str] = []
        for key, channels in by_calendar.items():
            if key not in self._targets:
                continue  # a calendar of another config (stop_removed handles it)
            keep = channels[-1] if key in wanted and channels[-1].expires_at > now else None
            for channel in channels:
                if channel is not keep:
                    self._stop(key, channel, stopped)
        for key in sorted(wanted):
            current = next(
                (c for c in reversed(by_calendar.get(key, [])) if c.expires_at > now), None
            )
            if current is not None and not self._due(current, now):
                continue
            fresh = self._open(key, now, first=current is None)
            if fresh is None:
                failed.append(key)
                continue
            if current is None:
                opened.append(key)
            else:
                self._stop(key, current, [])
                renewed.append(key)
        return ChannelReport(tuple(opened), tuple(renewed), tuple(stopped), tuple(failed))

    def stop_removed(self, configured: Collection[str]) -> list[str]:
        """Stop and drop the channels of this service's calendars that are
        not in ``configured`` (the config that replaces this one)."""
        stopped: list[str] = []
        with self._store.reader() as uow:
            stored = uow.channels.all()
        for channel in stored:
            if channel.calendar in self._targets and channel.calendar not in configured:
                self._stop(channel.calendar, channel, stopped)
        return stopped

    def stop_all(self) -> list[str]:
        """Stop and drop every channel of this service's calendars (shutdown)."""
        return self.stop_removed(())

    def _due(self, channel: PushChannel, now: datetime) -> bool:
        margin = self._policy.renew_before
        if channel.created_at is not None:
            margin = min(margin, (channel.expires_at - channel.created_at) / 2)
        return channel.expires_at - now <= margin

    def _open(self, key: str, now: datetime, *, first: bool) -> PushChannel | None:
        """Open and persist a channel for ``key``.  The ``first`` one of a
        calendar (none was live) also marks it for sync in that
        transaction: a change made after the calendar's last sync but
        before the provider knew the channel is notified to nobody, and
        would otherwise wait for the safety poll.  A renewal needs none:
        the old channel is live until the new one is stored."""
        target = self._targets[key]
        token = self._new_token()
        try:
            channel = target.connector.start_channel(
                target.ref,
                address=self._policy.address(target.provider),
                token=token,
                ttl_seconds=int(self._policy.ttl.total_seconds()),
            )
        except ConnectorError as exc:
            log.warning("opening a push channel for %s failed: %s", key, exc,
                        extra={"calendar": key})
            return None
        if channel is None:
            return None
        stored = replace(channel, calendar=key, calendar_id=target.ref.id, token=token,
                         token_sha256="", created_at=now)
        with self._store.unit_of_work() as uow:
            uow.channels.save(stored)
            if first:
                uow.sync_requests.request(key, now)
            uow.commit()
        log.info("push channel %s for %s until %s", stored.id, key,
                 stored.expires_at.isoformat(), extra={"calendar": key})
        return stored

    def _stop(self, key: str, channel: PushChannel, stopped: list[str]) -> None:
        target = self._targets.get(key)
        if target is not None:
            try:
                target.connector.stop_channel(channel)
            except ConnectorError as exc:  # it runs out at its expiry anyway
                log.warning("stopping push channel %s of %s failed: %s", channel.id, key, exc,
                            extra={"calendar": key})
        with self._store.unit_of_work() as uow:
            uow.channels.remove(channel.id)
            uow.commit()
        stopped.append(channel.id)
