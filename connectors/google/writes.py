"""Writing a booking's event into a Google calendar, exactly once
(https://developers.google.com/workspace/calendar/api/v3/reference/events).

- create: ``events.insert`` with the id derived from the booking
  (:func:`~connectors.google.account.event_id`).  A 409 ("The requested
  identifier already exists") means an earlier attempt wrote it: GET it and
  compare (same booking, times and title → that write, returned; otherwise
  ``Conflict``).  Google keeps a deleted id reserved (the event stays with
  ``status: cancelled``), so a cancelled event of the same booking is put
  back with ``events.update``.  Never a second event.
- update: GET, then ``events.patch`` of the same id with ``If-Match`` (the
  caller's etag, else the one just read): a 412 is ``Conflict``; a missing
  or cancelled event is ``NotFound`` (a patch would revive a cancelled one).
  The attendee list is replaced whole, so a room that changed is replaced.
- delete: ``events.delete``; 404 and 410 (already deleted) are success.

``sendUpdates`` is ``all`` when the draft asks the provider to invite the
attendee, else ``none``; invited rooms (``resource: true``) get Google's
invitation either way, as room calendars answer on their own.
"""

from __future__ import annotations

from typing import Any

from googleapiclient.errors import HttpError

from connectors.google.account import event_ical_uid, event_id
from connectors.google.events import (
    Resource,
    UnreadableEvent,
    answers_of,
    booking_of,
    event_body,
    event_state,
    same_booking,
    same_time,
)
from engine.errors import Conflict, NotFound
from engine.ports import EventDraft, EventState, WrittenEvent


def _send_updates(draft: EventDraft) -> str:
    return "all" if draft.notify_attendee else "none"


def _written(event: Resource) -> WrittenEvent:
    return WrittenEvent(str(event["id"]), str(event.get("etag", "")),
                        str(event.get("iCalUID", "")), answers=answers_of(event))


def _get(events: Any, calendar_id: str, object_id: str) -> Resource | None:
    """The stored event (cancelled ones included); ``None`` when Google
    knows no such id."""
    try:
        found: Resource = events.get(calendarId=calendar_id, eventId=object_id).execute()
    except HttpError as exc:
        if exc.resp.status in (404, 410):
            return None
        raise
    return found


def create_event(service: Any, calendar_id: str, draft: EventDraft, *, zone: str) -> WrittenEvent:
    object_id = event_id(draft.booking_id, calendar_id, organizer_copy=draft.organizer_copy)
    uid = event_ical_uid(draft.booking_id, calendar_id, organizer_copy=draft.organizer_copy)
    body = event_body(draft, event_id=object_id, ical_uid=uid)
    events = service.events()
    try:
        created: Resource = events.insert(calendarId=calendar_id, body=body,
                                          sendUpdates=_send_updates(draft)).execute()
    except HttpError as exc:
        if exc.resp.status != 409:
            raise
        existing = _get(events, calendar_id, object_id)
        if existing is None or not same_booking(existing, draft, zone):
            raise Conflict(
                f"another event is stored where booking {draft.booking_id} belongs",
                href=object_id, actual=str((existing or {}).get("etag", "")),
                calendar=calendar_id) from exc
        if existing.get("status") != "cancelled":
            return _written(existing)  # a retry after a crash: the earlier write
        # The same booking, deleted: its id stays reserved, so put it back.
        restored: Resource = events.update(
            calendarId=calendar_id, eventId=object_id, body=body,
            sendUpdates=_send_updates(draft)).execute()
        return _written(restored)
    return _written(created)


def update_event(service: Any, calendar_id: str, draft: EventDraft, *, etag: str | None,
                 source: str, zone: str) -> WrittenEvent:
    object_id = source or event_id(draft.booking_id, calendar_id,
                                   organizer_copy=draft.organizer_copy)
    events = service.events()
    existing = _get(events, calendar_id, object_id)
    if existing is None or existing.get("status") == "cancelled":
        raise NotFound(f"the event of booking {draft.booking_id} is gone", calendar=calendar_id)
    current = str(existing.get("etag", ""))
    if etag and etag != current:
        raise Conflict(f"the event of booking {draft.booking_id} changed on Google",
                       href=object_id, expected=etag, actual=current, calendar=calendar_id)
    body = event_body(draft, event_id=object_id, ical_uid=str(existing.get("iCalUID", "")))
    for fixed in ("id", "iCalUID"):
        body.pop(fixed)  # neither changes on a patch
    if same_time(existing, draft, zone):
        # The attendee list is sent whole; an answer given stands while the
        # meeting keeps its time (a room asked anew answers anew).
        given = {str(a.get("email", "")).lower(): a.get("responseStatus")
                 for a in existing.get("attendees") or ()}
        for attendee in body["attendees"]:
            answer = given.get(attendee["email"].lower())
            if answer:
                attendee["responseStatus"] = answer
    request = events.patch(calendarId=calendar_id, eventId=object_id, body=body,
                           sendUpdates=_send_updates(draft))
    request.headers["If-Match"] = etag or current
    try:
        patched: Resource = request.execute()
    except HttpError as exc:
        if exc.resp.status == 412:
            raise Conflict(f"the event of booking {draft.booking_id} changed on Google",
                           href=object_id, expected=etag or current, calendar=calendar_id,
                           ) from exc
        if exc.resp.status in (404, 410):
            raise NotFound(f"the event of booking {draft.booking_id} is gone",
                           calendar=calendar_id) from exc
        raise
    return _written(patched)


def read_event(service: Any, calendar_id: str, booking_id: str, *, source: str,
               zone: str) -> EventState | None:
    """The booking's event as Google holds it; ``None`` when it is gone,
    cancelled, or not this booking's.  ``source`` is the stored id; without
    it, the id of the owner's copy, then that of another copy."""
    events = service.events()
    candidates = [source] if source else [
        event_id(booking_id, calendar_id, organizer_copy=True),
        event_id(booking_id, calendar_id, organizer_copy=False)]
    for object_id in candidates:
        found = _get(events, calendar_id, object_id)
        if found is None or found.get("status") == "cancelled":
            continue
        if booking_of(found) != booking_id:
            continue
        try:
            return event_state(found, zone)
        except UnreadableEvent:
            return None
    return None


def delete_event(service: Any, calendar_id: str, booking_id: str, *, source: str,
                 send_updates: str = "all") -> None:
    events = service.events()
    candidates = [source] if source else [
        event_id(booking_id, calendar_id, organizer_copy=True),
        event_id(booking_id, calendar_id, organizer_copy=False)]
    for object_id in candidates:
        try:
            events.delete(calendarId=calendar_id, eventId=object_id,
                          sendUpdates=send_updates).execute()
        except HttpError as exc:
            if exc.resp.status not in (404, 410):
                raise
