"""Slot queries from memory: the busy cache and the slot answer.

Reading tens of thousands of rows per query costs more than a query may take,
so each process keeps every calendar's busy time in memory
(:class:`BusyCache`), loaded from the store at start and reloaded for a
calendar when the sync that commits its batch says so.  Another process may
commit too (``calpool sync`` beside ``calpool run``, or several daemons on one
PostgreSQL): before answering, :meth:`BusyCache.refresh` reads the store's
one-row change mark and, only when it moved, every calendar's sync state, and
reloads the calendars whose version moved.  Active bookings bump the versions
of their calendars, so the same check keeps the cached bookings current; a
reload reads only the bookings whose reservations of those calendars changed
since the version the cache holds (each reservation carries the version of
the change that wrote it), not every active booking.  Bookings deleted by
retention (ended long ago) stay in a running process's cache; they are in
the past, where no slot is offered.

A week of a 100-room pool is hundreds of slots listing tens of thousands of
free rooms, and clients ask the same default window again and again, so
:class:`SlotService` keeps recent answers, keyed on what an answer is a
function of: the event type, the grid starts left after clamping the window
to ``now`` (so ``now`` may move within a step), and the content of the busy
time and bookings it read.  Staleness depends on ``now`` and is worked out
afresh for every query.

Customers who page through weeks, or whose pages open at their own ``now``,
ask windows that differ by a step or a day and share most of their slots.
Whether a grid point is a slot does not depend on the window (see
:func:`engine.core.slots.slots_at`), so the service also keeps the slots of
whole UTC days (:class:`SlotBlock`), keyed on the same content: a new window
evaluates only the days no kept window covered, and is cut from the days.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

import numpy as np

from engine.core.busy import BusyTimeline
from engine.core.model import Booking, Calendar, EventType, Interval, Pool, Slot
from engine.core.slots import grid_points, slot_starts, slots_at
from engine.core.zones import DAY_US, from_us
from engine.store import Store, SyncState

# Busy time is loaded for a span wide enough for any sync window.
_EVERYTHING = Interval(
    datetime.fromisoformat("1970-01-01T00:00:00+00:00"),
    datetime.fromisoformat("9999-01-01T00:00:00+00:00"),
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a slot query reads: busy time per calendar and active bookings.

    ``contents`` numbers each calendar's busy time and ``bookings_content``
    the bookings: a number moves exactly when what it numbers changed, so
    equal numbers mean equal inputs (the key of :class:`SlotService`'s
    answers).  A sync that brings no change moves a version, not these."""

    busy: Mapping[str, BusyTimeline]
    bookings: tuple[Booking, ...]
    contents: Mapping[str, int] = field(default_factory=dict)
    bookings_content: int = 0


class BusyCache:
    """Busy timelines per calendar plus the active bookings, kept in step
    with the store through the calendars' versions.  Thread-safe."""

    def __init__(self, calendars: Iterable[str]) -> None:
        self._keys = tuple(dict.fromkeys(calendars))
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._busy: dict[str, BusyTimeline] = {key: BusyTimeline([], []) for key in self._keys}
        self._bookings: tuple[Booking, ...] = ()
        self._contents: dict[str, int] = dict.fromkeys(self._keys, 0)
        self._bookings_content = 0
        self._changes = 0
        self.bookings_read = 0
        """Bookings read from the store so far (each reload reads the changed ones)."""
        # The store's change mark when ``_states`` were read (see refresh).
        self._mark: tuple[int, ...] | None = None
        self._states: Mapping[str, SyncState] = MappingProxyType({})
        # When the kept states would first call a calendar stale (refresh).
        self._recheck_at: datetime | None = None

    def refresh(
        self, store: Store, *, now: datetime | None = None, stale_after: timedelta | None = None
    ) -> Mapping[str, SyncState]:
        """Reload every calendar whose version moved since it was loaded, and
        return every calendar's sync state — current in what the reload and
        failures read (version, last error); last success, cursor, window and
        last attempt may be older (see ``change_mark``).

        The store's change mark (one row) comes first: while it stands
        still, no version or error moved, and the states read last time are
        returned as they are.  It is read before the states, so states read
        with it are at least as new as the mark they are kept under.

        A sync that brings nothing moves only ``last_success_at``, which the
        mark leaves out.  A caller that works out staleness passes ``now``
        and ``stale_after``: the states are then also read anew once ``now``
        reaches the moment the kept copy would call some calendar stale, so
        a missed success stamp never shows as staleness.
        """
        with store.reader() as uow:
            mark = uow.calendars.change_mark()
            with self._lock:
                due = now is not None and stale_after is not None and (
                    self._recheck_at is None or now >= self._recheck_at)
                if mark == self._mark and not due:
                    return self._states
            states = MappingProxyType(
                {state.calendar: state for state in uow.calendars.sync_states()})
        with self._lock:
            moved = [
                key
                for key in self._keys
                if (states[key].version if key in states else 0) != self._versions.get(key)
            ]
        if moved:
            self.reload(store, moved)
        with self._lock:
            # Kept only after the reload, so a query that trusts the mark
            # finds the busy time as new as these states.
            self._mark, self._states = mark, states
            if now is not None and stale_after is not None:
                self._recheck_at = _recheck_at(states.values(), now, stale_after)
        return states

    def reload(self, store: Store, keys: Sequence[str]) -> None:
        """Read ``keys``' busy time, and the bookings whose reservations of
        them changed since the versions this cache holds (all active ones of
        a calendar loaded for the first time), from the store.

        The versions are read in the same transaction as the rows, so a
        commit between the two reads cannot leave a stale row marked fresh.
        """
        with self._lock:
            seen = {key: self._versions.get(key) for key in keys}
        with store.reader() as uow:
            versions = uow.calendars.versions(keys)
            intervals = uow.events.busy_intervals(keys, _EVERYTHING)
            changed = uow.bookings.changed_since(seen)
            fresh = uow.bookings.active_by_id(changed) if changed else []
        timelines = {key: BusyTimeline.from_intervals(intervals.get(key, ())) for key in keys}
        with self._lock:
            for key, timeline in timelines.items():
                if key not in self._busy or not _same(self._busy[key], timeline):
                    self._changes += 1
                    self._contents[key] = self._changes
            self._busy.update(timelines)
            for key in keys:
                self._versions[key] = versions.get(key, 0)
            self.bookings_read += len(fresh)
            if changed:
                kept = [booking for booking in self._bookings if booking.id not in changed]
                bookings = tuple(sorted([*kept, *fresh], key=lambda b: (b.start, b.id)))
                if bookings != self._bookings:
                    self._changes += 1
                    self._bookings_content = self._changes
                self._bookings = bookings

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(dict(self._busy), self._bookings,
                            MappingProxyType(dict(self._contents)), self._bookings_content)


def _recheck_at(states: Iterable[SyncState], now: datetime, stale_after: timedelta) -> datetime:
    """The first moment at which ``states`` would call a calendar stale (in
    the past when one looks stale already: then every query reads the states,
    so a success shows at once; a stale calendar is rare, the cost is one
    read per query only while it lasts).  Never-synced and failed calendars
    are left out: their first success moves the version or the error."""
    soonest = now + stale_after
    for state in states:
        if state.last_success_at is None or state.failed:
            continue
        soonest = min(soonest, state.last_success_at + stale_after)
    return soonest


def _same(one: BusyTimeline, other: BusyTimeline) -> bool:
    return bool(np.array_equal(one.starts, other.starts) and np.array_equal(one.ends, other.ends))


@dataclass(frozen=True, slots=True)
class StaleCalendar:
    """A calendar whose cached view may not be the truth.  ``reason`` is
    ``never_synced``, ``failed`` or ``stale``; or, for a calendar otherwise
    in order, ``N objects unreadable`` (busy time calpool could not read;
    ``error`` names one with its reason)."""

    calendar: str
    last_synced: datetime | None
    reason: str
    error: str = ""


@dataclass(frozen=True, slots=True)
class SlotBlock:
    """The slots of one UTC day of an event type, for one content of the
    busy time and bookings.  ``renderings`` is where a front end keeps what
    it made of each slot (the HTTP hook: its encoding per zone), for as
    long as the slot service keeps the block."""

    slots: tuple[Slot, ...]
    renderings: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SlotRun:
    """The slots ``block.slots[lo:hi]``: the part of a block in an answer."""

    block: SlotBlock
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class SlotAnswer:
    """``renderings`` is where a front end keeps what it made of ``slots``
    (the HTTP hook: the encoded slot list per zone).  It belongs to the
    kept answer, so a rendering lives exactly as long as the slot service
    keeps the slots it was made of: one cache, not one per front end.
    ``runs`` are the kept blocks ``slots`` were cut from, in order (empty
    for an answer made elsewhere), so a front end can reuse what it
    rendered of each block's slots for another window."""

    event_type: EventType
    window: Interval
    slots: tuple[Slot, ...]
    stale_calendars: tuple[StaleCalendar, ...]
    renderings: dict[str, object] = field(default_factory=dict, compare=False, repr=False)
    runs: tuple[SlotRun, ...] = field(default=(), compare=False, repr=False)


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


def unreadable(states: Mapping[str, SyncState], keys: Iterable[str]
               ) -> tuple[StaleCalendar, ...]:
    """The calendars among ``keys`` holding objects their connector could
    not read, as ``N objects unreadable``, the first by source named."""
    found = []
    for key in dict.fromkeys(keys):
        state = states.get(key)
        example = first_unreadable(state)
        if state is None or example is None:
            continue
        count = len(state.unreadable)
        found.append(StaleCalendar(
            key, state.last_success_at, f"{count} object{'s' if count != 1 else ''} unreadable",
            example))
    return tuple(found)


def first_unreadable(state: SyncState | None) -> str | None:
    """One unreadable object of the calendar as ``source: reason``, the
    first by source (stable from one look to the next); ``None`` when all
    were read."""
    if state is None or not state.unreadable:
        return None
    source, reason = min(state.unreadable.items())
    return f"{source}: {reason}"


def participants(event_type: EventType, pools: Mapping[str, Pool]) -> tuple[str, ...]:
    """Every calendar an event type's slots depend on: persons, then rooms."""
    rooms = (member for pool in event_type.pools for member in pools[pool].members)
    return tuple(dict.fromkeys((*event_type.persons, *rooms)))


# Answers kept per SlotService: a few windows per event type.  One answer of
# a week of a 100-room pool holds ~40,000 room names (shared strings), so a
# handful is cheap; more would mostly keep answers no one asks again.
ANSWERS_KEPT = 32
# Day blocks kept per SlotService, over every event type and content: nine
# weeks of one event type.  A day of a 100-room pool is ~70 slots and
# ~7,000 room names (shared strings) plus what a front end rendered of them.
BLOCKS_KEPT = 64


class SlotService:
    """Answers slot queries from the busy cache, keeping recent answers."""

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
        # Per kept answer: its slots and what front ends rendered of them.
        self._answers: OrderedDict[tuple[object, ...], SlotAnswer] = OrderedDict()
        # Keyed on ((event type, bookings content, busy contents), UTC day number).
        self._blocks: OrderedDict[tuple[object, ...], SlotBlock] = OrderedDict()
        self._answers_lock = threading.Lock()
        self.days_evaluated = 0
        """Days whose slots were worked out so far (the rest were kept)."""

    def slots(self, event_type_key: str, window: Interval, *, now: datetime) -> SlotAnswer:
        """The slots of an event type whose start lies in ``window``.
        Raises ``KeyError`` for an unknown event type."""
        event_type = self.event_types[event_type_key]
        keys = participants(event_type, self.pools)
        states = self._cache.refresh(self._store, now=now, stale_after=self._stale_after)
        snapshot = self._cache.snapshot()
        stale = staleness(states, keys, now=now, stale_after=self._stale_after)
        flagged = {entry.calendar for entry in stale}
        stale += unreadable(states, [key for key in keys if key not in flagged])
        starts = slot_starts(event_type, calendars=self.calendars, window=window, now=now)
        if starts.size == 0:
            return SlotAnswer(event_type, window, (), stale)
        contents = snapshot.contents
        content = (event_type_key, snapshot.bookings_content,
                   tuple([contents.get(k, 0) for k in keys]))
        first, last = int(starts[0]), int(starts[-1])
        key = (*content, first, last)
        with self._answers_lock:
            kept = self._answers.get(key)
            if kept is not None:
                self._answers.move_to_end(key)
        if kept is None:
            runs = self._runs(event_type, content, snapshot, first, last)
            slots = tuple(itertools.chain.from_iterable(
                run.block.slots[run.lo:run.hi] for run in runs))
            kept = SlotAnswer(event_type, window, slots, (), runs=runs)
            with self._answers_lock:
                self._answers[key] = kept
                while len(self._answers) > ANSWERS_KEPT:
                    self._answers.popitem(last=False)
        return SlotAnswer(event_type, window, kept.slots, stale, kept.renderings, kept.runs)

    @property
    def days_kept(self) -> int:
        """Day blocks kept now, over every event type and content."""
        with self._answers_lock:
            return len(self._blocks)

    def _runs(self, event_type: EventType, content: tuple[object, ...], snapshot: Snapshot,
              first: int, last: int) -> tuple[SlotRun, ...]:
        """The slots starting in ``[first, last]`` (epoch µs), as runs of
        the day blocks of ``content``; the days not kept are evaluated in
        one go, from the first missing to the last."""
        days = range(first // DAY_US, last // DAY_US + 1)
        with self._answers_lock:
            blocks = {day: self._blocks.get((content, day)) for day in days}
            for day, block in blocks.items():
                if block is not None:
                    self._blocks.move_to_end((content, day))
        missing = [day for day, block in blocks.items() if block is None]
        if missing:
            low, high = missing[0] * DAY_US, (missing[-1] + 1) * DAY_US
            evaluated = slots_at(event_type, *grid_points(event_type, self.calendars, low, high),
                                 calendars=self.calendars, pools=self.pools,
                                 busy=snapshot.busy, bookings=snapshot.bookings)
            fresh = _split_by_day(evaluated, missing[0], missing[-1])
            with self._answers_lock:
                for day in missing:
                    # Another thread may have kept the day meanwhile: its
                    # block (and what was rendered of it) stays.
                    block = self._blocks.setdefault((content, day), fresh[day])
                    self._blocks.move_to_end((content, day))
                    blocks[day] = block
                self.days_evaluated += len(missing)
                while len(self._blocks) > BLOCKS_KEPT:
                    self._blocks.popitem(last=False)
        runs = []
        for day in days:
            block = blocks[day]
            assert block is not None
            lo, hi = 0, len(block.slots)
            if day == days[0]:
                lo = bisect.bisect_left(block.slots, from_us(first), key=_start)
            if day == days[-1]:
                hi = bisect.bisect_right(block.slots, from_us(last), key=_start)
            if lo < hi:
                runs.append(SlotRun(block, lo, hi))
        return tuple(runs)


def _start(slot: Slot) -> datetime:
    return slot.start


def _split_by_day(slots: Sequence[Slot], first_day: int, last_day: int) -> dict[int, SlotBlock]:
    """``slots`` (in order) as one block per UTC day from ``first_day`` to
    ``last_day``."""
    blocks = {}
    lo = 0
    for day in range(first_day, last_day + 1):
        hi = bisect.bisect_left(slots, from_us((day + 1) * DAY_US), lo=lo, key=_start)
        blocks[day] = SlotBlock(tuple(slots[lo:hi]))
        lo = hi
    return blocks
