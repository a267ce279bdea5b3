"""The JSON documents of interface.md, shared by the CLI and the HTTP hook.

Instants are written ISO 8601 with an offset, in the zone the caller asked
for (slots) or the owner's zone (bookings).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.services.availability import SlotAnswer


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
