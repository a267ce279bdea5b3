"""Calendar API times: RFC 3339 query values, ``EventDateTime`` objects, recurrence expansion.

An ``EventDateTime`` is ``{"dateTime": RFC 3339, "timeZone"?}`` for a timed event or
``{"date": "yyyy-mm-dd"}`` for an all-day one; ``timeZone`` is required for the
start/end of a recurring timed event (its occurrences repeat the wall-clock time
in that zone) and for a ``dateTime`` without an offset. All-day dates are read
in the calendar's zone. ``timeMin``/``timeMax`` must carry an offset.
https://developers.google.com/calendar/api/v3/reference/events#resource
https://developers.google.com/calendar/api/v3/reference/events/list#parameters

``recurrence`` is a list of RFC 5545 lines (``RRULE``, ``EXRULE``, ``RDATE``,
``EXDATE``); dateutil's ``rrulestr`` expands them. Instances get the id
``{masterId}_{yyyymmddThhmmssZ}`` (``{masterId}_{yyyymmdd}`` all-day) and
``originalStartTime``.
https://developers.google.com/calendar/api/concepts/events-calendars#recurring_events
https://developers.google.com/calendar/api/guides/recurringevents
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule


class BadTime(ValueError):
    """A time value the Calendar API refuses with 400."""


def zone(name: str) -> tzinfo:
    if name.upper() in {"UTC", "ETC/UTC", "Z"}:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadTime(f"Invalid time zone definition: {name}") from exc


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 timestamp with a mandatory offset (``timeMin``, ``timeMax``, ``updatedMin``)."""
    cleaned = text.strip().replace(" ", "+")  # a '+' that arrived unencoded
    try:
        moment = datetime.fromisoformat(cleaned.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadTime(f"Bad Request: {text}") from exc
    if moment.tzinfo is None:
        raise BadTime(f"Bad Request: {text} has no time zone offset")
    return moment


def format_rfc3339(moment: datetime) -> str:
    """UTC with milliseconds and ``Z``, as Google writes ``updated``/``created``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def format_offset(moment: datetime) -> str:
    """``2027-03-01T09:00:00+01:00`` (``Z`` for UTC), as in freeBusy answers."""
    text = moment.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def is_all_day(value: dict[str, Any]) -> bool:
    return "date" in value and value.get("date") is not None


def instant(value: dict[str, Any], calendar_zone: str) -> datetime:
    """The aware instant an ``EventDateTime`` stands for (all-day: midnight, calendar zone)."""
    if not isinstance(value, dict):
        raise BadTime("Missing start or end time.")
    if is_all_day(value):
        try:
            day = date.fromisoformat(str(value["date"]))
        except ValueError as exc:
            raise BadTime(f"Invalid value for date: {value['date']}") from exc
        return datetime.combine(day, time(), tzinfo=zone(calendar_zone))
    text = value.get("dateTime")
    if not text:
        raise BadTime("Missing start or end time.")
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadTime(f"Invalid value for dateTime: {text}") from exc
    if moment.tzinfo is None:
        if not value.get("timeZone"):
            raise BadTime("Missing time zone definition for start time.")
        moment = moment.replace(tzinfo=zone(value["timeZone"]))
    return moment


def span(resource: dict[str, Any], calendar_zone: str) -> tuple[datetime, datetime]:
    """(start, end) of an event; 400 for a missing, mixed or empty range."""
    start_value, end_value = resource.get("start"), resource.get("end")
    if not start_value or not end_value:
        raise BadTime("Missing end time." if start_value else "Missing start time.")
    if is_all_day(start_value) != is_all_day(end_value):
        raise BadTime("Start and end times must either both be date or both be dateTime.")
    start, end = instant(start_value, calendar_zone), instant(end_value, calendar_zone)
    if end < start:
        raise BadTime("The specified time range is empty.")
    return start, end


def instance_suffix(original: datetime, all_day: bool) -> str:
    if all_day:
        return original.strftime("%Y%m%d")
    return original.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def original_start_time(original: datetime, master_start: dict[str, Any]) -> dict[str, Any]:
    """An instance's ``originalStartTime`` (the ``EventDateTime`` its series would give it)."""
    if is_all_day(master_start):
        return {"date": original.date().isoformat()}
    shown: dict[str, Any] = {"dateTime": format_offset(original)}
    if master_start.get("timeZone"):
        shown["timeZone"] = master_start["timeZone"]
    return shown


def shifted(value: dict[str, Any], moment: datetime) -> dict[str, Any]:
    """``value`` (an ``EventDateTime`` of the master) moved to ``moment``."""
    if is_all_day(value):
        return {"date": moment.date().isoformat()}
    shown: dict[str, Any] = {"dateTime": format_offset(moment)}
    if value.get("timeZone"):
        shown["timeZone"] = value["timeZone"]
    return shown


def _series(master: dict[str, Any], calendar_zone: str) -> tuple[rrule.rruleset, bool, tzinfo]:
    start_value = master["start"]
    all_day = is_all_day(start_value)
    if all_day:
        dtstart = datetime.combine(date.fromisoformat(start_value["date"]), time())
        series_zone = zone(calendar_zone)
    else:
        if not start_value.get("timeZone"):
            raise BadTime("Missing time zone definition for start time.")
        series_zone = zone(start_value["timeZone"])
        dtstart = instant(start_value, calendar_zone).astimezone(series_zone)
    lines = [str(line) for line in master.get("recurrence") or []]
    try:
        series = rrule.rrulestr(
            "\n".join(lines), dtstart=dtstart, forceset=True, tzids=lambda name: zone(name)
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise BadTime(f"Invalid recurrence rule: {exc}") from exc
    assert isinstance(series, rrule.rruleset)
    return series, all_day, series_zone


def validate_recurrence(master: dict[str, Any], calendar_zone: str) -> None:
    """Raise ``BadTime`` for a recurrence that cannot be expanded."""
    series, _, _ = _series(master, calendar_zone)
    try:
        next(iter(series), None)
    except (ValueError, TypeError) as exc:
        raise BadTime(f"Invalid recurrence rule: {exc}") from exc


def occurrences(
    master: dict[str, Any], calendar_zone: str, window_start: datetime, window_end: datetime
) -> list[datetime]:
    """Aware original starts of the series' occurrences that overlap the window."""
    start, end = span(master, calendar_zone)
    duration = end - start
    series, all_day, series_zone = _series(master, calendar_zone)
    if all_day:
        after = (window_start - duration).astimezone(series_zone).replace(tzinfo=None)
        before = window_end.astimezone(series_zone).replace(tzinfo=None)
        found = series.between(after - timedelta(seconds=1), before, inc=False)
        starts = [moment.replace(tzinfo=series_zone) for moment in found]
    else:
        starts = list(series.between(window_start - duration, window_end, inc=False))
    return [
        s for s in starts if s < window_end and (s + duration > window_start or s == window_start)
    ]
