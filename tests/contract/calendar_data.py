"""What the contract cases store and compare: iCalendar text, the window,
small builders and the comparison form of a change set."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from engine.core.model import Attendee, ChangeSet, Interval
from engine.ports import EventDraft
from tests.contract.harness import Harness

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


BERLIN_VTIMEZONE = "\r\n".join(
    [
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Berlin",
        "BEGIN:DAYLIGHT",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0200",
        "TZNAME:CEST",
        "DTSTART:19700329T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "END:DAYLIGHT",
        "BEGIN:STANDARD",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "TZNAME:CET",
        "DTSTART:19701025T030000",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
        "END:STANDARD",
        "END:VTIMEZONE",
    ]
)


def vcalendar(*events: str, timezone: bool = False) -> str:
    """A VCALENDAR of ``events``; with ``timezone`` it defines Europe/Berlin
    (RFC 5545 asks for it; calpool also reads the bare IANA name)."""
    body = "\r\n".join([BERLIN_VTIMEZONE, *events] if timezone else events)
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calpool tests//EN"
    return f"{head}\r\n{body}\r\nEND:VCALENDAR\r\n"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


Row = tuple[str, datetime, datetime, bool]


def rows(changes: ChangeSet) -> dict[str, list[Row]]:
    """source → sorted (instance, start, end, busy) of a change set."""
    return {
        source: sorted((e.instance, e.start, e.end, e.busy) for e in instances)
        for source, instances in changes.objects.items()
    }


def single(
    h: Harness, name: str, start: str = "20270301T100000", end: str = "20270301T110000"
) -> str:
    return h.driver.put(name, vcalendar(vevent(name, start, end)))


def daily(
    name: str,
    *extra_events: str,
    count: int = 3,
    extra: tuple[str, ...] = (),
    timezone: bool = False,
) -> str:
    """Daily at 10:00 Berlin from 27 March 2027, across the DST change."""
    rule = f"RRULE:FREQ=DAILY;COUNT={count}"
    master = vevent(name, "20270327T100000", "20270327T110000", extra=(rule, *extra))
    return vcalendar(master, *extra_events, timezone=timezone)


def draft(booking_id: str = "bk-1", *, hour: int = 14, title: str = "Consultation") -> EventDraft:
    return EventDraft(
        booking_id=booking_id,
        title=title,
        start=utc(2027, 3, 10, hour),
        end=utc(2027, 3, 10, hour, 30),
        organizer=Attendee("Alice", "alice@example.org"),
        attendees=(Attendee("Carol Customer", "carol@example.net"),),
        rooms=(Attendee("Spree", ""),),
    )
