"""The contract's events as iCalendar text, for the CalDAV driver.

One :class:`~tests.contract.calendar_data.EventSpec` becomes one VCALENDAR:
the event (with RRULE and EXDATE for a series) and one RECURRENCE-ID
component per override.  Wall-clock times carry ``TZID`` (bare IANA name,
or defined by a VTIMEZONE with ``zone_definition``), floating ones none,
instants end in ``Z``, dates are ``VALUE=DATE``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tests.contract.calendar_data import EventSpec, Override, When

MALFORMED_ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calpool tests//EN\r\n"
    "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20270101T000000Z\r\n"
    # Radicale, Xandikos and Cyrus store a TZID that names no zone; nobody can
    # know when it is.
    "DTSTART;TZID=Nowhere/Atlantis:20270301T100000\r\n"
    "DTEND;TZID=Nowhere/Atlantis:20270301T110000\r\n"
    "SUMMARY:unknowable\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)

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
_DEFINED_ZONES = {"Europe/Berlin": BERLIN_VTIMEZONE}


def _property(name: str, value: When, zone: str | None) -> str:
    if not isinstance(value, datetime):
        return f"{name};VALUE=DATE:{value:%Y%m%d}"
    if value.tzinfo is not None:
        return f"{name}:{value.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    if zone is None:
        return f"{name}:{value:%Y%m%dT%H%M%S}"
    return f"{name};TZID={zone}:{value:%Y%m%dT%H%M%S}"


def _status_lines(*, transparent: bool, cancelled: bool) -> list[str]:
    return (["TRANSP:TRANSPARENT"] if transparent else []) + (
        ["STATUS:CANCELLED"] if cancelled else []
    )


def _vevent(
    spec: EventSpec,
    start: When,
    end: When,
    *,
    transparent: bool,
    cancelled: bool,
    recurrence_id: When | None = None,
    rules: list[str] | None = None,
) -> str:
    lines = ["BEGIN:VEVENT", f"UID:{spec.uid}", "DTSTAMP:20270101T000000Z"]
    if recurrence_id is not None:
        lines.append(_property("RECURRENCE-ID", recurrence_id, spec.zone))
    lines += [
        _property("DTSTART", start, spec.zone),
        _property("DTEND", end, spec.zone),
        f"SUMMARY:{spec.title}",
        *(rules or []),
        *_status_lines(transparent=transparent, cancelled=cancelled),
        "END:VEVENT",
    ]
    return "\r\n".join(lines)


def _override(spec: EventSpec, override: Override) -> str:
    return _vevent(
        spec,
        override.start,
        override.end,
        transparent=override.transparent,
        cancelled=override.cancelled,
        recurrence_id=override.original_start,
    )


def render(spec: EventSpec) -> str:
    """The VCALENDAR text of ``spec``."""
    rules: list[str] = []
    overrides: tuple[Override, ...] = ()
    if spec.recurrence is not None:
        rules.append(f"RRULE:{spec.recurrence.rule}")
        rules += [_property("EXDATE", x, spec.zone) for x in spec.recurrence.excluded]
        overrides = spec.recurrence.overrides
    master = _vevent(
        spec,
        spec.start,
        spec.end,
        transparent=spec.transparent,
        cancelled=spec.cancelled,
        rules=rules,
    )
    components = [master, *(_override(spec, o) for o in overrides)]
    if spec.zone_definition and spec.zone is not None:
        components.insert(0, _DEFINED_ZONES[spec.zone])
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calpool tests//EN"
    return f"{head}\r\n" + "\r\n".join(components) + "\r\nEND:VCALENDAR\r\n"
