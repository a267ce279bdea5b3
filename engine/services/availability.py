"""Slot queries from memory: the busy cache and the slot answer.

Reading tens of thousands of rows per query costs more than a query may take,
so each process keeps every calendar's busy time in memory
(:class:`BusyCache`), loaded from the store at start and reloaded for a
calendar when the sync that commits its batch says so.  Another process may
commit too (``calpool sync`` beside ``calpool run``, or several daemons on one
PostgreSQL): before answering, :meth:`BusyCache.refresh` asks the store for
every calendar's version — one small query — and reloads those that moved.
Active bookings bump the versions of their calendars, so the same check keeps
the cached bookings current.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.core.busy import BusyTimeline
from engine.core.model import Booking, Calendar, EventType, Interval, Pool, Slot
from engine.core.slots import find_slots
from engine.store import Store, SyncState

# Busy time is loaded for a span wide enough for any sync window.
_EVERYTHING = Interval(
    datetime.fromisoformat("1970-01-01T00:00:00+00:00"),
    datetime.fromisoformat("9999-01-01T00:00:00+00:00"),
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a slot query reads: busy time per calendar and active bookings."""

    busy: Mapping[str, BusyTimeline]
    bookings: tuple[Booking, ...]


class BusyCache:
    """Busy timelines per calendar plus the active bookings, kept in step
    with the store through the calendars' versions.  Thread-safe."""

    def __init__(self, calendars: Iterable[str]) -> None:
        self._keys = tuple(dict.fromkeys(calendars))
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._busy: dict[str, BusyTimeline] = {key: BusyTimeline([], []) for key in self._keys}
        self._bookings: tuple[Booking, ...] = ()

    def refresh(self, store: Store) -> Mapping[str, SyncState]:
        """Reload every calendar whose version moved since it was loaded, and
        return the sync states read for that (one small query)."""
        with store.reader() as uow:
            states = {state.calendar: state for state in uow.calendars.sync_states()}
        with self._lock:
            moved = [
                key
                for key in self._keys
                if (states[key].version if key in states else 0) != self._versions.get(key)
            ]
        if moved:
            self.reload(store, moved)
        return states

    def reload(self, store: Store, keys: Sequence[str]) -> None:
        """Read ``keys``' busy time (and all active bookings) from the store.

        The versions are read in the same transaction as the rows, so a
        commit between the two reads cannot leave a stale row marked fresh.
        """
        with store.reader() as uow:
            versions = uow.calendars.versions(keys)
            intervals = uow.events.busy_intervals(keys, _EVERYTHING)
            bookings = tuple(uow.bookings.active_touching(_EVERYTHING))
        timelines = {key: _timeline(intervals.get(key, ())) for key in keys}
        with self._lock:
            self._busy.update(timelines)
            for key in keys:
                self._versions[key] = versions.get(key, 0)
            self._bookings = bookings

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(dict(self._busy), self._bookings)


def _timeline(intervals: Iterable[Interval]) -> BusyTimeline:
    timeline = BusyTimeline.from_intervals(intervals)
    assert isinstance(timeline, BusyTimeline)  # from_intervals builds ``cls``
    return timeline


@dataclass(frozen=True, slots=True)
class StaleCalendar:
    """A calendar whose cached view may not be the truth.  ``reason`` is
    ``never_synced``, ``failed`` or ``stale``."""

    calendar: str
    last_synced: datetime | None
    reason: str
    error: str = ""


@dataclass(frozen=True, slots=True)
class SlotAnswer:
    event_type: EventType
    window: Interval
    slots: tuple[Slot, ...]
    stale_calendars: tuple[StaleCalendar, ...]


def staleness(
    states: Mapping[str, SyncState], keys: Iterable[str], *, now: datetime, stale_after: timedelta
) -> tuple[StaleCalendar, ...]:
    """The calendars among ``keys`` that never synced, failed their last
    sync, or last synced longer than ``stale_after`` ago (invariant 6)."""
    found = []
    for key in dict.fromkeys(keys):
        state = states.get(key)
        if state is None or state.last_success_at is None:
            error = (state.last_error or "") if state is not None else ""
            found.append(StaleCalendar(key, None, "never_synced", error))
        elif state.failed:
            error = state.last_error or ""
            found.append(StaleCalendar(key, state.last_success_at, "failed", error))
        elif now - state.last_success_at > stale_after:
            found.append(StaleCalendar(key, state.last_success_at, "stale"))
    return tuple(found)


def participants(event_type: EventType, pools: Mapping[str, Pool]) -> tuple[str, ...]:
    """Every calendar an event type's slots depend on: persons, then rooms."""
    rooms = (member for pool in event_type.pools for member in pools[pool].members)
    return tuple(dict.fromkeys((*event_type.persons, *rooms)))


class SlotService:
    """Answers slot queries from the busy cache."""

    def __init__(
        self,
        store: Store,
        cache: BusyCache,
        *,
        calendars: Mapping[str, Calendar],
        pools: Mapping[str, Pool],
        event_types: Mapping[str, EventType],
        stale_after: timedelta,
    ) -> None:
        self._store = store
        self._cache = cache
        self.calendars = calendars
        self.pools = pools
        self.event_types = event_types
        self._stale_after = stale_after

    def slots(self, event_type_key: str, window: Interval, *, now: datetime) -> SlotAnswer:
        """The slots of an event type whose start lies in ``window``.
        Raises ``KeyError`` for an unknown event type."""
        event_type = self.event_types[event_type_key]
        states = self._cache.refresh(self._store)
        snapshot = self._cache.snapshot()
        keys = participants(event_type, self.pools)
        slots = find_slots(
            event_type,
            calendars=self.calendars,
            pools=self.pools,
            busy=snapshot.busy,
            bookings=snapshot.bookings,
            window=window,
            now=now,
        )
        stale = staleness(states, keys, now=now, stale_after=self._stale_after)
        return SlotAnswer(event_type, window, tuple(slots), stale)
