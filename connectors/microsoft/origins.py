"""Which booking an attendee's copy of a meeting belongs to.

Exchange puts an invited room's copy of calpool's meeting into the room's
mailbox itself: the same ``iCalUId`` as the organizer's event, but neither
its ``transactionId`` nor its extended properties (they are the
organizer's item's, not the meeting's).  Read from the room's calendar it
would look like somebody else's meeting over the booking — a conflict —
so sync reports it with the booking id of the organizer's event: known
here once calpool wrote or read that event, else asked of the organizer's
mailbox (``$filter=iCalUId eq …``) once per meeting and remembered,
including "not calpool's".
https://learn.microsoft.com/en-us/graph/api/resources/event (iCalUId)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from connectors.microsoft.account import BOOKING_PROPERTY
from connectors.microsoft.events import JSON, booking_of

_MAX_REMEMBERED = 100_000  # meetings; beyond this the oldest are asked again

Lookup = Callable[[str, str], Iterable[Mapping[str, Any]]]
"""``(organizer mailbox, iCalUId)`` → that mailbox's events of the meeting."""


def _organizer(item: Mapping[str, Any]) -> str:
    organizer = item.get("organizer") or {}
    return str((organizer.get("emailAddress") or {}).get("address") or "")


class MeetingOrigins:
    """iCalUId → booking id (``None``: not calpool's), for one account."""

    def __init__(self) -> None:
        self._known: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def _remember(self, uid: str, booking_id: str | None) -> None:
        with self._lock:
            if len(self._known) >= _MAX_REMEMBERED:
                self._known.pop(next(iter(self._known)))
            self._known[uid] = booking_id

    def learn(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Remember the meetings of ``items`` that carry their booking."""
        for item in items:
            booking_id, uid = booking_of(item), item.get("iCalUId")
            if booking_id and uid:
                self._remember(str(uid), booking_id)

    def attribute(self, items: list[JSON], *, mailbox: str, lookup: Lookup) -> list[JSON]:
        """``items`` of ``mailbox``'s calendar, each copy of a meeting that
        another mailbox organised for a booking marked with that booking
        (as if it carried calpool's property)."""
        self.learn(items)
        found = []
        for item in items:
            uid, organizer = str(item.get("iCalUId") or ""), _organizer(item)
            if booking_of(item) or not uid or not organizer or organizer.lower() == mailbox.lower():
                found.append(item)
                continue
            with self._lock:
                known = uid in self._known
                booking_id = self._known.get(uid)
            if not known:
                booking_id = next((b for e in lookup(organizer, uid) if (b := booking_of(e))), None)
                self._remember(uid, booking_id)
            if booking_id:
                item = {**item, "singleValueExtendedProperties": [
                    {"id": BOOKING_PROPERTY, "value": booking_id}]}
            found.append(item)
        return found
