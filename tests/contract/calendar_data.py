"""iCalendar text for the contract cases, and the window they use."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from engine.core.model import Interval

ZONE = "Europe/Berlin"
WINDOW = Interval(datetime(2027, 2, 1, tzinfo=UTC), datetime(2027, 5, 1, tzinfo=UTC))

MALFORMED_ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calpool tests//EN\r\n"
    "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20270101T000000Z\r\n"
    # Both servers store a TZID that names no zone; nobody can know when it is.
    "DTSTART;TZID=Nowhere/Atlantis:20270301T100000\r\n"
    "DTEND;TZID=Nowhere/Atlantis:20270301T110000\r\n"
    "SUMMARY:unknowable\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def vevent(
    uid: str,
    start: str,
    end: str,
    *,
    tzid: str | None = ZONE,
    extra: Iterable[str] = (),
    recurrence_id: str | None = None,
) -> str:
    """One VEVENT; ``start``/``end`` as iCalendar local times
    (``20270301T100000``) in ``tzid``, or dates (``20270301``) for all-day
    when ``tzid`` is None and the value has 8 digits."""

    def prop(name: str, value: str) -> str:
        if len(value) == 8:
            return f"{name};VALUE=DATE:{value}"
        if tzid is None or value.endswith("Z"):
            return f"{name}:{value}"
        return f"{name};TZID={tzid}:{value}"

    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20270101T000000Z"]
    if recurrence_id:
        lines.append(prop("RECURRENCE-ID", recurrence_id))
    lines += [prop("DTSTART", start), prop("DTEND", end), f"SUMMARY:{uid}", *extra, "END:VEVENT"]
    return "\r\n".join(lines)


def vcalendar(*events: str) -> str:
    body = "\r\n".join(events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calpool tests//EN\r\n{body}\r\nEND:VCALENDAR\r\n"
