"""Calendar API v3 event resources and calpool's values, both ways
(https://developers.google.com/workspace/calendar/api/v3/reference/events).

Reading: an event (or, under ``singleEvents=true``, one instance of a
series) becomes a :class:`~engine.core.model.RemoteEvent`.  An instance is
reported under its series' id (``recurringEventId``) with ``instance`` its
``originalStartTime`` in UTC, so one series is one source as on every
other provider.  ``transparency: transparent`` and ``status: cancelled``
are not busy; an all-day ``start.date`` is midnight in the calendar's zone.

Writing: a draft becomes the body of ``events.insert`` / ``events.patch``
with calpool's id, UID and the booking id as a private extended property.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from connectors.google.account import BOOKING_PROPERTY
from engine.core.model import AttendeeAnswer, RemoteEvent
from engine.core.uids import booking_uid
from engine.ports import EventDraft, EventState, instance_key

Resource = Mapping[str, Any]

ANSWERS = {
    "needsAction": AttendeeAnswer.NEEDS_ACTION,
    "accepted": AttendeeAnswer.ACCEPTED,
    "tentative": AttendeeAnswer.TENTATIVE,
    "declined": AttendeeAnswer.DECLINED,
}


class UnreadableEvent(ValueError):
    """An event whose timing cannot be read; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def when(value: Resource | None, zone: str) -> datetime:
    """An event time (``{dateTime}`` or ``{date}``) as a UTC instant; a
    date is midnight of that day in ``zone``."""
    if not isinstance(value, Mapping):
        raise UnreadableEvent("no start or end")
    try:
        if value.get("dateTime"):
            moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
            if moment.tzinfo is None:
                # RFC 3339 demands an offset; without one, Google means the
                # named timeZone (or the calendar's).
                moment = moment.replace(tzinfo=ZoneInfo(value.get("timeZone") or zone))
            return moment.astimezone(UTC)
        if value.get("date"):
            day = date.fromisoformat(str(value["date"]))
            return datetime.combine(day, time(0), ZoneInfo(zone)).astimezone(UTC)
    except (ValueError, KeyError) as exc:
        raise UnreadableEvent(f"unreadable time {dict(value)!r}: {exc}") from exc
    raise UnreadableEvent(f"a time with neither dateTime nor date: {dict(value)!r}")


def source_of(event: Resource) -> str:
    """The source an event (or instance) is reported under."""
    return str(event.get("recurringEventId") or event["id"])


def is_instance(event: Resource) -> bool:
    return bool(event.get("recurringEventId"))


def answers_of(event: Resource) -> dict[str, AttendeeAnswer]:
    """Attendees' ``responseStatus`` by lower-case email."""
    found: dict[str, AttendeeAnswer] = {}
    for attendee in event.get("attendees") or ():
        email = attendee.get("email")
        if email:
            found[str(email).lower()] = ANSWERS.get(
                str(attendee.get("responseStatus", "needsAction")), AttendeeAnswer.NEEDS_ACTION)
    return found


_OWN_UID = re.compile(r"calpool-(?P<booking>[A-Za-z0-9._-]{1,100})@calpool")


def booking_of(event: Resource) -> str | None:
    """The booking an event is calpool's write of.

    The private extended property is on the copy calpool wrote; Google
    keeps private properties to that copy, so an invited room's copy (which
    Google writes) carries the shared one instead.  Where neither came
    through, the UID of the owner's copy names the booking when the id is
    tame (:func:`engine.core.uids.booking_name`), as a room's copy keeps
    the organizer's ``iCalUID``."""
    properties = event.get("extendedProperties") or {}
    for scope in ("private", "shared"):
        value = (properties.get(scope) or {}).get(BOOKING_PROPERTY)
        if value:
            return str(value)
    own = _OWN_UID.fullmatch(str(event.get("iCalUID", "")))
    if own is not None and booking_uid(own["booking"]) == event.get("iCalUID"):
        return own["booking"]
    return None


def remote_event(event: Resource, zone: str) -> RemoteEvent:
    """One event or instance as calpool reads it (see the module docstring)."""
    start, end = when(event.get("start"), zone), when(event.get("end"), zone)
    if end < start:
        raise UnreadableEvent(f"ends before it starts ({start} > {end})")
    instance = ""
    if is_instance(event):
        instance = instance_key(when(event.get("originalStartTime"), zone))
    busy = event.get("status") != "cancelled" and event.get("transparency") != "transparent"
    return RemoteEvent(
        source=source_of(event),
        uid=str(event.get("iCalUID", "")),
        instance=instance,
        start=start,
        end=end,
        busy=busy,
        etag=str(event.get("etag", "")),
        booking_id=booking_of(event),
        answers=answers_of(event),
    )


def event_state(event: Resource, zone: str) -> EventState:
    return EventState(
        source=str(event["id"]),
        etag=str(event.get("etag", "")),
        uid=str(event.get("iCalUID", "")),
        start=when(event.get("start"), zone),
        end=when(event.get("end"), zone),
        sequence=int(event.get("sequence", 0)),
        answers=answers_of(event),
    )


def _moment(value: datetime) -> dict[str, str]:
    return {"dateTime": value.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "timeZone": "UTC"}


def event_body(draft: EventDraft, *, event_id: str, ical_uid: str) -> dict[str, Any]:
    """The event resource calpool writes for ``draft``.

    The invited rooms are attendees ``{email, resource: true}`` (Google
    delivers the event into their calendars and they answer); a room
    calpool writes itself is named in the location, as Google cannot list
    an attendee without inviting it."""
    attendees: list[dict[str, Any]] = [
        {"email": person.email, **({"displayName": person.name} if person.name else {})}
        for person in draft.attendees if person.email
    ]
    invited = {party.email.lower() for party in draft.invite if party.email}
    for party in draft.invite:
        if party.email:
            attendees.append({"email": party.email, "resource": True,
                              **({"displayName": party.name} if party.name else {})})
    named = [room.name or room.email for room in draft.rooms
             if not room.email or room.email.lower() not in invited]
    location = ", ".join(part for part in (draft.location, *named) if part)
    body: dict[str, Any] = {
        "id": event_id,
        "iCalUID": ical_uid,
        "summary": draft.title,
        "start": _moment(draft.start),
        "end": _moment(draft.end),
        "status": "confirmed",
        "transparency": "opaque",
        "attendees": attendees,
        "extendedProperties": {"private": {BOOKING_PROPERTY: draft.booking_id},
                               "shared": {BOOKING_PROPERTY: draft.booking_id}},
    }
    if draft.description:
        body["description"] = draft.description
    if location:
        body["location"] = location
    return body


def same_booking(event: Resource, draft: EventDraft, zone: str) -> bool:
    """Whether a stored event is ``draft``'s write (a retry after a crash)."""
    try:
        start, end = when(event.get("start"), zone), when(event.get("end"), zone)
    except UnreadableEvent:
        return False
    return (booking_of(event) == draft.booking_id and (start, end) == (draft.start, draft.end)
            and str(event.get("summary", "")) == draft.title)


def same_time(event: Resource, draft: EventDraft, zone: str) -> bool:
    """Whether a stored event keeps ``draft``'s start and end."""
    try:
        return (when(event.get("start"), zone), when(event.get("end"), zone)) == (
            draft.start, draft.end)
    except UnreadableEvent:
        return False
