"""Pools: their report per reporting cycle (what each room received, lost,
and how busy it was), read from the store's room assignments and the busy
cache."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from engine.core.intervals import IntervalSet
from engine.core.model import Calendar, Interval, Pool
from engine.core.report import PoolReport, cycle_of, pool_report, previous_cycle
from engine.services.availability import BusyCache
from engine.store import Store


class UnknownPool(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(f"there is no pool {key!r}")
        self.key = key


CURRENT = "current"
PREVIOUS = "previous"


class PoolReports:
    """Reports of the configured pools."""

    def __init__(self, store: Store, cache: BusyCache, *, calendars: Mapping[str, Calendar],
                 pools: Mapping[str, Pool]) -> None:
        self._store = store
        self._cache = cache
        self._calendars = calendars
        self._pools = pools

    def cycle(self, pool_key: str, which: str | date, now: datetime) -> Interval:
        """The cycle ``which`` names: ``current``, ``previous``, or the one
        holding a date (in the pool's zone).  Raises :class:`UnknownPool`
        and ``ValueError`` for another word."""
        pool = self._pool(pool_key)
        if isinstance(which, date):
            noon = datetime.combine(which, time(12), tzinfo=ZoneInfo(pool.timezone))
            return cycle_of(pool, noon)
        if which == CURRENT:
            return cycle_of(pool, now)
        if which == PREVIOUS:
            return previous_cycle(pool, now)
        raise ValueError(f"{which!r} is not current, previous or a date")

    def report(self, pool_key: str, which: str | date, now: datetime) -> PoolReport:
        pool = self._pool(pool_key)
        cycle = self.cycle(pool_key, which, now)
        with self._store.reader() as uow:
            stints = uow.bookings.stints(pool.key, cycle)
            last = uow.bookings.last_assigned_before(pool.key, cycle.end)
        self._cache.refresh(self._store)
        snapshot = self._cache.snapshot()
        busy: dict[str, IntervalSet] = {}
        for room in pool.members:
            held = [booking.interval for booking in snapshot.bookings
                    if room in booking.rooms.values()]
            timeline = snapshot.busy.get(room, IntervalSet())
            busy[room] = timeline.union(IntervalSet.from_intervals(held))
        return pool_report(pool, cycle, stints, last_assigned=last, calendars=self._calendars,
                           busy=busy)

    def _pool(self, key: str) -> Pool:
        pool = self._pools.get(key)
        if pool is None:
            raise UnknownPool(key)
        return pool
