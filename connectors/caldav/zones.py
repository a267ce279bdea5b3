"""Which clock a TZID names, for one object at a time.

RFC 5545 §3.2.19: a TZID refers to the VTIMEZONE of the same object.  Each
object gets its own :class:`ZoneTable`; a VTIMEZONE is never looked up by its
TZID across objects (icalendar's process-wide cache did that, so the first
object read decided every later one's rules, and an edited VTIMEZONE was
never seen while the process lived).  Rules built from a VTIMEZONE are
cached by the component's content, which changes whenever the rules do.

A TZID is resolved, in order:

1. empty or absent: floating, the calendar's configured zone;
2. an IANA name: tzdata, whatever the object's VTIMEZONE of that name says
   (an 1893 observance with an impossible offset then does no harm);
3. the object's own VTIMEZONE of that TZID;
4. a globally unique TZID (RFC 5545 §3.2.19: starts with ``/``) whose tail is
   an IANA name, as libical, Thunderbird and Evolution write them
   (``/mozilla.org/20070129_1/America/New_York``): tzdata for that name;
5. anything else: :class:`~connectors.caldav.timing.TimingError`.

Local times that occur twice mean the first; local times that do not occur
take the UTC offset before the gap (RFC 5545 §3.3.5).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

from connectors.caldav.content import Component
from connectors.caldav.timing import TimingError, read_offset, read_rule, read_time

# A VTIMEZONE's yearly rules are expanded to this year; later instants keep
# the last offset (calpool's windows lie within days of now).
_LAST_YEAR = 2100


class WallClock(Protocol):
    def to_utc(self, wall: datetime) -> datetime:
        """The instant of a naive local time, by RFC 5545 §3.3.5."""
        ...

    def exists(self, wall: datetime) -> bool:
        """Whether the local time occurs at all (not in a gap)."""
        ...

    def to_wall(self, instant: datetime) -> datetime:
        """The naive local time of an aware instant."""
        ...


class IanaClock:
    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone

    def to_utc(self, wall: datetime) -> datetime:
        # fold=0 is the first of a repeated time and, in a gap, the offset
        # before the gap (PEP 495): what RFC 5545 §3.3.5 says.
        return wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)

    def exists(self, wall: datetime) -> bool:
        return self.to_wall(self.to_utc(wall)) == wall

    def to_wall(self, instant: datetime) -> datetime:
        return instant.astimezone(self.zone).replace(tzinfo=None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IanaClock) and other.zone == self.zone

    def __hash__(self) -> int:
        return hash(self.zone)


UTC_CLOCK = IanaClock(ZoneInfo("UTC"))


class ObservedClock:
    """The rules of one VTIMEZONE: offsets between transitions."""

    def __init__(self, initial: timedelta, transitions: list[tuple[datetime, timedelta]]) -> None:
        self._initial = initial
        self._instants = [instant for instant, _ in transitions]
        self._offsets = [offset for _, offset in transitions]
        self._candidates = sorted({initial, *self._offsets}, reverse=True)

    def _offset_at(self, instant: datetime) -> timedelta:
        index = bisect.bisect_right(self._instants, instant)
        return self._initial if index == 0 else self._offsets[index - 1]

    def _valid(self, wall: datetime) -> list[timedelta]:
        naive_utc = [wall - offset for offset in self._candidates]
        return [
            offset
            for offset, instant in zip(self._candidates, naive_utc, strict=True)
            if self._offset_at(instant.replace(tzinfo=UTC)) == offset
        ]

    def to_utc(self, wall: datetime) -> datetime:
        valid = self._valid(wall)
        if valid:
            return (wall - valid[0]).replace(tzinfo=UTC)  # largest offset: the first
        # In a gap: the offset before it, i.e. in effect just before the
        # transition that the wall time, read with the earlier offset, passes.
        for offset in sorted(self._candidates):
            instant = (wall - offset).replace(tzinfo=UTC)
            index = bisect.bisect_right(self._instants, instant)
            before = self._initial if index < 2 else self._offsets[index - 2]
            if index and before == offset:
                return instant
        return (wall - self._initial).replace(tzinfo=UTC)

    def exists(self, wall: datetime) -> bool:
        return bool(self._valid(wall))

    def to_wall(self, instant: datetime) -> datetime:
        return instant.astimezone(UTC).replace(tzinfo=None) + self._offset_at(instant)


@lru_cache(maxsize=512)
def iana_zone(name: str) -> ZoneInfo | None:
    if not name or name.startswith("/") or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # invalid key, unknown zone, unreadable tzdata
        return None


def globally_unique_tail(tzid: str) -> ZoneInfo | None:
    """``/vendor/version/Area/City`` → tzdata's ``Area/City``."""
    if not tzid.startswith("/"):
        return None
    segments = [s for s in tzid.split("/") if s]
    for first in range(1, len(segments)):
        zone = iana_zone("/".join(segments[first:]))
        if zone is not None:
            return zone
    return None


# Built rules by the VTIMEZONE's content (never by its TZID alone).
_OBSERVED: dict[tuple[object, ...], ObservedClock] = {}
_OBSERVED_LIMIT = 256


def _clock_of(vtimezone: Component) -> ObservedClock:
    key = vtimezone.fingerprint()
    clock = _OBSERVED.get(key)
    if clock is None:
        clock = build_observed_clock(vtimezone)
        if len(_OBSERVED) >= _OBSERVED_LIMIT:
            _OBSERVED.clear()
        _OBSERVED[key] = clock
    return clock


def build_observed_clock(vtimezone: Component) -> ObservedClock:
    """Raise :class:`TimingError` when an observance cannot be read."""
    onsets: list[tuple[datetime, timedelta, timedelta]] = []  # (utc, from, to)
    for observance in vtimezone.children:
        if observance.name not in ("STANDARD", "DAYLIGHT"):
            continue
        start_prop, from_prop, to_prop = (
            observance.first(name) for name in ("DTSTART", "TZOFFSETFROM", "TZOFFSETTO")
        )
        if start_prop is None or from_prop is None or to_prop is None:
            raise TimingError(f"observance of {vtimezone.name} lacks DTSTART or offsets")
        start = read_time(start_prop.value).wall  # local time in TZOFFSETFROM
        offset_from, offset_to = read_offset(from_prop.value), read_offset(to_prop.value)
        walls = {start}
        for prop in observance.all("RRULE"):
            rule = read_rule(prop.value)
            for count, wall in enumerate(rule.walls(start), start=1):
                if wall.year > _LAST_YEAR or (rule.count is not None and count > rule.count):
                    break
                if rule.until is not None:
                    until = rule.until.wall if not rule.until.utc else rule.until.wall + offset_from
                    if wall > until:
                        break
                walls.add(wall)
        for prop in observance.all("RDATE"):
            walls.update(read_time(part).wall for part in prop.value.split(",") if part.strip())
        onsets.extend(
            ((w - offset_from).replace(tzinfo=UTC), offset_from, offset_to) for w in walls
        )
    if not onsets:
        raise TimingError("VTIMEZONE without observances")
    onsets.sort(key=lambda onset: onset[0])
    return ObservedClock(onsets[0][1], [(instant, to) for instant, _, to in onsets])


class ZoneTable:
    """The clocks one object's TZIDs name; ``floating`` is the calendar's."""

    def __init__(self, vtimezones: Mapping[str, Component], floating: WallClock) -> None:
        self._vtimezones = vtimezones
        self.floating = floating

    def clock(self, tzid: str | None) -> WallClock:
        if not tzid:
            return self.floating
        zone = iana_zone(tzid)
        if zone is not None:
            return IanaClock(zone)
        own = self._vtimezones.get(tzid)
        problem: TimingError | None = None
        if own is not None:
            try:
                return _clock_of(own)
            except TimingError as exc:
                problem = exc
        tail = globally_unique_tail(tzid)
        if tail is not None:
            return IanaClock(tail)
        if problem is not None:
            raise TimingError(f"VTIMEZONE {tzid!r} cannot be read: {problem}") from problem
        raise TimingError(f"unknown zone {tzid!r}")
