"""``calpool bookings``: list bookings, as text or the booking documents."""

from __future__ import annotations

import json

from daemon.commands.app import open_app
from daemon.commands.invocation import CommandFailed, Invocation
from daemon.documents import booking_document


def run(invocation: Invocation) -> int:
    args = invocation.args
    config = invocation.config()
    if args.calendar is not None and args.calendar not in config.calendars:
        known = ", ".join(config.calendars) or "none"
        raise CommandFailed(f"unknown calendar {args.calendar!r} (known: {known})", 2)
    # Times without an offset are read in the daemon's zone: the command
    # spans calendars of many zones.
    zone = config.daemon.timezone
    start = args.start.in_zone(zone) if args.start else None
    end = args.end.in_zone(zone) if args.end else None
    if start is not None and end is not None and end <= start:
        raise CommandFailed("--end must be later than --start", 2)
    app = open_app(invocation, load_cache=False)
    try:
        found = app.bookings.list(start, end, args.calendar)
        documents = [
            booking_document(
                booking,
                app.bookings.history(booking.id),
                config.calendars[booking.owner].timezone
                if booking.owner in config.calendars else zone,
                deliveries=app.bookings.deliveries(booking.id),
            )
            for booking in found
        ]
    finally:
        app.close()
    if args.json:
        json.dump({"bookings": documents}, invocation.out, indent=2)
        invocation.out.write("\n")
        return 0
    for document in documents:
        rooms = ", ".join(f"{pool}: {room}" for pool, room in document["rooms"].items())
        attendee = document["attendee"] or {"name": "", "email": ""}
        print(
            f"{document['id']}  {document['status']:<9}  {document['event_type']}  "
            f"{document['start']} - {document['end']}  owner {document['owner']}  "
            f"rooms {rooms or 'none'}  {attendee['name']} <{attendee['email']}>",
            file=invocation.out,
        )
        # Where each calendar's copy stands, when not all is said and done: a
        # room that declined (and was replaced), an answer still awaited.
        unsettled = [d for d in document["deliveries"]
                     if d["state"] in ("pending", "declined")
                     or (d["how"] == "invited" and d["state"] != "accepted")]
        if unsettled:
            print("    deliveries: " + ", ".join(
                f"{d['calendar']} {d['how']} {d['state']}" for d in document["deliveries"]),
                file=invocation.out)
    if not documents:
        print("no bookings", file=invocation.out)
    return 0
