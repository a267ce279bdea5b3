"""The fake's calendars: events as Calendar API v3 resources, change counters, rooms.

Every write stamps the event with a new ``etag`` and ``updated`` and a rising
change number (what sync tokens compare against); ``sequence`` rises when the
time or recurrence changes. A deleted event stays, with ``status: cancelled``:
its id remains taken (inserting it again is 409) and incremental syncs report it.
Client-chosen ids are base32hex (``a-v``, ``0-9``), 5 to 1024 characters.
https://developers.google.com/calendar/api/v3/reference/events#resource
https://developers.google.com/calendar/api/v3/reference/events/insert
https://developers.google.com/calendar/api/v3/reference/events/delete
https://developers.google.com/calendar/api/guides/sync

Recurring events are stored as masters (``recurrence``) plus exceptions: events
whose id is the instance's id, with ``recurringEventId`` and
``originalStartTime``; a cancelled exception removes that occurrence.
https://developers.google.com/calendar/api/guides/recurringevents

Rooms: a room is an attendee ``{email, resource: true}``. It answers
asynchronously, which shows as the attendee's ``responseStatus`` in the
organizer's event; an accepted event is in the room's calendar with the same
``id`` and ``iCalUID`` (Google shares one event among its attendees' calendars).
https://developers.google.com/calendar/api/v3/reference/events#attendees
https://support.google.com/a/answer/1034381
"""

from __future__ import annotations

import copy
import enum
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.google_calendar import times

_ID = re.compile(r"^[a-v0-9]{5,1024}$")
_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
_READ_ONLY = {
    "kind",
    "etag",
    "htmlLink",
    "created",
    "updated",
    "creator",
    "organizer",
    "recurringEventId",
    "originalStartTime",
}
_TIMING = ("start", "end", "recurrence")
ROOM_DOMAIN = "resource.calendar.google.com"
# Expansion horizon where a query gives no window (incremental syncs with singleEvents).
UNBOUNDED_BEFORE = timedelta(days=366)
UNBOUNDED_AFTER = timedelta(days=2 * 366)


class RoomAnswer(enum.Enum):
    """How a room (resource calendar) answers an invitation."""

    AUTO = "auto"  # accepted when free, declined when busy
    ACCEPT = "accept"
    DECLINE = "decline"
    SILENT = "silent"  # never answers: responseStatus stays needsAction


class CalendarNotFound(LookupError):
    """No such calendar, or not visible to the caller (404 notFound)."""


class EventNotFound(LookupError):
    """No such event (404 notFound)."""


class Duplicate(Exception):
    """The id is taken in that calendar, by a live or a cancelled event (409 duplicate)."""


class Gone(Exception):
    """The event is already deleted (410 deleted)."""


class StaleEtag(Exception):
    """``If-Match`` names another version (412 conditionNotMet)."""


class InvalidEvent(ValueError):
    """An event the API refuses with 400; ``reason`` is Google's."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Room:
    name: str
    answer: RoomAnswer
    delay: float


@dataclass
class Calendar:
    id: str
    timezone: str
    owner: str
    room: Room | None = None
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> resource
    seqs: dict[str, int] = field(default_factory=dict)  # id -> change number of its last write
    epoch: int = 0  # raised by expire_sync_tokens: older tokens answer 410


def new_event_id() -> str:
    return "".join(secrets.choice(_BASE32HEX) for _ in range(26))


def is_busy(resource: dict[str, Any]) -> bool:
    """Blocks time: not cancelled and not ``transparency: transparent``.
    https://developers.google.com/calendar/api/v3/reference/freebusy/query"""
    return resource.get("status") != "cancelled" and resource.get("transparency") != "transparent"


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Patch semantics: nested objects merge, arrays and scalars replace, null clears.
    https://developers.google.com/calendar/api/guides/performance#patch"""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass(frozen=True)
class Instance:
    """An event as a listing shows it (a single event, a master, an instance, an exception)."""

    resource: dict[str, Any]
    start: datetime
    end: datetime
    seq: int


class Calendars:
    """All calendars of the fake domain. Thread-safe: one re-entrant lock around everything."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        schedule: Callable[[float, Callable[[], None]], None],
        html_root: str = "https://www.google.com/calendar/event?eid=",
    ) -> None:
        self._clock = clock
        self._schedule = schedule
        self._html_root = html_root
        self.lock = threading.RLock()
        self._calendars: dict[str, Calendar] = {}
        self._seq = 0
        self.listeners: list[Callable[[str], None]] = []  # called with the changed calendar id

    # ---- calendars -----------------------------------------------------------------------

    def add(self, calendar_id: str, *, timezone: str, owner: str, room: Room | None) -> None:
        times.zone(timezone)
        with self.lock:
            self._calendars[calendar_id.lower()] = Calendar(
                id=calendar_id, timezone=timezone, owner=owner, room=room
            )

    def get(self, calendar_id: str) -> Calendar:
        with self.lock:
            try:
                return self._calendars[calendar_id.lower()]
            except KeyError:
                raise CalendarNotFound(calendar_id) from None

    def find(self, calendar_id: str) -> Calendar | None:
        with self.lock:
            return self._calendars.get(calendar_id.lower())

    def all(self) -> list[Calendar]:
        with self.lock:
            return list(self._calendars.values())

    def set_room_answer(self, email: str, answer: RoomAnswer) -> None:
        with self.lock:
            room = self.get(email).room
            if room is None:
                raise CalendarNotFound(f"{email} is not a room")
            room.answer = answer

    @property
    def seq(self) -> int:
        with self.lock:
            return self._seq

    # ---- stamping ------------------------------------------------------------------------

    def _stamp(self, calendar: Calendar, resource: dict[str, Any]) -> None:
        self._seq += 1
        now = self._clock()
        resource["etag"] = f'"{int(now.timestamp() * 1000)}{self._seq:06d}"'
        resource["updated"] = times.format_rfc3339(now)
        calendar.events[resource["id"]] = resource
        calendar.seqs[resource["id"]] = self._seq

    def _notify(self, calendar: Calendar) -> None:
        for listener in list(self.listeners):
            listener(calendar.id)

    # ---- validation ----------------------------------------------------------------------

    def _normalise(self, resource: dict[str, Any], calendar: Calendar) -> None:
        try:
            times.span(resource, calendar.timezone)
            if resource.get("recurrence"):
                if resource.get("recurringEventId"):
                    raise times.BadTime("An instance of a recurring event cannot recur.")
                times.validate_recurrence(resource, calendar.timezone)
        except times.BadTime as exc:
            reason = "timeRangeEmpty" if "empty" in str(exc) else "invalid"
            raise InvalidEvent(str(exc), reason) from exc
        if resource.get("status", "confirmed") not in {"confirmed", "tentative", "cancelled"}:
            raise InvalidEvent(f"Invalid value for status: {resource['status']}")
        if resource.get("transparency", "opaque") not in {"opaque", "transparent"}:
            raise InvalidEvent(f"Invalid value for transparency: {resource['transparency']}")
        attendees = []
        for attendee in resource.get("attendees") or []:
            if not isinstance(attendee, dict) or not attendee.get("email"):
                raise InvalidEvent("Missing attendee email.", "required")
            shown = dict(attendee)
            shown.setdefault("responseStatus", "needsAction")
            if shown["responseStatus"] not in {"needsAction", "declined", "tentative", "accepted"}:
                raise InvalidEvent(f"Invalid attendee responseStatus: {shown['responseStatus']}")
            attendees.append(shown)
        if attendees:
            resource["attendees"] = attendees
        else:
            resource.pop("attendees", None)

    # ---- writes --------------------------------------------------------------------------

    def insert(self, calendar_id: str, event: dict[str, Any], *, creator: str) -> dict[str, Any]:
        """events.insert: store a new event (a client-chosen ``id`` is honoured)."""
        with self.lock:
            calendar = self.get(calendar_id)
            event_id = event.get("id")
            if event_id is None:
                event_id = new_event_id()
            elif not isinstance(event_id, str) or not _ID.match(event_id):
                raise InvalidEvent("Invalid resource id value.")
            if event_id in calendar.events:
                raise Duplicate(event_id)
            now = self._clock()
            resource: dict[str, Any] = {
                "kind": "calendar#event",
                "id": event_id,
                "status": "confirmed",
                "htmlLink": self._html_root + event_id,
                "created": times.format_rfc3339(now),
                "summary": "",
                "creator": {"email": creator},
                "organizer": {"email": calendar.id, "self": True},
                "iCalUID": f"{event_id}@google.com",
                "sequence": 0,
                "reminders": {"useDefault": True},
                "eventType": "default",
            }
            resource.update({k: copy.deepcopy(v) for k, v in event.items() if k not in _READ_ONLY})
            if not resource.get("summary"):
                resource.pop("summary", None)
            self._normalise(resource, calendar)
            self._stamp(calendar, resource)
            self._after_write(calendar, resource, timing_changed=True)
            self._notify(calendar)
            return copy.deepcopy(resource)

    def _existing(self, calendar: Calendar, event_id: str) -> dict[str, Any]:
        found = calendar.events.get(event_id)
        if found is None:
            virtual = self._virtual_instance(calendar, event_id)
            if virtual is None:
                raise EventNotFound(event_id)
            return virtual
        return found

    @staticmethod
    def _check_etag(resource: dict[str, Any], if_match: str | None) -> None:
        if if_match and if_match.strip() not in {"*", resource["etag"]}:
            raise StaleEtag(if_match)

    def update(
        self,
        calendar_id: str,
        event_id: str,
        changes: dict[str, Any],
        *,
        replace: bool = False,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        """events.patch (merge) or events.update (``replace``: the body is the whole event).
        An instance id of a recurring event becomes (or changes) an exception."""
        with self.lock:
            calendar = self.get(calendar_id)
            current = self._existing(calendar, event_id)
            self._check_etag(current, if_match)
            kept = {
                k: current[k] for k in (*_READ_ONLY, "id", "iCalUID", "sequence") if k in current
            }
            kept.pop("etag", None)
            body = {k: v for k, v in changes.items() if k not in _READ_ONLY and k != "id"}
            if replace:
                candidate = {**kept, "status": "confirmed", **copy.deepcopy(body)}
                candidate.setdefault("reminders", {"useDefault": True})
                candidate.setdefault("eventType", "default")
            else:
                candidate = _merge(current, body)
            if "sequence" in body and int(body["sequence"]) < int(current.get("sequence", 0)):
                raise InvalidEvent(
                    "The sequence value cannot be lower than the current one.",
                    "invalidSequenceValue",
                )
            self._normalise(candidate, calendar)
            timing_changed = any(candidate.get(k) != current.get(k) for k in _TIMING)
            if timing_changed and "sequence" not in body:
                candidate["sequence"] = int(current.get("sequence", 0)) + 1
            if timing_changed:  # a new time: the rooms answer again
                for attendee in candidate.get("attendees", []):
                    if attendee.get("resource"):
                        attendee["responseStatus"] = "needsAction"
            self._stamp(calendar, candidate)
            self._after_write(
                calendar, candidate, timing_changed=timing_changed or "attendees" in body
            )
            self._notify(calendar)
            return copy.deepcopy(candidate)

    def delete(self, calendar_id: str, event_id: str, *, if_match: str | None = None) -> None:
        """events.delete: the event stays with ``status: cancelled``; again is 410 deleted."""
        with self.lock:
            calendar = self.get(calendar_id)
            current = self._existing(calendar, event_id)
            if current.get("status") == "cancelled":
                raise Gone(event_id)
            self._check_etag(current, if_match)
            cancelled = copy.deepcopy(current)
            cancelled["status"] = "cancelled"
            self._stamp(calendar, cancelled)
            self._after_write(calendar, cancelled, timing_changed=False)
            self._notify(calendar)

    # ---- reads ---------------------------------------------------------------------------

    def event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        """The stored event (incl. cancelled), or an unmodified instance of a series."""
        with self.lock:
            calendar = self.get(calendar_id)
            found = calendar.events.get(event_id) or self._virtual_instance(calendar, event_id)
            return copy.deepcopy(found) if found else None

    def stored(self, calendar_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(r) for r in self.get(calendar_id).events.values()]

    def _virtual_instance(self, calendar: Calendar, event_id: str) -> dict[str, Any] | None:
        """An instance id (``{masterId}_{originalStart}``) the series generates."""
        master_id, _, suffix = event_id.rpartition("_")
        master = calendar.events.get(master_id)
        if not master_id or master is None or not master.get("recurrence"):
            return None
        try:
            if times.is_all_day(master["start"]):
                original = datetime.strptime(suffix, "%Y%m%d").replace(tzinfo=UTC)
            else:
                original = datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return None
        for item in self._instances_of(
            calendar,
            master,
            original - timedelta(days=2),
            original + timedelta(days=2),
            include_cancelled=True,
        ):
            if item.resource["id"] == event_id:
                return copy.deepcopy(item.resource)
        return None

    def _generated(
        self, calendar: Calendar, master: dict[str, Any], original: datetime
    ) -> dict[str, Any]:
        start, end = times.span(master, calendar.timezone)
        all_day = times.is_all_day(master["start"])
        item = {k: copy.deepcopy(v) for k, v in master.items() if k != "recurrence"}
        item.update(
            {
                "id": f"{master['id']}_{times.instance_suffix(original, all_day)}",
                "recurringEventId": master["id"],
                "originalStartTime": times.original_start_time(original, master["start"]),
                "start": times.shifted(master["start"], original),
                "end": times.shifted(master["end"], original + (end - start)),
            }
        )
        return item

    def _instances_of(
        self,
        calendar: Calendar,
        master: dict[str, Any],
        window_start: datetime,
        window_end: datetime,
        *,
        include_cancelled: bool,
    ) -> Iterator[Instance]:
        """The instances of a series overlapping the window (exceptions in place)."""
        master_seq = calendar.seqs[master["id"]]
        exceptions = {
            r["id"]: r
            for r in calendar.events.values()
            if r.get("recurringEventId") == master["id"]
        }
        if master.get("status") == "cancelled" and not include_cancelled:
            return
        for original in times.occurrences(master, calendar.timezone, window_start, window_end):
            item = self._generated(calendar, master, original)
            if item["id"] in exceptions:
                continue
            if master.get("status") == "cancelled":
                item["status"] = "cancelled"
            start, end = times.span(item, calendar.timezone)
            yield Instance(item, start, end, master_seq)
        for exception_id, exception in exceptions.items():
            if exception.get("status") == "cancelled" and not include_cancelled:
                continue
            start, end = times.span(exception, calendar.timezone)
            if start < window_end and (end > window_start or start == window_start):
                yield Instance(copy.deepcopy(exception), start, end, calendar.seqs[exception_id])

    def listing(
        self,
        calendar_id: str,
        *,
        window: tuple[datetime | None, datetime | None],
        single_events: bool,
        show_deleted: bool,
        since: int | None = None,
    ) -> list[Instance]:
        """What events.list shows: masters and exceptions, or (``single_events``) instances.

        ``timeMin`` is exclusive on the end, ``timeMax`` exclusive on the start. Without
        ``showDeleted`` cancelled events are left out — except cancelled exceptions of a
        series when ``singleEvents`` is false too. ``since`` (a sync token's change number)
        answers only what changed after it, deletions always included.
        https://developers.google.com/calendar/api/v3/reference/events/list
        """
        with self.lock:
            calendar = self.get(calendar_id)
            now = self._clock()
            low = window[0] or (now - UNBOUNDED_BEFORE)
            high = window[1] or (now + UNBOUNDED_AFTER)
            include_cancelled = show_deleted or since is not None
            found: list[Instance] = []
            for event_id, resource in calendar.events.items():
                seq = calendar.seqs[event_id]
                if since is not None and seq <= since and not resource.get("recurrence"):
                    continue
                cancelled = resource.get("status") == "cancelled"
                if resource.get("recurringEventId"):
                    if single_events and calendar.events.get(resource["recurringEventId"]):
                        continue  # shown in its series' place below
                    if cancelled and not (include_cancelled or not single_events):
                        continue
                elif cancelled and not include_cancelled:
                    continue
                if resource.get("recurrence"):
                    items = list(
                        self._instances_of(
                            calendar, resource, low, high, include_cancelled=include_cancelled
                        )
                    )
                    if since is not None:
                        items = [i for i in items if i.seq > since]
                        if not single_events and seq <= since:
                            continue
                    if single_events:
                        found.extend(items)
                    elif items or cancelled or since is not None:
                        start, end = times.span(resource, calendar.timezone)
                        found.append(Instance(copy.deepcopy(resource), start, end, seq))
                    continue
                start, end = times.span(resource, calendar.timezone)
                in_window = (window[1] is None or start < window[1]) and (
                    window[0] is None or end > window[0] or start == window[0]
                )
                if since is not None or in_window:
                    found.append(Instance(copy.deepcopy(resource), start, end, seq))
        return found

    def busy(
        self, calendar_id: str, window_start: datetime, window_end: datetime
    ) -> list[Instance]:
        """The busy instances of the window, ordered by start."""
        found = self.listing(
            calendar_id,
            window=(window_start, window_end),
            single_events=True,
            show_deleted=False,
        )
        return sorted((i for i in found if is_busy(i.resource)), key=lambda i: i.start)

    # ---- rooms ---------------------------------------------------------------------------

    def _after_write(
        self, calendar: Calendar, resource: dict[str, Any], *, timing_changed: bool
    ) -> None:
        """Keep the rooms' copies in step with the organizer's event; invite where needed."""
        if calendar.room is not None:
            return
        for attendee in resource.get("attendees", []):
            room = self.find(attendee["email"]) if attendee.get("resource") else None
            if room is None or room.room is None:
                continue
            copy_in_room = room.events.get(resource["id"])
            if resource.get("status") == "cancelled":
                if copy_in_room is not None and copy_in_room.get("status") != "cancelled":
                    self._put_room_copy(room, resource, status="cancelled")
                continue
            if attendee.get("responseStatus") == "needsAction":
                if copy_in_room is not None and copy_in_room.get("status") != "cancelled":
                    self._put_room_copy(room, resource, status="cancelled")
                if timing_changed:
                    self._invite(calendar, resource["id"], room)
            elif attendee.get("responseStatus") == "accepted":
                self._put_room_copy(room, resource, status=resource.get("status", "confirmed"))

    def _invite(self, organizer: Calendar, event_id: str, room: Calendar) -> None:
        assert room.room is not None
        if room.room.answer is RoomAnswer.SILENT:
            return
        seq_at_invite = organizer.seqs[event_id]

        def answer() -> None:
            with self.lock:
                current = organizer.events.get(event_id)
                if (
                    current is None
                    or organizer.seqs[event_id] < seq_at_invite
                    or room.room is None
                    or current.get("status") == "cancelled"
                ):
                    return
                policy = room.room.answer
                if policy is RoomAnswer.SILENT:
                    return
                accept = policy is RoomAnswer.ACCEPT or (
                    policy is RoomAnswer.AUTO and not self._room_busy(room, organizer, current)
                )
                self._record_answer(organizer, current, room, "accepted" if accept else "declined")

        self._schedule(room.room.delay, answer)

    def _room_busy(self, room: Calendar, organizer: Calendar, resource: dict[str, Any]) -> bool:
        start, end = times.span(resource, organizer.timezone)
        if resource.get("recurrence"):
            wanted = list(
                self._instances_of(
                    organizer, resource, start, start + timedelta(days=366), include_cancelled=False
                )
            )[:200]
        else:
            wanted = [Instance(resource, start, end, 0)]
        for item in wanted:
            for other in self.busy(room.id, item.start, item.end):
                if other.resource["iCalUID"] != resource["iCalUID"]:
                    return True
        return False

    def _record_answer(
        self, organizer: Calendar, resource: dict[str, Any], room: Calendar, response: str
    ) -> None:
        updated = copy.deepcopy(resource)
        for attendee in updated.get("attendees", []):
            if attendee["email"].lower() == room.id.lower():
                attendee["responseStatus"] = response
        self._stamp(organizer, updated)
        self._after_write(organizer, updated, timing_changed=False)
        if response != "accepted" and updated["id"] in room.events:
            self._put_room_copy(room, updated, status="cancelled")
        self._notify(organizer)

    def answer_as_room(
        self, calendar_id: str, event_id: str, room_email: str, response: str
    ) -> None:
        with self.lock:
            organizer = self.get(calendar_id)
            resource = organizer.events.get(event_id)
            if resource is None:
                raise EventNotFound(event_id)
            self._record_answer(organizer, resource, self.get(room_email), response)

    def _put_room_copy(self, room: Calendar, resource: dict[str, Any], *, status: str) -> None:
        existing = room.events.get(resource["id"])
        if existing is not None and existing.get("status") == status == "cancelled":
            return
        shown = copy.deepcopy(resource)
        shown["status"] = status
        shown["organizer"] = {k: v for k, v in resource["organizer"].items() if k != "self"}
        shown.pop("extendedProperties", None)  # private properties belong to the organizer's copy
        for attendee in shown.get("attendees", []):
            if attendee["email"].lower() == room.id.lower():
                attendee["self"] = True
        if existing is not None:
            shown["created"] = existing["created"]
        self._stamp(room, shown)
        self._notify(room)
