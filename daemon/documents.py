"""The JSON documents of interface.md, shared by the CLI and the HTTP hook.

Instants are written ISO 8601 with an offset, in the zone the caller asked
for (slots) or the owner's zone (bookings).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.core.model import Booking
from engine.services.availability import SlotAnswer
from engine.store import StatusChange


def local_iso(instant: datetime | None, zone: str) -> str | None:
    if instant is None:
        return None
    return instant.astimezone(ZoneInfo(zone)).isoformat()


def slots_document(answer: SlotAnswer, zone: str) -> dict[str, Any]:
    """``GET /v1/event-types/{key}/slots`` and ``calpool slots --json``."""
    return {
        "event_type": answer.event_type.key,
        "timezone": zone,
        "slots": [
            {
                "start": local_iso(slot.start, zone),
                "end": local_iso(slot.end, zone),
                "rooms_available": {
                    pool: list(rooms) for pool, rooms in slot.rooms_available.items()
                },
            }
            for slot in answer.slots
        ],
        "stale_calendars": [
            {
                "calendar": stale.calendar,
                "last_synced": local_iso(stale.last_synced, zone),
                "reason": stale.reason,
            }
            for stale in answer.stale_calendars
        ],
    }


def booking_document(booking: Booking, history: list[StatusChange], zone: str) -> dict[str, Any]:
    """The booking document of interface.md, instants in ``zone`` (the
    owner's): ``GET /v1/bookings/{id}`` and ``calpool bookings --json``."""
    attendee = booking.attendee
    return {
        "id": booking.id,
        "status": booking.status.value,
        "event_type": booking.event_type,
        "start": local_iso(booking.start, zone),
        "end": local_iso(booking.end, zone),
        "owner": booking.owner,
        "with": list(booking.with_),
        "rooms": dict(booking.rooms),
        "attendee": {"name": attendee.name, "email": attendee.email} if attendee else None,
        "notes": booking.notes,
        "history": [
            {"at": local_iso(change.at, zone), "status": change.status.value,
             "detail": change.detail}
            for change in history
        ],
    }
