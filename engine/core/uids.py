"""The names calpool gives a booking's event in the owner's calendar: its
resource name and its iCalendar UID (the UID the attendee's invitation
carries, whether the CalDAV connector writes it or calpool's email sends
it).  One place, so the two never disagree."""

from __future__ import annotations

import hashlib
import re

_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")


def booking_name(booking_id: str) -> str:
    """The resource name calpool uses for a booking's event: readable when
    the id is tame, else a digest (hrefs and UIDs must stay portable)."""
    if _SAFE_ID.fullmatch(booking_id) and not booking_id.startswith("."):
        return f"calpool-{booking_id}"
    return "calpool-" + hashlib.sha256(booking_id.encode()).hexdigest()[:40]


def booking_uid(booking_id: str) -> str:
    """The iCalendar UID of the booking's event in the owner's calendar: the
    UID the attendee's invitation carries.  Until issue 20 every copy (the
    rooms', the ``with`` people's) had this UID too; such copies still exist
    and are kept as they are (see ``connectors.caldav.writes.update_event``)."""
    return booking_name(booking_id) + "@calpool"
