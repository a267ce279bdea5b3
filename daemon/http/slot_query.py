"""The ``start``, ``end`` and ``timezone`` query parameters of a slot query.

Shared by every route that answers with a slots document (the event type's
and, later, a booking link's).  The rules are those of ``calpool slots``:
``timezone`` defaults to the owner's zone; a time is ISO 8601, a date (the
start of that day) or a date-time, and one without an offset is read in
``timezone``; ``start`` defaults to now and ``end`` to start + 7 days (or
the horizon, when that is shorter, since no slot lies past it).  An unknown
zone, a malformed time, an ``end`` not after ``start`` or a range longer
than the horizon is a ``/problems/validation`` naming each parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from daemon.config.durations import format_duration
from daemon.http.problems import invalid
from engine.core.model import EventType, Interval
from engine.core.zones import Boundary, UnknownZoneError, from_us, local_day, wall_us, zone_info

DEFAULT_SPAN = timedelta(days=7)
# Far enough apart for any real query, near enough that adding a horizon
# or an offset can never leave the range ``datetime`` holds.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
TIME_EXAMPLES = "2027-03-29, 2027-03-29T09:30 or 2027-03-29T09:30:00+02:00"


@dataclass(frozen=True, slots=True)
class SlotRange:
    zone: str
    window: Interval


def slot_range(
    event_type: EventType,
    owner_zone: str,
    *,
    start: str | None,
    end: str | None,
    timezone: str | None,
    now: datetime,
) -> SlotRange:
    """The zone to answer in and the window of slot starts; raises a
    validation ``Problem`` listing every bad parameter."""
    errors: list[dict[str, str]] = []
    zone = owner_zone if timezone is None else timezone
    try:
        zone_info(zone)
    except UnknownZoneError:
        errors.append(_error("timezone", f"{zone!r} is not an IANA time zone like "
                                         "'Europe/Berlin'"))
        raise invalid(errors) from None
    begin = _instant("start", start, zone, errors) if start is not None else now
    finish = _instant("end", end, zone, errors) if end is not None else None
    if errors or begin is None:
        raise invalid(errors)
    if finish is None:
        finish = begin + min(DEFAULT_SPAN, event_type.horizon)
    if finish <= begin:
        errors.append(_error("end", "must be later than start"))
    elif finish - begin > event_type.horizon:
        errors.append(_error(
            "end", f"the range from start to end is longer than the event type's horizon "
                   f"({format_duration(event_type.horizon)})"))
    if errors:
        raise invalid(errors)
    return SlotRange(zone, Interval(begin, finish))


def parse_time(text: str, zone: str) -> datetime:
    """The instant ``text`` names, reading a local time in ``zone`` as the
    engine does (a time in a spring-forward gap is the transition, one in a
    fall-back fold its first occurrence).  Raises ``ValueError``."""
    text = text.strip()
    if "T" in text and " " in text:
        # An unencoded '+' of an offset arrives as a space in a query string.
        text = text.replace(" ", "+")
    value: date | datetime
    value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value
        day = local_day(zone, value.date())
        return from_us(day.boundary(wall_us(value.time()), Boundary.FIRST))
    return from_us(local_day(zone, value).start)


def _instant(name: str, text: str, zone: str, errors: list[dict[str, str]]) -> datetime | None:
    try:
        value = parse_time(text, zone)
        in_range = EARLIEST <= value <= LATEST
    except (ValueError, OverflowError):
        errors.append(_error(name, f"{text!r} is not an ISO 8601 date or date-time like "
                                   f"{TIME_EXAMPLES}"))
        return None
    if not in_range:
        errors.append(_error(name, "must lie between the years 1900 and 9000"))
        return None
    return value


def _error(name: str, detail: str) -> dict[str, str]:
    return {"in": "query", "name": name, "detail": detail}
