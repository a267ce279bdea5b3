"""Housekeeping of the store: retention of ended bookings, old idempotency
keys and spent or expired links, and dropping the calendars that the
configuration no longer names.  The scheduler only calls these."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionPeriods:
    """How long ended bookings (with their attendee data) and idempotency
    keys are kept."""

    bookings: timedelta
    idempotency_keys: timedelta


@dataclass(frozen=True, slots=True)
class Purged:
    bookings: int
    idempotency_keys: int
    links: int

    @property
    def any(self) -> bool:
        return bool(self.bookings or self.idempotency_keys or self.links)


def purge_expired(store: Store, periods: RetentionPeriods, now: datetime) -> Purged:
    """Bookings that ended more than ``periods.bookings`` ago go with their
    attendee data (history, reservations, outbox jobs cascade), and so do
    the links used for them; idempotency keys older than
    ``periods.idempotency_keys``; links that expired unused.  One
    transaction."""
    with store.unit_of_work() as uow:
        purged = Purged(
            bookings=uow.bookings.purge_ended_before(now - periods.bookings),
            idempotency_keys=uow.idempotency.purge_created_before(now - periods.idempotency_keys),
            links=uow.links.purge_expired_before(now)
            + uow.links.purge_used_before(now - periods.bookings),
        )
        uow.commit()
    return purged


def register_calendars(store: Store, calendars: Iterable[str]) -> None:
    """Make sure the store has a row for each configured calendar (its sync
    state and cache hang off it)."""
    with store.unit_of_work() as uow:
        uow.calendars.ensure(calendars)
        uow.commit()


def forget_removed_calendars(store: Store, configured: Collection[str]) -> list[str]:
    """Drop the calendars not in ``configured`` from the store, with their
    cached events, cursor, lease and push channels; return their keys.
    Bookings name calendars by key and stay.

    A running daemon that reloads its config stops a removed calendar's
    push channels first, with the old config's connectors
    (``ChannelService.stop_removed``).  A calendar removed while no daemon
    ran cannot be stopped at the provider: its account and provider id left
    the config with it, and the store keeps only a digest of each channel's
    token.  Such channels run out at their expiry (days at most), and the
    hook answers their notifications as unknown once the rows are gone; the
    log names each one."""
    with store.unit_of_work() as uow:
        stored = uow.calendars.keys()
        removed = [key for key in stored if key not in configured]
        for key in removed:
            for channel in uow.channels.for_calendar(key):
                log.info("push channel %s of removed calendar %s runs out at %s",
                         channel.id, key, channel.expires_at.isoformat(),
                         extra={"calendar": key})
            uow.calendars.remove(key)
        uow.commit()
    return removed


def forget_calendar(store: Store, key: str) -> bool:
    """Drop one calendar from the store (``calpool db forget-calendar``),
    with its cached events, cursor, lease and push channels; ``False`` when
    the store has no such calendar.  Its bookings stay."""
    with store.unit_of_work() as uow:
        for channel in uow.channels.for_calendar(key):
            log.info("push channel %s of forgotten calendar %s runs out at %s",
                     channel.id, key, channel.expires_at.isoformat(), extra={"calendar": key})
        removed = uow.calendars.remove(key)
        uow.commit()
    return removed
