"""Local wall-clock time ↔ UTC instants, day by day, in an IANA zone.

Inside the core an instant is an ``int``: microseconds since the Unix epoch
(UTC).  Microseconds keep every ``datetime`` exact, so no rounding question
ever arises, and int64 covers ±292,000 years.

A wall-clock time of one local date may name no instant (it falls into a
spring-forward gap), one instant, or two (it falls into a fall-back fold).
The choice made here, on purpose and used everywhere in the core:

- **gap** — a nonexistent wall time maps to the transition instant, the
  moment the wall clock first shows a time at or past it (02:30 in Berlin on
  the spring-forward day maps to 03:00 CEST);
- **fold, start of a range** — the first occurrence (so nothing that reads
  as "after the start" is lost);
- **fold, end of a range** — the last occurrence, so a range is the
  smallest span holding every instant whose wall time lies inside it; a
  range that contains the whole fold is one shift longer (09:00–17:00 across
  a fall-back is 9 real hours, across a spring-forward 7);
- **grid points** — every instant whose wall time is the grid time: none in
  a gap, both in a fold.

A local day is assumed to hold at most one offset change, true of every
zone in the tz database since it was kept in whole seconds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from engine.core.model import as_utc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
SECOND_US = 1_000_000
DAY_US = 86_400 * SECOND_US
_ORDINAL_EPOCH = date(1970, 1, 1).toordinal()


# Names the zone database holds that are not IANA zones: the host's own
# setting, the POSIX-rules template, the "no zone configured" placeholder
# and the copies with leap seconds or under POSIX names.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
_NOT_ZONE_PREFIXES = ("right/", "posix/")
# No IANA name comes near this ("America/Argentina/ComodRivadavia" is 32).
ZONE_NAME_MAX = 64


class UnknownZoneError(ValueError):
    """The name is not an IANA zone known to this system."""

    def __init__(self, zone: str) -> None:
        super().__init__(f"unknown time zone {shorten(zone)!r}")
        self.zone = zone


@lru_cache(maxsize=1)
def iana_zones() -> frozenset[str]:
    """The IANA zone names of this system's zone database (or the tzdata
    package): :func:`zoneinfo.available_timezones` without the entries that
    are no zone of their own (``localtime``, ``posixrules``, ``Factory``,
    ``right/…``, ``posix/…``)."""
    return frozenset(
        name for name in available_timezones()
        if name not in _NOT_ZONES and not name.startswith(_NOT_ZONE_PREFIXES)
    )


def zone_info(zone: str) -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA name; :class:`UnknownZoneError` if none.
    The name is looked up in :func:`iana_zones` before any file is opened,
    so a directory of the database, a path or an overlong name is refused
    the same way as a misspelt zone."""
    if len(zone) > ZONE_NAME_MAX or zone not in iana_zones():
        raise UnknownZoneError(zone)
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise UnknownZoneError(zone) from exc


def shorten(text: str, limit: int = ZONE_NAME_MAX) -> str:
    """``text`` as a message may quote it: cut after ``limit`` characters,
    saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def to_us(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact); a naive
    one raises :class:`~engine.core.model.NaiveDatetimeError`."""
    return (as_utc(value, what="instant") - EPOCH) // MICROSECOND


def from_us(value: int) -> datetime:
    """The UTC datetime of an epoch-microsecond instant (exact)."""
    return EPOCH + timedelta(microseconds=value)


def duration_us(value: timedelta) -> int:
    return value // MICROSECOND


def wall_us(value: time) -> int:
    """Microseconds since local midnight of a wall-clock time."""
    return ((value.hour * 60 + value.minute) * 60 + value.second) * SECOND_US + value.microsecond


class Boundary(enum.Enum):
    """Which instant a wall time names when it names two (a fold)."""

    FIRST = "first"
    LAST = "last"


@dataclass(frozen=True, slots=True)
class LocalDay:
    """One local date in one zone, as a map from wall time to instants.

    ``base`` is the date's midnight read as if it were UTC (epoch µs);
    ``offset_before``/``offset_after`` the UTC offsets (µs) in force before
    and after ``transition``, the instant the offset changes during the day
    (``None`` on a day without a change, where both offsets are equal).
    """

    day: date
    base: int
    offset_before: int
    offset_after: int
    transition: int | None

    def instants(self, wall: int) -> tuple[int, ...]:
        """Every instant whose wall time is ``wall`` µs after midnight:
        none in a gap, one normally, two (in order) in a fold."""
        first = self.base + wall - self.offset_before
        if self.transition is None:
            return (first,)
        # Read with the old offset the wall time must come before the change,
        # read with the new one at or after it; a fold satisfies both.
        second = self.base + wall - self.offset_after
        found: list[int] = []
        if first < self.transition:
            found.append(first)
        if second >= self.transition:
            found.append(second)
        return tuple(found)

    def boundary(self, wall: int, which: Boundary) -> int:
        """The instant a range boundary at ``wall`` stands for: the
        transition instant in a gap, the first or last occurrence in a fold.
        ``wall`` may be a full day (the end of the day)."""
        found = self.instants(wall)
        if not found:
            assert self.transition is not None
            return self.transition
        return found[0] if which is Boundary.FIRST else found[-1]

    @property
    def start(self) -> int:
        """The first instant of this local date."""
        return self.boundary(0, Boundary.FIRST)

    @property
    def end(self) -> int:
        """The first instant of the next local date (exclusive end)."""
        return self.boundary(DAY_US, Boundary.LAST)

    @property
    def has_transition(self) -> bool:
        return self.transition is not None


def _offset_at(zone: ZoneInfo, instant_us: int) -> int:
    offset = from_us(instant_us).astimezone(zone).utcoffset()
    assert offset is not None
    return duration_us(offset)


def _wall_offset(zone: ZoneInfo, day: date, fold: int) -> int:
    naive = datetime.combine(day, time(0)).replace(tzinfo=zone, fold=fold)
    offset = naive.utcoffset()
    assert offset is not None
    return duration_us(offset)


@lru_cache(maxsize=65_536)
def local_day(zone: str, day: date) -> LocalDay:
    """The :class:`LocalDay` of ``day`` in ``zone`` (cached: pure)."""
    info = zone_info(zone)
    base = (day.toordinal() - _ORDINAL_EPOCH) * DAY_US
    # fold=0 gives the offset before a transition at that wall time, fold=1
    # the one after: a change exactly at either midnight still shows up.
    before = _wall_offset(info, day, fold=0)
    after = _wall_offset(info, day + timedelta(days=1), fold=1)
    if before == after:
        return LocalDay(day, base, before, after, None)
    # Binary search for the first instant with the new offset, within
    # bounds that hold the whole local day under either offset.
    low = base - max(before, after) - DAY_US // 24
    high = base + DAY_US - min(before, after) + DAY_US // 24
    if _offset_at(info, low) != before or _offset_at(info, high) != after:
        # Two changes in one day; the tz database has none in the zones
        # kept today.  Fall back to treating the day as unshifted.
        return LocalDay(day, base, before, before, None)
    step = SECOND_US
    low //= step
    high //= step
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_at(info, middle * step) == before:
            low = middle
        else:
            high = middle
    return LocalDay(day, base, before, after, high * step)


def local_date(zone: str, instant_us: int) -> date:
    """The local date of an instant in ``zone``."""
    return from_us(instant_us).astimezone(zone_info(zone)).date()


def local_days(zone: str, start_us: int, end_us: int) -> list[LocalDay]:
    """The local days of ``zone`` that overlap the instants ``[start, end)``,
    in order (at least the day holding ``start``)."""
    first = local_date(zone, start_us)
    days = [local_day(zone, first)]
    while days[-1].end < end_us:
        days.append(local_day(zone, days[-1].day + timedelta(days=1)))
    return days
