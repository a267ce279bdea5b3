"""A brute-force reference for pooled slots, minute by minute.

Written from the rules, not from the engine: working time is found by
walking every minute and reading its wall-clock time with zoneinfo (a
range of a local date spans from the first to just after the last minute
whose wall time lies in it), busy time by testing every interval.  Only
valid for minute-aligned inputs, which the tests generate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.core.model import Booking, Calendar, EventType, Interval, Pool

MINUTE = timedelta(minutes=1)


def _minute_of_day(value: time) -> int:
    return value.hour * 60 + value.minute


@dataclass
class Reference:
    event_type: EventType
    calendars: Mapping[str, Calendar]
    pools: Mapping[str, Pool]
    busy: Mapping[str, Sequence[Interval]]
    bookings: Sequence[Booking]
    now: datetime
    span: Interval  # every start asked about lies inside

    def __post_init__(self) -> None:
        self._hours: dict[str, set[datetime]] = {}

    def _working_minutes(self, key: str) -> set[datetime] | None:
        calendar = self.calendars[key]
        if calendar.working_hours is None:
            return None
        if key not in self._hours:
            zone = ZoneInfo(calendar.timezone)
            first: dict[tuple[object, int], datetime] = {}
            last: dict[tuple[object, int], datetime] = {}
            # A day either side reaches every local date a start can touch.
            m = self.span.start - timedelta(days=1)
            while m < self.span.end + self.event_type.duration + timedelta(days=1):
                local = m.astimezone(zone)
                wall = _minute_of_day(local.time())
                ranges = calendar.working_hours.ranges_on(local.date())
                for i, r in enumerate(ranges):
                    end = 24 * 60 if r.end == time(0) else _minute_of_day(r.end)
                    if _minute_of_day(r.start) <= wall < end:
                        first.setdefault((local.date(), i), m)
                        last[(local.date(), i)] = m
                m += MINUTE
            minutes: set[datetime] = set()
            for k, start in first.items():
                t = start
                while t <= last[k]:
                    minutes.add(t)
                    t += MINUTE
            self._hours[key] = minutes
        return self._hours[key]

    def calendar_free(self, key: str, s: datetime, *, hours: bool = True,
                      busy: bool = True) -> bool:
        et = self.event_type
        if hours:
            working = self._working_minutes(key)
            if working is not None:
                m = s
                while m < s + et.duration:
                    if m not in working:
                        return False
                    m += MINUTE
        if busy:
            lo, hi = s - et.buffer_before, s + et.duration + et.buffer_after
            for interval in self.busy.get(key, ()):
                if interval.start < hi and lo < interval.end:
                    return False
            for booking in self.bookings:
                if (booking.status.is_active and key in booking.calendars
                        and booking.start < hi and lo < booking.end):
                    return False
        return True

    def on_grid(self, s: datetime) -> bool:
        local = s.astimezone(ZoneInfo(self.calendars[self.event_type.owner].timezone))
        step = self.event_type.step // MINUTE
        return local.second == 0 and local.microsecond == 0 and (
            _minute_of_day(local.time()) % step == 0)

    def day_full(self, s: datetime) -> bool:
        et = self.event_type
        if et.max_per_day == 0:
            return False
        zone = ZoneInfo(self.calendars[et.owner].timezone)
        day = s.astimezone(zone).date()
        count = sum(1 for b in self.bookings if b.status.is_active and b.event_type == et.key
                    and b.owner == et.owner and b.start.astimezone(zone).date() == day)
        return count >= et.max_per_day

    def rooms(self, s: datetime) -> dict[str, tuple[str, ...]]:
        return {key: tuple(m for m in self.pools[key].members if self.calendar_free(m, s))
                for key in self.event_type.pools}

    def bookable(self, s: datetime) -> dict[str, tuple[str, ...]] | None:
        """The free members of each pool if ``s`` can be booked, else None."""
        et = self.event_type
        if not self.on_grid(s) or s < self.now + et.min_notice or s >= self.now + et.horizon:
            return None
        if self.day_full(s):
            return None
        if not all(self.calendar_free(p, s) for p in et.persons):
            return None
        rooms = self.rooms(s)
        if not all(rooms.values()):
            return None
        return rooms

    def slots(self, window: Interval) -> list[tuple[datetime, dict[str, tuple[str, ...]]]]:
        found = []
        s = window.start
        while s < window.end:
            rooms = self.bookable(s)
            if rooms is not None:
                found.append((s, rooms))
            s += MINUTE
        return found
