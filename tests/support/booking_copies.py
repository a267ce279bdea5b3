"""How tests name the events they read raw from a CalDAV server.

Since issue 20 each calendar copy of a booking has its own UID (the owner's
copy the UID the attendee sees, every other copy one derived from the
booking and its calendar), and sync recognises calpool's copies by
``X-CALPOOL-BOOKING``.  Tests that ask "does this calendar hold booking b's
event?" name every copy calpool wrote as :func:`booking_key` ``(b)`` —
after checking its UID is the one that copy must have — and any other event
by its UID, so one list compares across calendars.
"""

from __future__ import annotations

import re

from connectors.caldav.account import booking_uid, copy_uid

_UNFOLD = re.compile(r"\r?\n[ \t]")


def booking_key(booking_id: str) -> str:
    """The name :func:`event_names` gives booking ``booking_id``'s copies."""
    return f"booking:{booking_id}"


def _prop(text: str, name: str) -> str | None:
    match = re.search(rf"^{name}(?:;[^:\r\n]*)?:(.*?)\r?$", text, re.M)
    return match.group(1) if match else None


def event_names(ics: str, calendar_id: str) -> list[str]:
    """The names of the VEVENTs in ``ics`` (one object, or a REPORT body
    holding many) found in the calendar configured as ``calendar_id``.
    Raise AssertionError when a copy of a booking has a UID it must not."""
    names = []
    for chunk in _UNFOLD.sub("", ics).split("BEGIN:VEVENT")[1:]:
        uid = _prop(chunk, "UID") or ""
        booking = _prop(chunk, "X-CALPOOL-BOOKING")
        if booking is None:
            names.append(uid)
            continue
        allowed = {booking_uid(booking), copy_uid(booking, calendar_id)}
        assert uid in allowed, f"copy of {booking} in {calendar_id} has UID {uid}"
        names.append(booking_key(booking))
    return names
