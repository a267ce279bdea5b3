"""Values that decide busy time, read leniently where the meaning is plain.

DATE and DATE-TIME (RFC 5545 §3.3.4, §3.3.5), DURATION (§3.3.6), PERIOD
(§3.3.9), UTC-OFFSET (§3.3.14) and RECUR (§3.3.10).  Blanks around a value,
lower-case letters and an empty ``TZID=`` are read as what they plainly
mean; anything else that does not fit raises :class:`TimingError`.
Time zones are not resolved here (:mod:`connectors.caldav.zones` does).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dateutil.rrule import rrulestr

from connectors.caldav.content import Property


class TimingError(ValueError):
    """A value that decides busy time cannot be read."""


_DATE_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z)?)?")
_DURATION = re.compile(r"([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")
_OFFSET = re.compile(r"([+-])(\d{2})(\d{2})(\d{2})?")


@dataclass(frozen=True, slots=True)
class TimeValue:
    """A DATE or DATE-TIME as written: ``wall`` is naive (midnight for a
    date); ``utc`` when it ended in ``Z``; ``tzid`` as its parameter said
    (``None`` when absent or empty: floating)."""

    wall: datetime
    is_date: bool
    utc: bool = False
    tzid: str | None = None


@dataclass(frozen=True, slots=True)
class Duration:
    """``days`` are nominal (added on the wall clock, RFC 5545 §3.3.6),
    ``exact`` is added to the instant."""

    days: int = 0
    exact: timedelta = timedelta(0)


def read_time(text: str, *, tzid: str | None = None) -> TimeValue:
    match = _DATE_TIME.fullmatch(text.strip().upper())
    if match is None:
        raise TimingError(f"not a date or date-time: {text!r}")
    year, month, day, hour, minute, second, zulu = match.groups()
    try:
        wall = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            min(int(second or 0), 59),
        )  # a leap second ends its minute
    except ValueError as exc:
        raise TimingError(f"not a date or date-time: {text!r}") from exc
    is_date = hour is None
    return TimeValue(wall, is_date, utc=bool(zulu), tzid=None if zulu or is_date else tzid)


def tzid_of(prop: Property) -> str | None:
    tzid = (prop.param("TZID") or "").strip()
    return tzid or None  # an empty TZID= names no zone: the value is floating


def read_single(prop: Property) -> TimeValue:
    """The one DATE or DATE-TIME of DTSTART, DTEND, RECURRENCE-ID."""
    return read_time(prop.value, tzid=tzid_of(prop))


def read_list(prop: Property) -> list[TimeValue | tuple[TimeValue, TimeValue | Duration]]:
    """The comma-separated values of RDATE or EXDATE; a PERIOD is a pair of
    its start and its end or duration."""
    values: list[TimeValue | tuple[TimeValue, TimeValue | Duration]] = []
    tzid = tzid_of(prop)
    for part in prop.value.split(","):
        if not part.strip():
            continue
        if "/" in part:
            first, second = part.split("/", 1)
            start = read_time(first, tzid=tzid)
            second = second.strip().upper()
            other = read_duration(second) if "P" in second else read_time(second, tzid=tzid)
            values.append((start, other))
        else:
            values.append(read_time(part, tzid=tzid))
    return values


def read_duration(text: str) -> Duration:
    cleaned = text.strip().upper()
    match = _DURATION.fullmatch(cleaned)
    if match is None or cleaned.endswith(("P", "T")):
        raise TimingError(f"not a duration: {text!r}")
    sign, weeks, days, hours, minutes, seconds = match.groups()
    factor = -1 if sign == "-" else 1
    exact = timedelta(hours=int(hours or 0), minutes=int(minutes or 0), seconds=int(seconds or 0))
    return Duration(days=factor * (7 * int(weeks or 0) + int(days or 0)), exact=factor * exact)


def read_offset(text: str) -> timedelta:
    match = _OFFSET.fullmatch(text.strip())
    if match is None:
        raise TimingError(f"not a UTC offset: {text!r}")
    sign, hours, minutes, seconds = match.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
        raise TimingError(f"impossible UTC offset: {text!r}")
    offset = timedelta(hours=int(hours), minutes=int(minutes), seconds=int(seconds or 0))
    return -offset if sign == "-" else offset


# dateutil knows these; X- parts and RFC 7529's defaults change nothing.
_RULE_PARTS = {
    "FREQ", "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY",
    "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rule:
    """A RECUR value: the pattern, and COUNT and UNTIL kept apart because
    calpool applies them itself (instances in a DST gap are not counted,
    RFC 5545 §3.3.10; UNTIL compares instants)."""

    pattern: str
    count: int | None
    until: TimeValue | None

    def walls(self, start: datetime) -> Iterator[datetime]:
        """Wall times of the pattern from ``start`` on, without end."""
        try:
            rule = rrulestr("RRULE:" + self.pattern, dtstart=start)
        except (ValueError, TypeError) as exc:
            raise TimingError(f"not a recurrence rule: {self.pattern!r}: {exc}") from exc
        yield from rule


def read_rule(text: str) -> Rule:
    parts: list[str] = []
    count: int | None = None
    until: TimeValue | None = None
    for piece in text.strip().upper().split(";"):
        if not piece.strip():
            continue
        key, sep, value = piece.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise TimingError(f"not a recurrence rule: {text!r}")
        if key == "COUNT":
            if not value.isdigit():
                raise TimingError(f"COUNT is not a number: {text!r}")
            count = int(value)
        elif key == "UNTIL":
            until = read_time(value)
        elif (key == "RSCALE" and value != "GREGORIAN") or (key == "SKIP" and value != "OMIT"):
            raise TimingError(f"calendar scale or skip calpool does not read: {text!r}")
        elif key == "INTERVAL" and not (value.isdigit() and int(value) > 0):
            # RFC 5545 §3.3.10: a positive integer; dateutil loops for ever on 0
            raise TimingError(f"INTERVAL is not a positive number: {text!r}")
        elif key in _RULE_PARTS:
            parts.append(f"{key}={value}")
    if not any(p.startswith("FREQ=") for p in parts):
        raise TimingError(f"recurrence rule without FREQ: {text!r}")
    rule = Rule(";".join(parts), count, until)
    try:  # refuse a pattern dateutil cannot read now, not at expansion
        rrulestr("RRULE:" + rule.pattern, dtstart=datetime(2000, 1, 1))
    except (ValueError, TypeError) as exc:
        raise TimingError(f"not a recurrence rule: {text!r}: {exc}") from exc
    return rule


def as_date(value: TimeValue) -> date:
    return value.wall.date()
