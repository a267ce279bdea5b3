"""Expanding Graph's ``patternedRecurrence`` into occurrences, with dateutil's rrule.

A series master carries ``recurrence: {pattern, range}``; a calendarView answers
the occurrences (and exceptions) that fall in its window, never the master.
Occurrences repeat the master's wall-clock start in the series' zone, so the
expansion runs on naive local times and attaches the zone afterwards (a daily
09:00 stays 09:00 across a DST change).
https://learn.microsoft.com/en-us/graph/api/resources/patternedrecurrence
https://learn.microsoft.com/en-us/graph/api/resources/recurrencepattern
https://learn.microsoft.com/en-us/graph/api/resources/recurrencerange
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, tzinfo
from typing import Any, Literal

from dateutil import rrule

_WEEKDAYS = {
    "monday": rrule.MO,
    "tuesday": rrule.TU,
    "wednesday": rrule.WE,
    "thursday": rrule.TH,
    "friday": rrule.FR,
    "saturday": rrule.SA,
    "sunday": rrule.SU,
}
_INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_FREQUENCY: dict[str, Literal[0, 1, 2, 3, 4, 5, 6]] = {
    "daily": rrule.DAILY,
    "weekly": rrule.WEEKLY,
    "absoluteMonthly": rrule.MONTHLY,
    "relativeMonthly": rrule.MONTHLY,
    "absoluteYearly": rrule.YEARLY,
    "relativeYearly": rrule.YEARLY,
}


class BadRecurrence(ValueError):
    """A recurrence Graph would refuse with 400 (unknown pattern type, missing days, …)."""


def _rule(recurrence: dict[str, Any], first_start: datetime) -> rrule.rrule:
    pattern = recurrence.get("pattern") or {}
    span = recurrence.get("range") or {}
    kind = pattern.get("type")
    if kind not in _FREQUENCY:
        raise BadRecurrence(f"pattern type {kind!r}")
    options: dict[str, Any] = {"interval": int(pattern.get("interval") or 1)}
    days = [_WEEKDAYS[d.lower()] for d in pattern.get("daysOfWeek") or []]
    if kind == "weekly":
        if not days:
            raise BadRecurrence("a weekly pattern needs daysOfWeek")
        options["byweekday"] = days
        options["wkst"] = _WEEKDAYS[(pattern.get("firstDayOfWeek") or "sunday").lower()]
    elif kind in {"absoluteMonthly", "absoluteYearly"}:
        options["bymonthday"] = int(pattern["dayOfMonth"])
    elif kind in {"relativeMonthly", "relativeYearly"}:
        if not days:
            raise BadRecurrence("a relative pattern needs daysOfWeek")
        nth = _INDEX[(pattern.get("index") or "first")]
        options["byweekday"] = [day(nth) for day in days]
    if kind in {"absoluteYearly", "relativeYearly"}:
        options["bymonth"] = int(pattern["month"])
    start_day = (
        date.fromisoformat(span["startDate"]) if span.get("startDate") else first_start.date()
    )
    dtstart = datetime.combine(start_day, first_start.time())
    range_type = span.get("type") or "noEnd"
    if range_type == "endDate":
        options["until"] = datetime.combine(date.fromisoformat(span["endDate"]), time.max)
    elif range_type == "numbered":
        options["count"] = int(span["numberOfOccurrences"])
    elif range_type != "noEnd":
        raise BadRecurrence(f"range type {range_type!r}")
    return rrule.rrule(_FREQUENCY[kind], dtstart=dtstart, **options)


def validate(recurrence: dict[str, Any], first_start: datetime) -> None:
    """Raise ``BadRecurrence`` for a recurrence that cannot be expanded."""
    try:
        _rule(recurrence, first_start.replace(tzinfo=None))
    except (KeyError, ValueError, TypeError) as exc:
        raise BadRecurrence(str(exc)) from exc


def occurrence_starts(
    recurrence: dict[str, Any],
    first_start: datetime,
    zone: tzinfo,
    *,
    until: datetime,
) -> Iterator[datetime]:
    """Aware starts of the series' occurrences, in order, up to ``until`` (exclusive).

    ``first_start`` is the master's start as a wall-clock time in ``zone``.
    """
    rule = _rule(recurrence, first_start.replace(tzinfo=None))
    for wall in rule:
        start = wall.replace(tzinfo=zone)
        if start >= until:
            return
        yield start
