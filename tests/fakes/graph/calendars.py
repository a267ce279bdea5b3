"""The fake's mailboxes: events as Graph resources, series expansion, change counters, rooms.

An event is stored as the Graph JSON resource it is (``start``/``end`` in the zone
it was written with); every change stamps it with a new ``changeKey``/``@odata.etag``
and a rising sequence number, which is what delta rounds compare against.
A series master (``type: seriesMaster``) keeps its exceptions and cancelled
occurrences keyed by the occurrence's ``originalStart``; a calendarView expands it
into ``occurrence``/``exception`` instances with their own ids, the master's
``iCalUId`` and ``seriesMasterId``; cancelled occurrences are omitted.
https://learn.microsoft.com/en-us/graph/api/resources/event
https://learn.microsoft.com/en-us/graph/api/user-list-calendarview

Room mailboxes: an organizer invites a room as attendee ``{type: "resource"}``;
the room's booking attendant answers asynchronously (accepted when free,
declined when busy), the answer shows in the organizer's ``attendees[].status``
and, when accepted, the meeting lands in the room's calendar (its own id, the
same ``iCalUId``).
https://learn.microsoft.com/en-us/graph/api/resources/attendee
https://learn.microsoft.com/en-us/exchange/recipients/room-mailboxes
"""

from __future__ import annotations

import base64
import copy
import enum
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.graph import recurrence, times

_READ_ONLY = {
    "id",
    "iCalUId",
    "changeKey",
    "@odata.etag",
    "createdDateTime",
    "lastModifiedDateTime",
    "type",
    "seriesMasterId",
    "originalStart",
    "organizer",
}
_NO_ANSWER_TIME = "0001-01-01T00:00:00Z"
_OCCURRENCE_PREFIX = "AAMkOC"


class RoomAnswer(enum.Enum):
    """How a room mailbox's booking attendant answers an invitation."""

    AUTO = "auto"  # accepted when free, declined when busy
    ACCEPT = "accept"
    DECLINE = "decline"
    SILENT = "silent"  # never answers: status.response stays "none"


class UnknownMailbox(LookupError):
    """No mailbox with that user principal name (Graph: 404 ErrorInvalidUser)."""


class ItemNotFound(LookupError):
    """No such event in the mailbox (Graph: 404 ErrorItemNotFound)."""


class StaleChangeKey(Exception):
    """``If-Match`` names an older version (Graph: 412 ErrorIrresolvableConflict)."""


class InvalidEvent(ValueError):
    """An event body Graph would refuse with 400."""


@dataclass
class Room:
    name: str
    answer: RoomAnswer
    delay: float


@dataclass
class StoredEvent:
    resource: dict[str, Any]
    seq: int
    exceptions: dict[str, dict[str, Any]] = field(default_factory=dict)  # originalStart -> changes
    cancelled: set[str] = field(default_factory=set)  # originalStarts


@dataclass(frozen=True)
class Instance:
    """One item of a calendarView: a single event, an occurrence or an exception."""

    id: str
    resource: dict[str, Any]
    start: datetime
    end: datetime
    seq: int
    source_id: str  # the single event's or the series master's id


@dataclass
class Mailbox:
    user: str
    timezone: str
    room: Room | None = None
    events: dict[str, StoredEvent] = field(default_factory=dict)
    transactions: dict[str, str] = field(default_factory=dict)  # transactionId -> event id
    epoch: int = 0  # raised by expire_delta_tokens: older state tokens answer 410


def _new_id() -> str:
    return "AAMkAD" + secrets.token_urlsafe(33) + "="


def occurrence_id(master_id: str, original_start: str) -> str:
    raw = f"{master_id}|{original_start}".encode()
    return _OCCURRENCE_PREFIX + base64.urlsafe_b64encode(raw).decode()


def split_occurrence_id(event_id: str) -> tuple[str, str] | None:
    """(master id, originalStart) of an occurrence id, None for any other id."""
    if not event_id.startswith(_OCCURRENCE_PREFIX):
        return None
    try:
        master_id, original = (
            base64.urlsafe_b64decode(event_id[len(_OCCURRENCE_PREFIX) :]).decode().split("|", 1)
        )
    except (ValueError, UnicodeDecodeError):
        return None
    return master_id, original


def _busy_blocking(resource: dict[str, Any]) -> bool:
    return not resource.get("isCancelled") and resource.get("showAs", "busy") not in {
        "free",
        "workingElsewhere",
    }


class Calendars:
    """All mailboxes of the fake tenant. Thread-safe: one re-entrant lock around everything."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        schedule: Callable[[float, Callable[[], None]], None],
    ) -> None:
        self._clock = clock
        self._schedule = schedule
        self.lock = threading.RLock()
        self._mailboxes: dict[str, Mailbox] = {}
        self._seq = 0
        self.listeners: list[Callable[[str, str, str], None]] = []  # (user, event id, changeType)

    # ---- mailboxes -------------------------------------------------------------------------

    def add_mailbox(self, user: str, *, timezone: str = "UTC", room: Room | None = None) -> None:
        times.zone(timezone)
        with self.lock:
            self._mailboxes[user.lower()] = Mailbox(user=user, timezone=timezone, room=room)

    def mailbox(self, user: str) -> Mailbox:
        with self.lock:
            try:
                return self._mailboxes[user.lower()]
            except KeyError:
                raise UnknownMailbox(user) from None

    def all_mailboxes(self) -> list[Mailbox]:
        with self.lock:
            return list(self._mailboxes.values())

    def has_mailbox(self, user: str) -> bool:
        with self.lock:
            return user.lower() in self._mailboxes

    def set_room_answer(self, email: str, answer: RoomAnswer) -> None:
        with self.lock:
            room = self.mailbox(email).room
            if room is None:
                raise UnknownMailbox(f"{email} is not a room mailbox")
            room.answer = answer

    # ---- stamping ----------------------------------------------------------------------------

    def _stamp(self, stored: StoredEvent) -> None:
        self._seq += 1
        stored.seq = self._seq
        change_key = secrets.token_urlsafe(12)
        stored.resource["changeKey"] = change_key
        stored.resource["@odata.etag"] = f'W/"{change_key}"'
        now = self._clock().astimezone(UTC)
        stored.resource["lastModifiedDateTime"] = (
            now.isoformat(timespec="microseconds")[:26] + "0Z"
        )

    @property
    def seq(self) -> int:
        with self.lock:
            return self._seq

    def _notify(self, user: str, event_id: str, change_type: str) -> None:
        for listener in list(self.listeners):
            listener(user, event_id, change_type)

    # ---- validation --------------------------------------------------------------------------

    @staticmethod
    def _span(resource: dict[str, Any]) -> tuple[datetime, datetime]:
        try:
            start = times.parse_instant(resource["start"])
            end = times.parse_instant(resource["end"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidEvent(f"start/end: {exc}") from exc
        if end < start:
            raise InvalidEvent("The end must not be before the start.")
        return start, end

    def _normalise(self, resource: dict[str, Any], organizer: Mailbox) -> None:
        self._span(resource)
        if resource.get("recurrence"):
            try:
                recurrence.validate(
                    resource["recurrence"], times.parse_wall_clock(resource["start"]["dateTime"])
                )
            except recurrence.BadRecurrence as exc:
                raise InvalidEvent(f"recurrence: {exc}") from exc
        attendees = []
        for attendee in resource.get("attendees") or []:
            address = (attendee.get("emailAddress") or {}).get("address")
            if not address:
                raise InvalidEvent("An attendee needs emailAddress.address.")
            attendees.append(
                {
                    "type": attendee.get("type", "required"),
                    "emailAddress": {
                        "address": address,
                        "name": attendee["emailAddress"].get("name") or address,
                    },
                    "status": attendee.get("status")
                    or {"response": "none", "time": _NO_ANSWER_TIME},
                }
            )
        resource["attendees"] = attendees
        resource.setdefault(
            "organizer", {"emailAddress": {"address": organizer.user, "name": organizer.user}}
        )

    # ---- writes ------------------------------------------------------------------------------

    def create(self, user: str, event: dict[str, Any]) -> dict[str, Any]:
        """Store a new event (or answer the one of the same ``transactionId``); its resource."""
        with self.lock:
            box = self.mailbox(user)
            transaction = event.get("transactionId")
            if transaction and transaction in box.transactions:
                existing = box.events.get(box.transactions[transaction])
                if existing is not None:
                    return copy.deepcopy(existing.resource)
            resource = {k: copy.deepcopy(v) for k, v in event.items() if k not in _READ_ONLY}
            now = self._clock().astimezone(UTC)
            resource.update(
                {
                    "id": _new_id(),
                    "iCalUId": "040000008200E00074C5B7101A82E008" + uuid.uuid4().hex.upper(),
                    "createdDateTime": now.isoformat(timespec="microseconds")[:26] + "0Z",
                    "type": "seriesMaster" if event.get("recurrence") else "singleInstance",
                    "seriesMasterId": None,
                }
            )
            resource.setdefault("subject", "")
            resource.setdefault("body", {"contentType": "html", "content": ""})
            resource.setdefault("showAs", "busy")
            resource.setdefault("isAllDay", False)
            resource.setdefault("isCancelled", False)
            resource.setdefault("location", {"displayName": ""})
            resource.setdefault("recurrence", None)
            resource.setdefault("transactionId", None)
            resource.setdefault("singleValueExtendedProperties", [])
            self._normalise(resource, box)
            for zone_key, side in (
                ("originalStartTimeZone", "start"),
                ("originalEndTimeZone", "end"),
            ):
                resource[zone_key] = resource[side].get("timeZone", "UTC")
            stored = StoredEvent(resource=resource, seq=0)
            self._stamp(stored)
            box.events[resource["id"]] = stored
            if transaction:
                box.transactions[transaction] = resource["id"]
            self._invite_rooms(box, stored)
            self._notify(box.user, resource["id"], "created")
            return copy.deepcopy(resource)

    def _check_etag(self, stored: StoredEvent, if_match: str | None) -> None:
        if if_match and if_match.strip() not in {
            "*",
            stored.resource["@odata.etag"],
            stored.resource["changeKey"],
        }:
            raise StaleChangeKey(if_match)

    def update(
        self, user: str, event_id: str, changes: dict[str, Any], *, if_match: str | None = None
    ) -> dict[str, Any]:
        """Apply a PATCH; on an occurrence it becomes (or changes) an exception of its series."""
        with self.lock:
            box = self.mailbox(user)
            changes = {k: copy.deepcopy(v) for k, v in changes.items() if k not in _READ_ONLY}
            parts = split_occurrence_id(event_id)
            if parts is not None:
                master = box.events.get(parts[0])
                if master is None or parts[1] in master.cancelled:
                    raise ItemNotFound(event_id)
                self._check_etag(master, if_match)
                if "start" in changes or "end" in changes:
                    probe = {**self.instance(user, event_id).resource, **changes}  # type: ignore[union-attr]
                    self._span(probe)
                master.exceptions.setdefault(parts[1], {}).update(changes)
                self._stamp(master)
                self._notify(box.user, event_id, "updated")
                found = self.instance(user, event_id)
                assert found is not None
                return copy.deepcopy(found.resource)
            stored = box.events.get(event_id)
            if stored is None:
                raise ItemNotFound(event_id)
            self._check_etag(stored, if_match)
            candidate = {**copy.deepcopy(stored.resource), **changes}
            self._normalise(candidate, box)
            moved = any(
                candidate.get(k) != stored.resource.get(k) for k in ("start", "end", "recurrence")
            )
            if moved:  # a new time: attendees answer again (their old answers are void)
                for attendee in candidate["attendees"]:
                    attendee["status"] = {"response": "none", "time": _NO_ANSWER_TIME}
            stored.resource = candidate
            self._stamp(stored)
            if moved or "attendees" in changes:
                self._invite_rooms(box, stored)
            self._notify(box.user, event_id, "updated")
            return copy.deepcopy(stored.resource)

    def delete(self, user: str, event_id: str, *, if_match: str | None = None) -> None:
        """Delete an event; on an occurrence, cancel that occurrence of its series."""
        with self.lock:
            box = self.mailbox(user)
            parts = split_occurrence_id(event_id)
            if parts is not None:
                master = box.events.get(parts[0])
                if master is None or self.instance(user, event_id) is None:
                    raise ItemNotFound(event_id)
                self._check_etag(master, if_match)
                master.cancelled.add(parts[1])
                master.exceptions.pop(parts[1], None)
                self._stamp(master)
                self._notify(box.user, event_id, "deleted")
                return
            stored = box.events.get(event_id)
            if stored is None:
                raise ItemNotFound(event_id)
            self._check_etag(stored, if_match)
            del box.events[event_id]
            for room in self._room_attendees(stored):
                self._remove_room_copy(room, stored.resource["iCalUId"])
            self._notify(box.user, event_id, "deleted")

    # ---- reads ---------------------------------------------------------------------------------

    def stored(self, user: str) -> list[dict[str, Any]]:
        """Single events and series masters (what ``/events`` lists), oldest first."""
        with self.lock:
            return [copy.deepcopy(s.resource) for s in self.mailbox(user).events.values()]

    def _expand(
        self,
        stored: StoredEvent,
        window_start: datetime,
        window_end: datetime,
    ) -> list[Instance]:
        resource = stored.resource
        start, end = self._span(resource)
        if not resource.get("recurrence"):
            if start < window_end and (end > window_start or (start == end == window_start)):
                return [Instance(resource["id"], resource, start, end, stored.seq, resource["id"])]
            return []
        zone_name = resource["start"].get("timeZone", "UTC")
        duration = end - start
        found = []
        # an exception may move an occurrence by up to a day into the window
        for occ_start in recurrence.occurrence_starts(
            resource["recurrence"],
            times.parse_wall_clock(resource["start"]["dateTime"]),
            times.zone(zone_name),
            until=window_end + timedelta(days=1),
        ):
            original = times.format_offset(occ_start)
            if original in stored.cancelled:
                continue
            changes = stored.exceptions.get(original)
            item = {k: copy.deepcopy(v) for k, v in resource.items() if k != "recurrence"}
            item.update(
                {
                    "id": occurrence_id(resource["id"], original),
                    "type": "exception" if changes else "occurrence",
                    "seriesMasterId": resource["id"],
                    "originalStart": original,
                    "recurrence": None,
                    "start": times.format_instant(occ_start, zone_name),
                    "end": times.format_instant(occ_start + duration, zone_name),
                }
            )
            item.update(copy.deepcopy(changes or {}))
            item_start, item_end = self._span(item)
            if item_start < window_end and item_end > window_start:
                found.append(
                    Instance(item["id"], item, item_start, item_end, stored.seq, resource["id"])
                )
        return found

    def instances(
        self,
        user: str,
        window_start: datetime,
        window_end: datetime,
    ) -> list[Instance]:
        """The calendarView of ``[window_start, window_end)``, ordered by start."""
        with self.lock:
            found = [
                instance
                for stored in self.mailbox(user).events.values()
                for instance in self._expand(stored, window_start, window_end)
            ]
        return sorted(found, key=lambda i: (i.start, i.id))

    def instance(self, user: str, event_id: str) -> Instance | None:
        """The single event, series master or occurrence/exception of that id."""
        with self.lock:
            box = self.mailbox(user)
            parts = split_occurrence_id(event_id)
            if parts is None:
                stored = box.events.get(event_id)
                if stored is None:
                    return None
                start, end = self._span(stored.resource)
                return Instance(
                    event_id, copy.deepcopy(stored.resource), start, end, stored.seq, event_id
                )
            master = box.events.get(parts[0])
            if master is None or parts[1] in master.cancelled:
                return None
            original = times.parse_query_instant(parts[1])
            for candidate in self._expand(
                master, original - timedelta(days=2), original + timedelta(days=2)
            ):
                if candidate.id == event_id:
                    return candidate
            return None

    # ---- rooms ---------------------------------------------------------------------------------

    def _room_attendees(self, stored: StoredEvent) -> list[Mailbox]:
        rooms = []
        for attendee in stored.resource.get("attendees") or []:
            address = attendee["emailAddress"]["address"]
            if attendee.get("type") == "resource" and self.has_mailbox(address):
                box = self.mailbox(address)
                if box.room is not None:
                    rooms.append(box)
        return rooms

    def _invite_rooms(self, organizer: Mailbox, stored: StoredEvent) -> None:
        event_id = stored.resource["id"]
        for room in self._room_attendees(stored):
            assert room.room is not None
            if room.room.answer is RoomAnswer.SILENT:
                continue
            seq_at_invite = stored.seq

            def answer(room: Mailbox = room, seq_at_invite: int = seq_at_invite) -> None:
                with self.lock:
                    current = organizer.events.get(event_id)
                    if current is None or current.seq < seq_at_invite or room.room is None:
                        return
                    policy = room.room.answer
                    if policy is RoomAnswer.SILENT:
                        return
                    accept = policy is RoomAnswer.ACCEPT or (
                        policy is RoomAnswer.AUTO and not self._room_busy(room, current)
                    )
                    self._record_answer(
                        organizer, current, room, "accepted" if accept else "declined"
                    )

            self._schedule(room.room.delay, answer)

    def _room_busy(self, room: Mailbox, stored: StoredEvent) -> bool:
        start, end = self._span(stored.resource)
        horizon = end + (
            timedelta(days=366) if stored.resource.get("recurrence") else timedelta(0)
        )
        wanted = self._expand(stored, start, horizon)[:200]
        ical = stored.resource["iCalUId"]
        for item in wanted:
            for other in self.instances(room.user, item.start, item.end):
                if (
                    other.resource.get("iCalUId") != ical
                    and _busy_blocking(other.resource)
                    and other.start < item.end
                    and other.end > item.start
                ):
                    return True
        return False

    def _record_answer(
        self, organizer: Mailbox, stored: StoredEvent, room: Mailbox, response: str
    ) -> None:
        for attendee in stored.resource["attendees"]:
            if attendee["emailAddress"]["address"].lower() == room.user.lower():
                attendee["status"] = {
                    "response": response,
                    "time": times.format_offset(self._clock()),
                }
        self._stamp(stored)
        self._notify(organizer.user, stored.resource["id"], "updated")
        if response == "accepted":
            self._put_room_copy(room, stored)
        else:
            self._remove_room_copy(room, stored.resource["iCalUId"])

    def answer_as_room(self, user: str, event_id: str, room_email: str, response: str) -> None:
        with self.lock:
            organizer = self.mailbox(user)
            stored = organizer.events.get(event_id)
            if stored is None:
                raise ItemNotFound(event_id)
            self._record_answer(organizer, stored, self.mailbox(room_email), response)

    def _put_room_copy(self, room: Mailbox, stored: StoredEvent) -> None:
        ical = stored.resource["iCalUId"]
        for existing in room.events.values():
            if existing.resource.get("iCalUId") == ical:
                keep = {k: existing.resource[k] for k in ("id", "createdDateTime")}
                existing.resource = {
                    **copy.deepcopy(stored.resource),
                    **keep,
                    "transactionId": None,
                    "singleValueExtendedProperties": [],
                }
                self._stamp(existing)
                self._notify(room.user, existing.resource["id"], "updated")
                return
        resource = copy.deepcopy(stored.resource)
        resource.update(
            {
                "id": _new_id(),
                "transactionId": None,
                "singleValueExtendedProperties": [],
                "showAs": "busy",
            }
        )
        copy_event = StoredEvent(resource=resource, seq=0)
        self._stamp(copy_event)
        room.events[resource["id"]] = copy_event
        self._notify(room.user, resource["id"], "created")

    def _remove_room_copy(self, room: Mailbox, ical: str) -> None:
        for event_id, existing in list(room.events.items()):
            if existing.resource.get("iCalUId") == ical:
                del room.events[event_id]
                self._notify(room.user, event_id, "deleted")
