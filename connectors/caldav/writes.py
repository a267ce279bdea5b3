"""Writing a booking's event into a CalDAV calendar, exactly once.

The event lives at a href derived from the booking id, with a UID derived
from it too and the booking id itself in ``X-CALPOOL-BOOKING``, so a retry
finds what an earlier attempt wrote and sync recognises calpool's events.

- create: ``PUT`` with ``If-None-Match: *``; a 412 means it exists: read it
  and compare (same booking, times and title → the earlier write, returned;
  otherwise ``Conflict``).
- update: ``PUT`` with ``If-Match`` (the given etag, or ``*`` = "must
  exist"); a 412 is ``NotFound`` when it is gone, else ``Conflict``.
- delete: ``DELETE``; 404 is success.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import icalendar

from connectors.caldav.account import booking_href, booking_uid
from connectors.caldav.dav import DavSession, href_path
from connectors.caldav.failures import status_error
from connectors.caldav.ical import BOOKING_PROPERTY
from engine.core.model import Attendee
from engine.errors import Conflict, NotFound
from engine.ports import EventDraft, WrittenEvent

PRODID = "-//calpool//calpool//EN"
_UID_CONFLICT = (403, 409)  # RFC 4791 5.3.2.1 no-uid-conflict: Cyrus 403, Radicale 409


def event_ics(draft: EventDraft, *, now: datetime) -> str:
    """The iCalendar text calpool writes for ``draft``."""
    event = icalendar.Event()
    event.add("UID", booking_uid(draft.booking_id))
    event.add("DTSTAMP", now)
    event.add("DTSTART", draft.start)
    event.add("DTEND", draft.end)
    event.add("SUMMARY", draft.title)
    if draft.description:
        event.add("DESCRIPTION", draft.description)
    if draft.location:
        event.add("LOCATION", draft.location)
    event.add("SEQUENCE", draft.sequence)
    event.add("STATUS", "CONFIRMED")
    event.add("TRANSP", "OPAQUE")
    if draft.organizer is not None:
        event.add("ORGANIZER", _address(draft.organizer), parameters=_cn(draft.organizer))
    for person in draft.attendees:
        params = {**_cn(person), "ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION"}
        event.add("ATTENDEE", _address(person), parameters=params)
    for room in draft.rooms:
        params = {**_cn(room), "CUTYPE": "RESOURCE", "ROLE": "NON-PARTICIPANT"}
        params["PARTSTAT"] = "ACCEPTED"  # calpool reserved the room itself
        event.add("ATTENDEE", _address(room), parameters=params)
    event.add(BOOKING_PROPERTY, draft.booking_id)
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add_component(event)
    text: bytes = calendar.to_ical()
    return text.decode()


def _address(person: Attendee) -> str:
    # A CalDAV room may have no mailbox; a urn keeps the property valid.
    return f"mailto:{person.email}" if person.email else f"urn:calpool:{person.name or 'room'}"


def _cn(person: Attendee) -> dict[str, str]:
    return {"CN": person.name} if person.name else {}


def _same_booking(existing: str, draft: EventDraft) -> bool:
    try:  # calpool's own copy: UTC times, no VTIMEZONE to mix up
        calendar = icalendar.Calendar.from_ical(existing)
    except ValueError:
        return False
    events = calendar.walk("VEVENT")
    if len(events) != 1:
        return False
    event = events[0]
    booking = event.get(BOOKING_PROPERTY)
    end = event.get("DTEND")
    return (
        booking is not None
        and str(booking) == draft.booking_id
        and event.decoded("DTSTART") == draft.start
        and end is not None
        and end.dt == draft.end
        and str(event.get("SUMMARY", "")) == draft.title
    )


def create_event(
    session: DavSession, calendar_url: str, draft: EventDraft, *, now: Callable[[], datetime]
) -> WrittenEvent:
    href = booking_href(calendar_url, draft.booking_id)
    uid = booking_uid(draft.booking_id)
    status, etag = session.put(href, event_ics(draft, now=now()), create=True)
    if status in (200, 201, 204):
        return WrittenEvent(href_path(href), etag or _etag_of(session, href), uid)
    if status == 412:
        got, current, body = session.get(href)
        if got == 200 and _same_booking(body, draft):
            return WrittenEvent(href_path(href), current, uid)
        raise Conflict(
            f"another event is stored where booking {draft.booking_id} belongs",
            href=href_path(href),
            actual=current,
        )
    if status in _UID_CONFLICT:
        raise Conflict(f"the calendar holds UID {uid} at another href", href=href_path(href))
    raise status_error(status, f"PUT {href}")


def update_event(
    session: DavSession,
    calendar_url: str,
    draft: EventDraft,
    *,
    etag: str | None,
    now: Callable[[], datetime],
) -> WrittenEvent:
    href = booking_href(calendar_url, draft.booking_id)
    status, new_etag = session.put(href, event_ics(draft, now=now()), if_match=etag or "*")
    if status in (200, 201, 204):
        return WrittenEvent(
            href_path(href), new_etag or _etag_of(session, href), booking_uid(draft.booking_id)
        )
    if status in (404, 412):
        got, current, _ = session.get(href)
        if got == 404:
            raise NotFound(f"the event of booking {draft.booking_id} is gone")
        raise Conflict(
            f"the event of booking {draft.booking_id} changed on the server",
            href=href_path(href),
            expected=etag or "",
            actual=current,
        )
    raise status_error(status, f"PUT {href}")


def delete_event(session: DavSession, calendar_url: str, booking_id: str) -> None:
    href = booking_href(calendar_url, booking_id)
    status = session.delete(href)
    if status not in (200, 202, 204, 404, 410):
        raise status_error(status, f"DELETE {href}")


def _etag_of(session: DavSession, href: str) -> str:
    """Some servers answer a PUT without an ETag (the body was altered on
    store); the etag of what is stored is then read back."""
    status, etag, _ = session.get(href)
    return etag if status == 200 else ""
