"""The provider side of the memory connector: the contract's events built
as :class:`~connectors.memory.MemoryEvent` objects on a
:class:`~connectors.memory.MemoryProvider`.

Translation, as a provider that stores structured events would hold them:
wall-clock times become instants in the event's zone (floating ones in the
calendar's zone: the memory provider has no floating times); a series is
expanded here, with dateutil's RRULE reading, into explicit occurrences
(skipping EXDATEs, applying overrides), as Google's ``singleEvents=true``
hands them out.  A rule without an end is expanded for three years.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from connectors.memory import MemoryConnector, MemoryEvent, MemoryProvider, Occurrence
from connectors.memory.events import Answer
from engine.ports import CalendarRef
from tests.contract.calendar_data import WINDOW, EventSpec, When, single
from tests.contract.harness import Capability

_UNBOUNDED_SERIES = timedelta(days=3 * 366)
_others = itertools.count(1)


def _as_instant(value: When, zone: ZoneInfo) -> When:
    if not isinstance(value, datetime):
        return value  # all-day: the date itself
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def memory_event(spec: EventSpec, *, calendar_zone: str) -> MemoryEvent:
    """``spec`` as the memory provider stores it."""
    zone = ZoneInfo(spec.zone or calendar_zone)
    occurrences: tuple[Occurrence, ...] = ()
    if spec.recurrence is not None:
        occurrences = _occurrences(spec, zone)
    return MemoryEvent(
        uid=spec.uid,
        start=_as_instant(spec.start, zone),
        end=_as_instant(spec.end, zone),
        summary=spec.title,
        transparent=spec.transparent,
        cancelled=spec.cancelled,
        occurrences=occurrences,
    )


def _occurrences(spec: EventSpec, zone: ZoneInfo) -> tuple[Occurrence, ...]:
    assert spec.recurrence is not None
    all_day = not isinstance(spec.start, datetime)

    # dateutil reads the rule on naive wall-clock times, as RFC 5545 does
    # for a DTSTART with a TZID; dates go through midnight and back.
    def naive(value: When) -> datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo is None else value.astimezone(zone).replace(tzinfo=None)
        return datetime.combine(value, time(0))

    def back(value: datetime) -> When:
        return value.date() if all_day else _as_instant(value, zone)

    first, length = naive(spec.start), naive(spec.end) - naive(spec.start)
    rule = rrulestr(spec.recurrence.rule, dtstart=first)
    excluded = {naive(x) for x in spec.recurrence.excluded}
    overrides = {naive(o.original_start): o for o in spec.recurrence.overrides}
    found: list[Occurrence] = []
    for start in rule.xafter(first - timedelta(microseconds=1), inc=True):
        if start - first > _UNBOUNDED_SERIES:
            break
        if start in excluded:
            continue
        override = overrides.pop(start, None)
        if override is None:
            found.append(
                Occurrence(original_start=back(start), start=back(start), end=back(start + length))
            )
        else:
            found.append(
                Occurrence(
                    original_start=back(start),
                    start=_as_instant(override.start, zone),
                    end=_as_instant(override.end, zone),
                    transparent=override.transparent,
                    cancelled=override.cancelled,
                )
            )
    assert not overrides, f"overrides of no occurrence: {sorted(overrides)}"
    return tuple(found)


class MemoryDriver:
    """Edits one calendar of a :class:`MemoryProvider` directly."""

    unsupported: Mapping[Capability, str] = {
        Capability.UNREADABLE_OBJECT: "it stores typed events only; nothing it holds is unreadable",
    }

    def __init__(self, provider: MemoryProvider, calendar: CalendarRef) -> None:
        self._provider = provider
        self._calendar = calendar
        self._specs: dict[str, EventSpec] = {}  # what was put, for move()

    def put(self, event: EventSpec) -> str:
        stored = memory_event(event, calendar_zone=self._calendar.timezone)
        self._provider.put(self._calendar.id, event.uid, stored)
        self._specs[event.uid] = event
        return event.uid

    def move(self, uid: str, start: When, end: When) -> str:
        spec = self._specs[uid]
        assert spec.recurrence is None, f"{uid} is a series; put it anew instead"
        return self.put(replace(spec, start=start, end=end))

    def delete(self, uid: str) -> None:
        assert self._provider.delete(self._calendar.id, uid), f"no object {uid}"

    def put_unreadable(self, uid: str) -> str:
        raise AssertionError("unsupported: the case should have skipped")

    def expire_cursor(self) -> None:
        self._provider.expire_cursors(self._calendar.id)

    def foreign_cursor(self) -> str:
        other = CalendarRef(f"other-{next(_others)}", self._calendar.timezone)
        self._provider.add_calendar(other.id)
        own = memory_event(single("own"), calendar_zone=other.timezone)
        self._provider.put(other.id, "own", own)
        return MemoryConnector(self._provider).list_window(other, WINDOW).cursor

    def decline_as_room(self, source: str, email: str) -> None:
        self._provider.answer(self._calendar.id, source, email, Answer.DECLINED)

    def pushes(self, address: str) -> list[tuple[Mapping[str, str], bytes]]:
        return [(d.headers, d.body) for d in self._provider.take_deliveries(address)]
