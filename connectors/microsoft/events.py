"""Graph event resources read as calpool's events, and calpool's drafts
written as Graph events.

An item of a calendarView (or its delta) is a single event
(``type: singleInstance``) or one occurrence / exception of a series
(``seriesMasterId``, ``originalStart``).  calpool's object is the single
event or the series: ``RemoteEvent.source`` is the event's id or the
series master's, ``instance`` the occurrence's original start.
https://learn.microsoft.com/en-us/graph/api/resources/event

Busy: ``showAs`` free and workingElsewhere are not busy, tentative per the
account's ``tentative_is_busy``, anything else (busy, oof, unknown) is; a
cancelled event (``isCancelled``) is not.  All-day events cover their local
days in the calendar's zone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from connectors.microsoft import times
from connectors.microsoft.account import BOOKING_PROPERTY, booking_of_transaction, transaction_id
from engine.core.model import AttendeeAnswer, RemoteEvent
from engine.ports import EventDraft, instance_key

log = logging.getLogger(__name__)

JSON = dict[str, Any]

_NOT_BUSY = frozenset({"free", "workingelsewhere"})
_SERIES_ITEMS = frozenset({"occurrence", "exception"})

ANSWERS: Mapping[str, AttendeeAnswer] = {
    "none": AttendeeAnswer.NEEDS_ACTION,
    "notresponded": AttendeeAnswer.NEEDS_ACTION,
    "accepted": AttendeeAnswer.ACCEPTED,
    "organizer": AttendeeAnswer.ACCEPTED,
    "tentativelyaccepted": AttendeeAnswer.TENTATIVE,
    "declined": AttendeeAnswer.DECLINED,
}
"""``attendee.status.response`` (responseType) as calpool names it
(https://learn.microsoft.com/en-us/graph/api/resources/responsestatus)."""


def source_of(item: Mapping[str, Any]) -> str:
    """The calpool object an item belongs to: its series, or itself."""
    if str(item.get("type", "")).lower() in _SERIES_ITEMS and item.get("seriesMasterId"):
        return str(item["seriesMasterId"])
    return str(item["id"])


def is_series_item(item: Mapping[str, Any]) -> bool:
    return str(item.get("type", "")).lower() in _SERIES_ITEMS and bool(item.get("seriesMasterId"))


def etag_of(item: Mapping[str, Any]) -> str:
    return str(item.get("@odata.etag") or item.get("changeKey") or "")


def booking_of(item: Mapping[str, Any]) -> str | None:
    """The booking id calpool wrote on the event: the extended property
    where the answer carries it, else the ``transactionId``."""
    wanted = BOOKING_PROPERTY.lower()
    for prop in item.get("singleValueExtendedProperties") or ():
        if isinstance(prop, Mapping) and str(prop.get("id", "")).lower() == wanted:
            return str(prop.get("value") or "") or None
    return booking_of_transaction(item.get("transactionId"))


def answers_of(item: Mapping[str, Any]) -> dict[str, AttendeeAnswer]:
    """The attendees' answers by lower-case address."""
    found: dict[str, AttendeeAnswer] = {}
    for attendee in item.get("attendees") or ():
        if not isinstance(attendee, Mapping):
            continue
        address = str((attendee.get("emailAddress") or {}).get("address") or "")
        if not address:
            continue
        response = str((attendee.get("status") or {}).get("response") or "none").lower()
        found[address.lower()] = ANSWERS.get(response, AttendeeAnswer.NEEDS_ACTION)
    return found


def span_of(item: Mapping[str, Any], *, calendar_zone: str) -> tuple[datetime, datetime]:
    """The item's UTC start and end; all-day items cover their local days
    in ``calendar_zone``.  Raises :class:`times.UnreadableTime`."""
    start, end = item.get("start"), item.get("end")
    if item.get("isAllDay"):
        if not isinstance(start, dict) or not isinstance(end, dict):
            raise times.UnreadableTime("an all-day event without start/end")
        local = ZoneInfo(calendar_zone)
        first = times.local_date(start, event_zone=item.get("originalStartTimeZone"))
        last = times.local_date(end, event_zone=item.get("originalEndTimeZone"))
        return (datetime.combine(first, time(0), local), datetime.combine(last, time(0), local))
    begin, finish = times.instant(start), times.instant(end)
    if finish < begin:
        raise times.UnreadableTime("the event ends before it starts")
    return begin, finish


def is_busy(item: Mapping[str, Any], *, tentative_is_busy: bool) -> bool:
    if item.get("isCancelled"):
        return False
    show_as = str(item.get("showAs") or "busy").lower()
    if show_as == "tentative":
        return tentative_is_busy
    return show_as not in _NOT_BUSY


def remote_event(
    item: Mapping[str, Any], *, calendar_zone: str, tentative_is_busy: bool
) -> RemoteEvent:
    """One item as a :class:`RemoteEvent`.  Raises :class:`times.UnreadableTime`."""
    start, end = span_of(item, calendar_zone=calendar_zone)
    instance = ""
    if is_series_item(item):
        instance = instance_key(times.offset_instant(item.get("originalStart")))
    return RemoteEvent(
        source=source_of(item),
        uid=str(item.get("iCalUId") or item.get("id")),
        instance=instance,
        start=start,
        end=end,
        busy=is_busy(item, tentative_is_busy=tentative_is_busy),
        etag=etag_of(item),
        booking_id=booking_of(item),
        answers=answers_of(item),
    )


@dataclass
class Grouped:
    """Items of a calendarView grouped into calpool's objects."""

    objects: dict[str, list[RemoteEvent]]
    unreadable: dict[str, str]


def group(
    items: Iterable[Mapping[str, Any]], *, calendar_zone: str, tentative_is_busy: bool
) -> Grouped:
    """``items`` by source; an item that cannot be read is logged (with its
    id) and its object reported unreadable (left out)."""
    grouped = Grouped({}, {})
    for item in items:
        try:
            event = remote_event(item, calendar_zone=calendar_zone,
                                 tentative_is_busy=tentative_is_busy)
        except (times.UnreadableTime, KeyError, TypeError) as exc:
            source = str(item.get("seriesMasterId") or item.get("id") or "?")
            log.warning("microsoft: event %s left out, unreadable: %s", source, exc)
            grouped.unreadable[source] = str(exc)
            continue
        grouped.objects.setdefault(event.source, []).append(event)
    for source in grouped.unreadable:
        grouped.objects.pop(source, None)
    return grouped


# -- writing ---------------------------------------------------------------------


def event_body(draft: EventDraft) -> JSON:
    """The Graph event calpool writes for ``draft``.

    The booking id rides in a single-value extended property (found again
    with ``$filter``) and in the ``transactionId`` (Graph's de-duplication
    of a repeated POST; delta answers carry it).  Invited rooms are
    ``resource`` attendees: Exchange's booking attendant answers for them.
    The customer is a required attendee when Exchange should invite them
    (``notify_attendee``); else calpool's own email does, and the event
    names them in its body only.  Rooms calpool writes itself are named in
    the location."""
    invited = {room.email.lower() for room in draft.invite if room.email}
    attendees: list[JSON] = []
    if draft.notify_attendee:
        attendees += [
            {"type": "required", "emailAddress": {"address": person.email, "name": person.name}}
            for person in draft.attendees
            if person.email
        ]
    attendees += [
        {"type": "resource", "emailAddress": {"address": room.email, "name": room.name}}
        for room in draft.invite
        if room.email
    ]
    room_names = [room.name or room.email for room in draft.rooms]
    location = draft.location or ", ".join(name for name in room_names if name)
    locations = [
        {"displayName": room.name or room.email, "locationType": "conferenceRoom",
         **({"locationEmailAddress": room.email} if room.email.lower() in invited else {})}
        for room in draft.rooms
        if room.name or room.email
    ]
    return {
        "subject": draft.title,
        "body": {"contentType": "text", "content": draft.description},
        "start": times.graph_value(draft.start),
        "end": times.graph_value(draft.end),
        "location": {"displayName": location},
        "locations": locations,
        "attendees": attendees,
        "showAs": "busy",
        "isAllDay": False,
        "isReminderOn": False,
        "transactionId": transaction_id(draft.booking_id),
        "singleValueExtendedProperties": [{"id": BOOKING_PROPERTY, "value": draft.booking_id}],
    }


def same_booking(item: Mapping[str, Any], draft: EventDraft) -> bool:
    """Whether the stored ``item`` is ``draft`` as written before (a retry)."""
    try:
        start, end = times.instant(item.get("start")), times.instant(item.get("end"))
    except times.UnreadableTime:
        return False
    return (
        booking_of(item) == draft.booking_id
        and (start, end) == (draft.start, draft.end)
        and str(item.get("subject") or "") == draft.title
    )
