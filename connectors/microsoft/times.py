"""Graph's ``dateTimeTimeZone`` values and query instants.

Graph writes ``{"dateTime": "2027-03-01T09:00:00.0000000", "timeZone":
"W. Europe Standard Time"}``: a wall-clock time (up to seven fraction
digits, no offset) and a zone that may be an IANA name or a Windows one.
Windows names go through CLDR's windowsZones table as icalendar ships it
(``icalendar.timezone.windows_to_olson``, generated from the Unicode
Consortium's data), not a table typed here.
https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

_FRACTION = re.compile(r"\.(\d+)")
_UTC_NAMES = frozenset({"UTC", "Z", "ETC/UTC", "ETC/GMT", "GMT", "COORDINATED UNIVERSAL TIME"})


class UnreadableTime(ValueError):
    """A ``dateTimeTimeZone`` calpool cannot read (unknown zone, bad text)."""


def zone(name: str) -> tzinfo:
    """The zone a Graph ``timeZone`` names (IANA or Windows)."""
    if name.strip().upper() in _UTC_NAMES:
        return UTC
    olson = WINDOWS_TO_OLSON.get(name.strip(), name.strip())
    try:
        return ZoneInfo(olson)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnreadableTime(f"unknown time zone {name!r}") from exc


def wall_clock(text: str) -> datetime:
    """The naive wall-clock time of Graph's ``dateTime`` text."""
    cleaned = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text.strip())
    try:
        parsed = datetime.fromisoformat(cleaned.removesuffix("Z"))
    except ValueError as exc:
        raise UnreadableTime(f"unreadable dateTime {text!r}") from exc
    return parsed.replace(tzinfo=None)


def instant(value: object) -> datetime:
    """The UTC instant of a ``dateTimeTimeZone`` object."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise UnreadableTime(f"not a dateTimeTimeZone: {value!r}")
    name = value.get("timeZone") or "UTC"
    return wall_clock(value["dateTime"]).replace(tzinfo=zone(str(name))).astimezone(UTC)


def local_date(value: dict[str, Any], *, event_zone: str | None) -> date:
    """The calendar date an all-day ``start``/``end`` stands for.

    Graph keeps all-day events as midnight to midnight in the event's zone
    (``originalStartTimeZone``); asked for another zone it may answer the
    instant shifted there.  The date is the one at which the value is
    midnight: in the event's zone, else as written."""
    moment = instant(value)
    if event_zone:
        try:
            local = moment.astimezone(zone(event_zone))
        except UnreadableTime:
            local = None
        if local is not None and local.time() == time(0):
            return local.date()
    return wall_clock(str(value["dateTime"])).date()


def graph_value(moment: datetime) -> dict[str, str]:
    """``moment`` as a ``dateTimeTimeZone`` in UTC."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return {"dateTime": utc.isoformat(timespec="seconds"), "timeZone": "UTC"}


def query_instant(moment: datetime) -> str:
    """``moment`` for ``startDateTime``/``endDateTime``: ISO 8601 in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def offset_instant(text: object) -> datetime:
    """A Graph ``DateTimeOffset`` (``originalStart``): an aware UTC instant."""
    if not isinstance(text, str):
        raise UnreadableTime(f"not a DateTimeOffset: {text!r}")
    cleaned = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text.strip())
    try:
        parsed = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UnreadableTime(f"unreadable DateTimeOffset {text!r}") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
