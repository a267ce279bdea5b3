"""Writing a booking's event into a CalDAV calendar, exactly once.

The event lives at a href derived from the booking id (inside the
collection's final URL when the calendar redirects: see ``dav``).  Its UID
is the caller's (:func:`event_uid`): the owner's copy has the UID the
attendee sees, every other copy one derived from the booking and its
calendar, as Cyrus refuses one UID twice within one login.  Every
copy carries the booking id in ``X-CALPOOL-BOOKING``, so a retry finds what
an earlier attempt wrote and sync recognises calpool's events.

- create: ``PUT`` with ``If-None-Match: *``; a 412 means it exists: read it
  and compare (same booking, times and title → the earlier write, returned;
  otherwise ``Conflict``).  A UID the calendar holds elsewhere
  (``C:no-uid-conflict``, ``C:unique-scheduling-object-resource``) is a
  ``Conflict`` too.
- update: ``PUT`` with ``If-Match`` (the given etag, or ``*`` = "must
  exist"); a 412 is ``NotFound`` when it is gone, else ``Conflict``.  A copy
  written before issue 20 (the owner's UID in a room's calendar) keeps its
  UID: servers refuse a PUT that changes the UID of an object
  (``C:no-uid-conflict``; Cyrus 403, Radicale 409).
- delete: ``DELETE``; 404 is success.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

import icalendar

from connectors.caldav.account import booking_href, booking_uid, copy_uid
from connectors.caldav.dav import DavSession, PutAnswer, href_path
from connectors.caldav.failures import (
    UID_CONFLICTS,
    precondition_error,
    precondition_name,
    status_error,
)
from connectors.caldav.ical import BOOKING_PROPERTY
from engine.core.model import Attendee, AttendeeAnswer
from engine.errors import Conflict, NotFound
from engine.ports import EventDraft, EventState, WrittenEvent

log = logging.getLogger(__name__)

PRODID = "-//calpool//calpool//EN"
_DONE = (200, 201, 204)
# A UID conflict without a DAV:error body (older Radicale: a bare 409).
_BARE_UID_CONFLICT = 409


def event_uid(draft: EventDraft, calendar_id: str) -> str:
    """The UID of ``draft``'s copy in calendar ``calendar_id``."""
    if draft.organizer_copy:
        return booking_uid(draft.booking_id)
    return copy_uid(draft.booking_id, calendar_id)


def event_ics(draft: EventDraft, *, uid: str, now: datetime) -> str:
    """The iCalendar text calpool writes for ``draft`` under ``uid``."""
    event = icalendar.Event()
    event.add("UID", uid)
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
        event.add("ORGANIZER", party_uri(draft.organizer), parameters=_cn(draft.organizer))
    for person in draft.attendees:
        params = {**_cn(person), "ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION"}
        event.add("ATTENDEE", party_uri(person), parameters=params)
    for room in draft.rooms:
        # RFC 5545 3.2.3 / 3.2.16: a room, there for the meeting to happen in
        params = {**_cn(room), "CUTYPE": "ROOM", "ROLE": "NON-PARTICIPANT"}
        params["PARTSTAT"] = "ACCEPTED"  # calpool reserved the room itself
        event.add("ATTENDEE", party_uri(room), parameters=params)
    event.add(BOOKING_PROPERTY, draft.booking_id)
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add_component(event)
    text: bytes = calendar.to_ical()
    return text.decode()


def party_uri(party: Attendee) -> str:
    """A valid URI (RFC 3986) for ORGANIZER / ATTENDEE: ``mailto:`` where
    the address is known, else the calendar key, percent-encoded (a room
    named "Room A" has no mailbox; a space is no part of a URI)."""
    if party.email:
        return f"mailto:{party.email}"
    key = party.calendar or party.name or "unnamed"
    return "urn:calpool:calendar:" + quote(key, safe="")


def _cn(person: Attendee) -> dict[str, str]:
    return {"CN": person.name} if person.name else {}


def _stored_event(text: str) -> icalendar.Event | None:
    try:  # calpool's own copy: UTC times, no VTIMEZONE to mix up
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError:
        return None
    events = calendar.walk("VEVENT")
    return events[0] if len(events) == 1 else None  # type: ignore[return-value]


def _same_booking(existing: str, draft: EventDraft) -> bool:
    event = _stored_event(existing)
    if event is None:
        return False
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


def _uid_of_booking_copy(existing: str, booking_id: str) -> str | None:
    """The UID of the stored object when it is ``booking_id``'s copy."""
    event = _stored_event(existing)
    if event is None or str(event.get(BOOKING_PROPERTY, "")) != booking_id:
        return None
    return str(event.get("UID", "")) or None


def _uid_taken(answer: PutAnswer) -> bool:
    return bool(answer.preconditions & UID_CONFLICTS) or (
        answer.status == _BARE_UID_CONFLICT and not answer.preconditions
    )


def create_event(
    session: DavSession,
    calendar_url: str,
    draft: EventDraft,
    *,
    uid: str,
    now: Callable[[], datetime],
) -> WrittenEvent:
    href = booking_href(calendar_url, draft.booking_id)
    answer = session.put(href, event_ics(draft, uid=uid, now=now()), create=True)
    if answer.status in _DONE:
        return WrittenEvent(_source(session, href), answer.etag or _etag_of(session, href), uid)
    if answer.status == 412:
        got, current, body = session.get(href)
        if got == 200 and _same_booking(body, draft):
            # The earlier write; it may predate per-copy UIDs.
            stored_uid = _uid_of_booking_copy(body, draft.booking_id) or uid
            return WrittenEvent(_source(session, href), current, stored_uid)
        raise Conflict(
            f"another event is stored where booking {draft.booking_id} belongs",
            href=_source(session, href),
            actual=current,
        )
    if _uid_taken(answer):
        raise Conflict(
            f"PUT {href}: server answered {answer.status}{_named(answer)}: this calendar, or"
            f" another calendar of the login, holds UID {uid} at another href",
            href=_source(session, href),
        )
    raise _refusal(answer, f"PUT {href}")


def update_event(
    session: DavSession,
    calendar_url: str,
    draft: EventDraft,
    *,
    uid: str,
    etag: str | None,
    now: Callable[[], datetime],
) -> WrittenEvent:
    href = booking_href(calendar_url, draft.booking_id)
    answer = session.put(href, event_ics(draft, uid=uid, now=now()), if_match=etag or "*")
    if _uid_taken(answer):
        # Written before each copy had its own UID: keep the stored one.
        got, current, body = session.get(href)
        stored_uid = _uid_of_booking_copy(body, draft.booking_id) if got == 200 else None
        if stored_uid is None or stored_uid == uid:
            raise Conflict(
                f"the server refuses UID {uid} for booking {draft.booking_id}",
                href=_source(session, href),
                actual=current,
            )
        uid = stored_uid
        answer = session.put(href, event_ics(draft, uid=uid, now=now()), if_match=current or "*")
    if answer.status in _DONE:
        return WrittenEvent(_source(session, href), answer.etag or _etag_of(session, href), uid)
    if answer.status in (404, 412):
        if not etag:
            # If-Match: * fails only when nothing is stored there (RFC 9110
            # 13.1.1): gone, without a GET whose 404 tells nothing more.
            raise NotFound(f"the event of booking {draft.booking_id} is gone")
        got, current, _ = session.get(href)
        if got == 404:
            raise NotFound(f"the event of booking {draft.booking_id} is gone")
        raise Conflict(
            f"the event of booking {draft.booking_id} changed on the server",
            href=_source(session, href),
            expected=etag,
            actual=current,
        )
    raise _refusal(answer, f"PUT {href}")


_PARTSTATS = {
    "NEEDS-ACTION": AttendeeAnswer.NEEDS_ACTION,
    "ACCEPTED": AttendeeAnswer.ACCEPTED,
    "TENTATIVE": AttendeeAnswer.TENTATIVE,
    "DECLINED": AttendeeAnswer.DECLINED,
}


def read_event(session: DavSession, calendar_url: str, booking_id: str) -> EventState | None:
    """The booking's event as the server holds it (``GET`` of its derived
    href); ``None`` when it is gone or the object there is not this
    booking's.  Answers are the ATTENDEEs' PARTSTAT (RFC 5545 3.2.12) by
    ``mailto:`` address; an attendee without a mailbox is not listed."""
    href = booking_href(calendar_url, booking_id)
    status, etag, body = session.get(href)
    if status in (404, 410):
        return None
    if status != 200:
        raise status_error(status, f"GET {href}")
    event = _stored_event(body)
    if event is None or str(event.get(BOOKING_PROPERTY, "")) != booking_id:
        return None
    start, end = event.decoded("DTSTART"), event.get("DTEND")
    if not isinstance(start, datetime) or end is None or not isinstance(end.dt, datetime):
        return None  # calpool writes UTC date-times; a date here is not its write
    answers: dict[str, AttendeeAnswer] = {}
    attendees = event.get("ATTENDEE", [])
    for attendee in attendees if isinstance(attendees, list) else [attendees]:
        address = str(attendee)
        if address.lower().startswith("mailto:"):
            partstat = str(attendee.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
            answers[address[len("mailto:"):]] = _PARTSTATS.get(
                partstat, AttendeeAnswer.NEEDS_ACTION)
    return EventState(
        source=_source(session, href),
        etag=etag or "",
        uid=str(event.get("UID", "")),
        start=start,
        end=end.dt,
        sequence=int(event.get("SEQUENCE", 0)),
        answers=answers,
    )


def delete_event(session: DavSession, calendar_url: str, booking_id: str) -> None:
    href = booking_href(calendar_url, booking_id)
    status = session.delete(href)
    if status not in (200, 202, 204, 404, 410):
        raise status_error(status, f"DELETE {href}")


def _named(answer: PutAnswer) -> str:
    return (
        (" with " + ", ".join(sorted(map(precondition_name, answer.preconditions))))
        if answer.preconditions
        else ""
    )


def _source(session: DavSession, href: str) -> str:
    # Where the object lives (a moved collection's final path), as sync
    # reports it in RemoteEvent.source.
    return href_path(session.located(href))


def _refusal(answer: PutAnswer, what: str) -> Exception:
    if answer.preconditions:
        return precondition_error(answer.status, answer.preconditions, what)
    return status_error(answer.status, what)


def _etag_of(session: DavSession, href: str) -> str:
    """The etag of what is stored, read back with one extra GET.

    Some servers answer a PUT without an ETag: Cyrus for every event with
    an ORGANIZER (it sends only a Schedule-Tag), others when they altered
    the body on store.  The GET is counted in
    ``DavSession.etag_reads_after_put`` (``CalDAVConnector.etag_reads_after_put``)
    so its cost stays visible."""
    session.etag_reads_after_put += 1
    status, etag, _ = session.get(href)
    log.debug("caldav: PUT %s answered without an ETag; read it back (%d)", href, status)
    return etag if status == 200 else ""
