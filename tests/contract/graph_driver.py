"""The provider side of the Microsoft connector: the contract's events
written straight into the Graph fake's mailbox (:class:`~tests.fakes.graph.
GraphFake`'s provider-side face), as a person with Outlook would.

Translation, as Outlook stores them: times in the event's zone, named by
its Windows name where CLDR's windowsZones has one ("W. Europe Standard
Time" for Europe/Berlin — what Outlook writes, so the connector's reading
of Windows names is exercised by every case); floating times in the
mailbox's zone (Exchange has none); dates make ``isAllDay`` events from
midnight to midnight; transparent is ``showAs: free``; a series is a
``patternedRecurrence`` master whose occurrences are then edited one by
one (moved, cancelled — an attendee's copy of a cancelled occurrence keeps
``isCancelled`` — or deleted for an EXDATE), as Graph clients do.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from connectors.microsoft import MicrosoftAccount, MicrosoftConnector, RetryPolicy
from engine.ports import CalendarRef
from tests.contract.calendar_data import WINDOW, EventSpec, Override, When, single
from tests.contract.harness import Capability, Harness
from tests.fakes.graph import GraphFake, RoomAnswer
from tests.support.caldav_servers import free_port

FAST = RetryPolicy(attempts=1, initial_wait=0.01, max_wait=0.05)
DOMAIN = "contoso.example"
_names = itertools.count(1)
_WINDOWS_NAME = {olson: windows for windows, olson in reversed(list(WINDOWS_TO_OLSON.items()))}
_DAYS = {"MO": "monday", "TU": "tuesday", "WE": "wednesday", "TH": "thursday",
         "FR": "friday", "SA": "saturday", "SU": "sunday"}


def graph_account(fake: GraphFake, *, secret: str | None = None) -> MicrosoftAccount:
    """calpool's account of the fake's tenant."""
    return MicrosoftAccount(
        tenant_id=fake.tenant_id,
        client_id=fake.client_id,
        client_secret=secret or fake.client_secret,
        graph_url=fake.graph_url,
        authority_url=fake.authority_url,
        ca_file=fake.ca_file,
        timeout=10,
        page_size=7,  # small pages: every listing of a case follows nextLinks
        retry=FAST,
    )


def _zone_name(zone: str) -> str:
    return _WINDOWS_NAME.get(zone, zone)


def _value(moment: When, zone: str) -> dict[str, str]:
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        wall = moment.astimezone(UTC).replace(tzinfo=None)
        return {"dateTime": wall.isoformat(timespec="seconds"), "timeZone": "UTC"}
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, datetime.min.time())
    return {"dateTime": moment.isoformat(timespec="seconds"), "timeZone": _zone_name(zone)}


def _original_start(moment: When, zone: str) -> str:
    """An occurrence's ``originalStart`` (UTC) for the wall-clock ``moment``."""
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, datetime.min.time())
    aware = moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _recurrence(rule: str, start: When, zone: str) -> dict[str, Any]:
    parts = dict(part.split("=", 1) for part in rule.split(";"))
    first = start.date() if isinstance(start, datetime) else start
    pattern: dict[str, Any] = {"type": parts["FREQ"].lower(),
                               "interval": int(parts.get("INTERVAL", "1"))}
    if pattern["type"] not in ("daily", "weekly"):
        raise AssertionError(f"the Graph driver translates daily and weekly rules, not {rule}")
    if pattern["type"] == "weekly":
        days = parts.get("BYDAY", "").split(",") if "BYDAY" in parts else []
        pattern["daysOfWeek"] = [_DAYS[d] for d in days] or [first.strftime("%A").lower()]
    span: dict[str, Any] = {"startDate": first.isoformat(), "recurrenceTimeZone": zone}
    if "COUNT" in parts:
        span.update(type="numbered", numberOfOccurrences=int(parts["COUNT"]))
    elif "UNTIL" in parts:
        span.update(type="endDate", endDate=f"{parts['UNTIL'][:4]}-{parts['UNTIL'][4:6]}-"
                                            f"{parts['UNTIL'][6:8]}")
    else:
        span.update(type="noEnd")
    return {"pattern": pattern, "range": span}


class GraphDriver:
    """Edits one mailbox of the Graph fake directly."""

    unsupported: Mapping[Capability, str] = {
        Capability.CURSOR_CHECK: (
            "Graph keeps no per-calendar version of its events to read for many calendars at "
            "once; the delta round is the check"),
        Capability.UNREADABLE_OBJECT: (
            "Graph validates every event it stores (an unknown timeZone is a 400); "
            "tests/connectors/microsoft reads broken JSON instead"),
        Capability.PUSH_DELIVERY: (
            "Graph calls the notification address before a subscription exists, and nobody "
            "serves the suite's address (tests/connectors/microsoft/test_push.py runs these "
            "cases against a receiver)"),
        Capability.CLIENT_UID: "Exchange assigns iCalUId itself (read-only in Graph)",
    }

    def __init__(self, fake: GraphFake, calendar: CalendarRef) -> None:
        self._fake = fake
        self._calendar = calendar
        self._ids: dict[str, str] = {}
        self._specs: dict[str, EventSpec] = {}
        # The EventSpec uid of each iCalUId Exchange gave (it chooses them).
        self.uids: dict[str, str] = {}

    @property
    def mailbox(self) -> str:
        return self._calendar.id

    def _resource(self, spec: EventSpec) -> dict[str, Any]:
        zone = spec.zone or self._calendar.timezone
        resource: dict[str, Any] = {
            "subject": spec.title,
            "start": _value(spec.start, zone),
            "end": _value(spec.end, zone),
            "isAllDay": not isinstance(spec.start, datetime),
            "showAs": "free" if spec.transparent else "busy",
            "isCancelled": spec.cancelled,
            "recurrence": (_recurrence(spec.recurrence.rule, spec.start, zone)
                           if spec.recurrence else None),
        }
        return resource

    def put(self, event: EventSpec) -> str:
        resource = self._resource(event)
        before = self._specs.get(event.uid)
        if event.uid in self._ids and not self._drops_exceptions(before, event):
            event_id = self._ids[event.uid]
            self._fake.update(self.mailbox, event_id, resource)
        else:
            if event.uid in self._ids:
                # A series rescheduled loses its exceptions, as Outlook warns:
                # stored anew.
                self._fake.delete(self.mailbox, self._ids[event.uid])
                before = None
            created = self._fake.create(self.mailbox, resource)
            event_id = str(created["id"])
            self._ids[event.uid] = event_id
            self.uids[str(created["iCalUId"])] = event.uid
        self._specs[event.uid] = event
        if event.recurrence is not None:
            zone = event.zone or self._calendar.timezone
            done = set(before.recurrence.excluded) if before and before.recurrence else set()
            for excluded in event.recurrence.excluded:
                if excluded not in done:
                    self._fake.delete(self.mailbox, self._occurrence(event_id, excluded, zone))
            for override in event.recurrence.overrides:
                self._override(event_id, override, zone)
        return event_id

    @staticmethod
    def _drops_exceptions(before: EventSpec | None, after: EventSpec) -> bool:
        """Whether ``after`` replaces a series whose exceptions it does not keep."""
        if before is None or before.recurrence is None or not (
                before.recurrence.excluded or before.recurrence.overrides):
            return False
        kept = after.recurrence
        return kept is None or not (
            set(before.recurrence.excluded) <= set(kept.excluded)
            and set(before.recurrence.overrides) <= set(kept.overrides)
            and (before.start, before.end, before.recurrence.rule)
            == (after.start, after.end, kept.rule))

    def _occurrence(self, master_id: str, original: When, zone: str) -> str:
        wanted = _original_start(original, zone)
        moment = datetime.fromisoformat(wanted.replace("Z", "+00:00"))
        for instance in self._fake.calendars.instances(
                self.mailbox, moment - timedelta(days=2), moment + timedelta(days=2)):
            if instance.source_id == master_id and instance.resource.get("originalStart") == wanted:
                return instance.id
        raise AssertionError(f"no occurrence of {master_id} at {wanted}")

    def _override(self, master_id: str, override: Override, zone: str) -> None:
        occurrence = self._occurrence(master_id, override.original_start, zone)
        self._fake.update(self.mailbox, occurrence, {
            "start": _value(override.start, zone),
            "end": _value(override.end, zone),
            "showAs": "free" if override.transparent else "busy",
            "isCancelled": override.cancelled,
        })

    def move(self, uid: str, start: When, end: When) -> str:
        spec = self._specs[uid]
        assert spec.recurrence is None, f"{uid} is a series; put it anew instead"
        return self.put(replace(spec, start=start, end=end))

    def delete(self, uid: str) -> None:
        self._fake.delete(self.mailbox, self._ids.pop(uid))
        self._specs.pop(uid, None)

    def put_unreadable(self, uid: str) -> str:
        raise AssertionError("unsupported: the case should have skipped")

    def expire_cursor(self) -> None:
        self._fake.expire_delta_tokens(self.mailbox)

    def foreign_cursor(self) -> str:
        other = CalendarRef(f"other-{next(_names)}@{DOMAIN}", self._calendar.timezone)
        self._fake.add_mailbox(other.id, timezone=other.timezone)
        GraphDriver(self._fake, other).put(single("own"))
        connector = MicrosoftConnector(graph_account(self._fake))
        try:
            return connector.list_window(other, WINDOW).cursor
        finally:
            connector.close()

    def decline_as_room(self, source: str, email: str) -> None:
        self._fake.answer_as_room(self.mailbox, source, email, "declined")

    def pushes(self, address: str) -> list[tuple[Mapping[str, str], bytes]]:
        return []


def graph_harness(fake: GraphFake, *, zone: str) -> Harness:
    """The Microsoft connector on a fresh mailbox of the (session's) fake."""
    calendar = CalendarRef(f"cal-{next(_names)}@{DOMAIN}", zone)
    fake.add_mailbox(calendar.id, timezone=zone)

    def unreachable() -> MicrosoftConnector:
        dead = f"https://127.0.0.1:{free_port()}"
        return MicrosoftConnector(replace(graph_account(fake), authority_url=dead,
                                          graph_url=dead + "/v1.0", timeout=2))

    return Harness(
        connector=MicrosoftConnector(graph_account(fake)),
        calendar=calendar,
        driver=GraphDriver(fake, calendar),
        label="microsoft",
        unauthorized=lambda: MicrosoftConnector(graph_account(fake, secret="wrong-secret")),
        unreachable=unreachable,
        now=fake.clock,
    )


def started_fake(room_mailbox: str) -> GraphFake:
    """A running fake with the contract's room mailbox (which answers only
    when a case makes it: :meth:`GraphDriver.decline_as_room`)."""
    fake = GraphFake().start()
    fake.add_room(room_mailbox, name="Spree", answer=RoomAnswer.SILENT)
    return fake

