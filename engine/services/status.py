"""How the site stands, read from the store in one transaction: the one
query behind ``calpool status``, ``/readyz``, the process's status line and
the store figures of ``/metrics``.  No provider is asked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine.services.availability import StaleCalendar, staleness
from engine.store import ConfigSeen, ProcessSeen, PushChannel, Store, SyncState


@dataclass(frozen=True, slots=True)
class SiteStatus:
    """``calendars`` in configured order; ``flagged`` those not ok (never
    synced, failed, stale).  Channels, bookings, event counts and webhook
    deliveries are read only when asked for (empty otherwise)."""

    now: datetime
    calendars: tuple[str, ...]
    states: Mapping[str, SyncState]
    flagged: tuple[StaleCalendar, ...]
    outbox_depth: int
    outbox_oldest: datetime | None
    bookings_by_status: Mapping[str, int] = field(default_factory=dict)
    channels: Mapping[str, Sequence[PushChannel]] = field(default_factory=dict)
    cached_events: Mapping[str, int] = field(default_factory=dict)
    webhooks: Mapping[str, int] = field(default_factory=dict)
    """Webhook deliveries by state: pending, done, failed (given up)."""
    newest_config: ConfigSeen | None = None
    processes: Sequence[ProcessSeen] = ()
    """Processes seen within ``alive_within`` (read when asked for)."""

    def state_of(self, key: str) -> str:
        """``ok``, ``never_synced``, ``failed`` or ``stale``."""
        return next((entry.reason for entry in self.flagged if entry.calendar == key), "ok")

    def count(self, reason: str) -> int:
        return sum(1 for entry in self.flagged if entry.reason == reason)

    @property
    def never_tried(self) -> list[str]:
        """Calendars without any recorded sync attempt."""
        return [key for key in self.calendars
                if (state := self.states.get(key)) is None or state.last_attempt_at is None]


class StatusQuery:
    """Reads :class:`SiteStatus` of the configured calendars."""

    def __init__(self, store: Store, calendars: Sequence[str], *, stale_after: timedelta) -> None:
        self._store = store
        self._calendars = tuple(calendars)
        self._stale_after = stale_after

    def read(self, now: datetime, *, channels: bool = False, bookings: bool = False,
             event_counts: bool = False, webhooks: bool = False,
             processes_within: timedelta | None = None) -> SiteStatus:
        with self._store.reader() as uow:
            states = {state.calendar: state for state in uow.calendars.sync_states()}
            depth = uow.outbox.pending_count()
            oldest = uow.outbox.oldest_pending_created_at()
            by_status = uow.bookings.count_by_status() if bookings else {}
            open_channels = ({key: uow.channels.for_calendar(key) for key in self._calendars}
                             if channels else {})
            counts = {key: uow.events.count(key) for key in self._calendars} if event_counts else {}
            deliveries = uow.webhooks.counts() if webhooks else {}
            newest = (uow.processes.newest_config(now - processes_within)
                      if processes_within is not None else None)
            running = (uow.processes.running(now - processes_within)
                       if processes_within is not None else [])
        flagged = staleness(states, self._calendars, now=now, stale_after=self._stale_after)
        return SiteStatus(now, self._calendars, states, flagged, depth, oldest, by_status,
                          open_channels, counts, deliveries, newest, running)
