"""The provider side of the Google connector: the contract's events built
as Calendar API v3 event resources on a :class:`GoogleCalendarFake`, the
way a person's other client (Google Calendar's own UI) would store them.

Translation: wall-clock times become ``{dateTime, timeZone}`` in the
event's zone (a floating time gets the calendar's zone: Google has none),
UTC instants ``{dateTime: …Z}``, dates ``{date}``.  A series is a master
with ``recurrence`` lines (``RRULE``, ``EXDATE``); an override is a patch of
the instance Google generated for its original start (id
``<master>_<original start, UTC, basic format>``), as Google stores an
exception.  Putting an event of a known UID again patches the stored one
(same id), as editing in a client does.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.google import GoogleConnector
from engine.ports import CalendarRef
from tests.contract.calendar_data import WINDOW, EventSpec, When, single
from tests.contract.harness import Capability
from tests.fakes.google_calendar import GoogleCalendarFake

_others = itertools.count(1)


def _time(value: When, zone: str) -> dict[str, str]:
    if not isinstance(value, datetime):
        return {"date": value.isoformat()}
    if value.tzinfo is not None:
        return {"dateTime": value.astimezone(UTC).isoformat().replace("+00:00", "Z")}
    return {"dateTime": value.isoformat(), "timeZone": zone}


def _original_id(master: str, original: When, zone: str) -> str:
    if not isinstance(original, datetime):
        return f"{master}_{original:%Y%m%d}"
    moment = original if original.tzinfo is not None else original.replace(tzinfo=ZoneInfo(zone))
    return f"{master}_{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _exdate(value: When, zone: str) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        return f"EXDATE;VALUE=DATE:{value:%Y%m%d}"
    if value.tzinfo is not None:
        return f"EXDATE:{value.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return f"EXDATE;TZID={zone}:{value:%Y%m%dT%H%M%S}"


def google_event(spec: EventSpec, *, calendar_zone: str) -> dict[str, Any]:
    """``spec`` as a Calendar API event resource (overrides left out)."""
    zone = spec.zone or calendar_zone
    resource: dict[str, Any] = {
        "iCalUID": spec.uid,
        "summary": spec.title,
        "start": _time(spec.start, zone),
        "end": _time(spec.end, zone),
        "transparency": "transparent" if spec.transparent else "opaque",
        "status": "cancelled" if spec.cancelled else "confirmed",
    }
    if spec.recurrence is not None:
        lines = [f"RRULE:{spec.recurrence.rule}"]
        lines += [_exdate(x, zone) for x in spec.recurrence.excluded]
        resource["recurrence"] = lines
    return resource


class GoogleDriver:
    """Edits one calendar of the fake directly (as its owner's other client)."""

    unsupported: Mapping[Capability, str] = {
        Capability.CURSOR_CHECK: (
            "Google keeps no per-calendar version of its events that many calendars' could be "
            "read by at once; events.list with the syncToken is the check"),
        Capability.UNREADABLE_OBJECT: (
            "Google validates every event it stores; nothing it holds is unreadable"),
        Capability.KEEP_CANCELLED: (
            "on Google `status: cancelled` is deletion: a cancelled event or occurrence is a "
            "tombstone, not an event that stays in the calendar"),
    }

    def __init__(self, fake: GoogleCalendarFake, calendar: CalendarRef,
                 connector: GoogleConnector) -> None:
        self._fake = fake
        self._calendar = calendar
        self._connector = connector
        self._ids: dict[str, str] = {}  # UID → event id
        self._specs: dict[str, EventSpec] = {}
        self._taken = len(fake.deliveries)  # deliveries before this case are not its own

    def put(self, event: EventSpec) -> str:
        zone = event.zone or self._calendar.timezone
        resource = google_event(event, calendar_zone=self._calendar.timezone)
        known = self._ids.get(event.uid)
        if known is None:
            stored = self._fake.insert(self._calendar.id, resource)
            known = self._ids[event.uid] = str(stored["id"])
        else:
            resource.setdefault("recurrence", [])  # a series made single loses its rule
            self._fake.patch(self._calendar.id, known, resource)
        for override in event.recurrence.overrides if event.recurrence else ():
            instance = _original_id(known, override.original_start, zone)
            self._fake.patch(self._calendar.id, instance, {
                "start": _time(override.start, zone),
                "end": _time(override.end, zone),
                "transparency": "transparent" if override.transparent else "opaque",
                "status": "cancelled" if override.cancelled else "confirmed",
            })
        self._specs[event.uid] = event
        return known

    def move(self, uid: str, start: When, end: When) -> str:
        spec = self._specs[uid]
        assert spec.recurrence is None, f"{uid} is a series; put it anew instead"
        return self.put(replace(spec, start=start, end=end))

    def delete(self, uid: str) -> None:
        self._fake.delete(self._calendar.id, self._ids[uid])

    def put_unreadable(self, uid: str) -> str:
        raise AssertionError("unsupported: the case should have skipped")

    def expire_cursor(self) -> None:
        self._fake.expire_sync_tokens(self._calendar.id)

    def foreign_cursor(self) -> str:
        owner = f"other-{next(_others)}-{self._calendar.id}"
        self._fake.add_calendar(owner, timezone=self._calendar.timezone)
        self._fake.delegate(owner)
        other = CalendarRef(owner, self._calendar.timezone, owner)
        GoogleDriver(self._fake, other, self._connector).put(single("own"))
        return self._connector.list_window(other, WINDOW).cursor

    def decline_as_room(self, source: str, email: str) -> None:
        self._fake.answer_as_room(self._calendar.id, source, email, "declined")

    def pushes(self, address: str) -> list[tuple[Mapping[str, str], bytes]]:
        self._settle()
        made = list(self._fake.deliveries)  # it only grows
        fresh, self._taken = made[self._taken:], len(made)
        return [(headers, body) for to, headers, body in fresh
                if to == address and self._mine(headers)]

    def _mine(self, headers: Mapping[str, str]) -> bool:
        """Whether a delivery is of a channel on this case's calendar (the
        fake is shared by the cases)."""
        channel = self._fake.channels.get(headers.get("X-Goog-Channel-ID", ""))
        return channel is not None and channel["calendar_id"] == self._calendar.id

    def _settle(self, *, within: float = 10.0) -> None:
        """Wait until the fake has made every delivery it queued (its push
        worker POSTs one at a time, after the change that caused it)."""
        push = self._fake.push
        deadline = time.monotonic() + within
        settled = 0
        while settled < 2:  # idle on two looks in a row: nothing in between
            idle = push._queue.empty() and len(push.delivery_statuses) == len(push.deliveries)
            settled = settled + 1 if idle else 0
            assert time.monotonic() < deadline, "the fake's deliveries did not settle"
            time.sleep(0.02)
