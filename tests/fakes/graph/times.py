"""Graph's ``dateTimeTimeZone`` values: parse them into aware instants and write them back.

Graph writes ``{"dateTime": "2026-12-03T09:00:00.0000000", "timeZone": "UTC"}``: a
wall-clock time without offset plus a zone name, which may be an IANA name or a
Windows one ("W. Europe Standard Time"). Windows names are mapped through CLDR's
windowsZones table as shipped by ``icalendar`` (generated from the Unicode
Consortium's data, not typed by hand).
https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

_FRACTION = re.compile(r"\.(\d+)")


class UnknownTimeZone(ValueError):
    """A ``timeZone`` that is neither an IANA nor a Windows zone name."""


def zone(name: str) -> tzinfo:
    """The zone of a Graph ``timeZone`` string (IANA or Windows name)."""
    if name.upper() in {"UTC", "Z", "ETC/UTC", "COORDINATED UNIVERSAL TIME"}:
        return UTC
    olson = WINDOWS_TO_OLSON.get(name, name)
    try:
        return ZoneInfo(olson)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZone(name) from exc


def parse_wall_clock(text: str) -> datetime:
    """A naive ``datetime`` from Graph's wall-clock text (fractions of up to 7 digits)."""
    text = text.strip().removesuffix("Z")
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text)
    return datetime.fromisoformat(text).replace(tzinfo=None)


def parse_instant(value: dict[str, str], *, default_zone: str = "UTC") -> datetime:
    """The aware instant of a ``dateTimeTimeZone`` object."""
    wall = parse_wall_clock(value["dateTime"])
    return wall.replace(tzinfo=zone(value.get("timeZone") or default_zone))


def parse_query_instant(text: str) -> datetime:
    """A calendarView's ``startDateTime``/``endDateTime``: ISO 8601, UTC without an offset."""
    text = text.strip().replace(" ", "+")  # a '+' that arrived unencoded in a query string
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_instant(moment: datetime, zone_name: str) -> dict[str, str]:
    """A ``dateTimeTimeZone`` for ``moment`` shown in ``zone_name`` (seven fraction digits)."""
    local = moment.astimezone(zone(zone_name))
    wall = local.replace(tzinfo=None).isoformat(timespec="microseconds")
    return {"dateTime": wall + "0", "timeZone": zone_name}


def format_offset(moment: datetime) -> str:
    """A Graph ``DateTimeOffset`` in UTC: ``2026-12-03T09:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
