"""Writing a booking's event into a mailbox, exactly once, and reading it back.

- create: first look the booking up by its extended property (an earlier
  attempt may have landed although its answer was lost: a timeout, a
  crash before the store kept the id), then ``POST /users/{id}/events``
  with the ``transactionId`` derived from the booking, so a POST repeated
  within Graph's de-duplication window returns the first event instead of
  a second one.  Found with the same content → the earlier write,
  returned; with other content → ``Conflict``.
- update: ``PATCH`` of the stored id (``source``; else found by the
  property) with ``If-Match`` when an etag is given: 412 is ``Conflict``,
  404 ``NotFound``.  The attendees are sent only when they change, since
  Exchange asks attendees (and rooms) again when their list is rewritten.
- delete: ``DELETE``; already gone is fine.
- read: the event at ``source`` (else found by the property) with its
  attendees' answers — an invited room's booking attendant answers there.
https://learn.microsoft.com/en-us/graph/api/user-post-events
https://learn.microsoft.com/en-us/graph/api/event-update
https://learn.microsoft.com/en-us/graph/api/singlevaluelegacyextendedproperty-get
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from connectors.microsoft import times
from connectors.microsoft.account import BOOKING_PROPERTY
from connectors.microsoft.events import (
    JSON,
    answers_of,
    booking_of,
    etag_of,
    event_body,
    same_booking,
)
from connectors.microsoft.graph import GraphSession, mailbox_path
from connectors.microsoft.sync import EXPAND_BOOKING
from engine.errors import Conflict, NotFound
from engine.ports import EventDraft, EventState, WrittenEvent

_UTC = {"Prefer": 'outlook.timezone="UTC"'}


def _odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _event_path(mailbox: str, event_id: str) -> str:
    return f"{mailbox_path(mailbox)}/events/{quote(event_id, safe='=-_')}"


def find(graph: GraphSession, mailbox: str, booking_id: str) -> JSON | None:
    """The event carrying ``booking_id`` in its extended property, if any."""
    condition = (f"singleValueExtendedProperties/any(ep: ep/id eq {_odata_string(BOOKING_PROPERTY)}"
                 f" and ep/value eq {_odata_string(booking_id)})")
    answer = graph.json("GET", mailbox_path(mailbox) + "/events", headers=_UTC,
                        params={"$filter": condition, "$expand": EXPAND_BOOKING})
    found = [item for item in answer.get("value") or ()
             if isinstance(item, dict) and booking_of(item) == booking_id]
    return found[0] if found else None


def fetch(graph: GraphSession, mailbox: str, event_id: str) -> JSON | None:
    """The event ``event_id``; ``None`` when the mailbox holds no such item
    (an unknown mailbox stays ``NotFound``)."""
    response = graph.send("GET", _event_path(mailbox, event_id), headers=_UTC,
                          params={"$expand": EXPAND_BOOKING}, accept=(404,))
    if response.status_code == 404:
        if "ErrorInvalidUser" in response.text:
            raise NotFound(f"mailbox {mailbox} is unknown to Graph")
        return None
    body: Any = response.json()
    return body if isinstance(body, dict) else None


def _booking_event(graph: GraphSession, mailbox: str, booking_id: str, source: str
                   ) -> JSON | None:
    item = fetch(graph, mailbox, source) if source else None
    if item is None or booking_of(item) != booking_id:
        item = find(graph, mailbox, booking_id)
    return item


def _written(graph: GraphSession, item: JSON) -> WrittenEvent:
    graph.origins.learn([item])
    return WrittenEvent(str(item["id"]), etag_of(item), str(item.get("iCalUId") or item["id"]),
                        answers=answers_of(item))


def create_event(graph: GraphSession, mailbox: str, draft: EventDraft) -> WrittenEvent:
    existing = find(graph, mailbox, draft.booking_id)
    if existing is None:
        existing = graph.json("POST", mailbox_path(mailbox) + "/events", json=event_body(draft),
                              headers=_UTC)
    if not same_booking(existing, draft):
        raise Conflict(f"another version of booking {draft.booking_id} is in the mailbox",
                       href=str(existing.get("id", "")), actual=etag_of(existing))
    return _written(graph, existing)


def _addresses(attendees: object) -> set[tuple[str, str]]:
    return {
        (str(a.get("type", "required")).lower(),
         str((a.get("emailAddress") or {}).get("address", "")).lower())
        for a in (attendees if isinstance(attendees, list) else [])
        if isinstance(a, dict)
    }


def update_event(graph: GraphSession, mailbox: str, draft: EventDraft, *, etag: str | None,
                 source: str) -> WrittenEvent:
    current = _booking_event(graph, mailbox, draft.booking_id, source)
    if current is None:
        raise NotFound(f"the event of booking {draft.booking_id} is gone")
    body = event_body(draft)
    del body["transactionId"]  # set once, at creation
    if _addresses(body["attendees"]) == _addresses(current.get("attendees")):
        del body["attendees"]  # rewriting them would ask every attendee again
    headers = {**_UTC, **({"If-Match": etag} if etag else {})}
    event_id = str(current["id"])
    response = graph.send("PATCH", _event_path(mailbox, event_id), json=body, headers=headers,
                          accept=(404, 412))
    if response.status_code == 404:
        raise NotFound(f"the event of booking {draft.booking_id} is gone")
    if response.status_code == 412:
        raise Conflict(f"the event of booking {draft.booking_id} changed in the mailbox",
                       href=event_id, expected=etag or "", actual=etag_of(current))
    updated: Any = response.json()
    return _written(graph, updated)


def delete_event(graph: GraphSession, mailbox: str, booking_id: str, *, source: str) -> None:
    event_id = source
    if not event_id:
        found = find(graph, mailbox, booking_id)
        if found is None:
            return
        event_id = str(found["id"])
    graph.send("DELETE", _event_path(mailbox, event_id), accept=(404, 410))


def read_event(graph: GraphSession, mailbox: str, booking_id: str, *, source: str
               ) -> EventState | None:
    item = _booking_event(graph, mailbox, booking_id, source)
    if item is None or item.get("isAllDay") or item.get("type") == "seriesMaster":
        return None  # calpool writes single timed events only
    return EventState(
        source=str(item["id"]),
        etag=etag_of(item),
        uid=str(item.get("iCalUId") or item["id"]),
        start=times.instant(item.get("start")),
        end=times.instant(item.get("end")),
        answers=answers_of(item),
    )
