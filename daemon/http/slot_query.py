"""The ``start``, ``end``, ``timezone`` and ``rooms`` query parameters of a slot query.

Shared by every route that answers with a slots document (the event type's
and, later, a booking link's).  The rules are those of ``calpool slots``:
``timezone`` defaults to the owner's zone; a time is ISO 8601, a date (the
start of that day) or a date-time, and one without an offset is read in
``timezone``; ``start`` defaults to now and ``end`` to start + 7 days (or
the horizon, when that is shorter, since no slot lies past it).  An unknown
zone, a malformed time or one out of range (``daemon.inputs``), an ``end``
not after ``start`` or a range longer than the horizon is a
``/problems/validation`` naming each parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Query

from daemon.config.durations import format_duration
from daemon.documents import RoomList
from daemon.http.problems import invalid
from daemon.inputs import TIME_EXAMPLES, InputError, parse_instant, zone_name
from engine.core.model import EventType, Interval

__all__ = ["TIME_EXAMPLES", "RoomsQuery", "SlotRange", "parse_time", "slot_range"]

RoomsQuery = Annotated[RoomList, Query(
    description="how each slot lists a pool's free rooms: `all` of them in priority order "
                "(default), or only the `first`; the document's shape is the same")]

DEFAULT_SPAN = timedelta(days=7)


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
        zone_name(zone)
    except InputError as exc:
        errors.append(_error("timezone", str(exc)))
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
    """The instant ``text`` names, a local time read in ``zone``
    (:func:`daemon.inputs.parse_instant`); raises ``InputError``, a
    ``ValueError`` whose message is fit for the client."""
    return parse_instant(text, zone)


def _instant(name: str, text: str, zone: str, errors: list[dict[str, str]]) -> datetime | None:
    try:
        return parse_instant(text, zone)
    except InputError as exc:
        errors.append(_error(name, str(exc)))
        return None


def _error(name: str, detail: str) -> dict[str, str]:
    return {"in": "query", "name": name, "detail": detail}
