"""``calpool book``: reserve a slot and write the events, waiting for them."""

from __future__ import annotations

from datetime import timedelta

from daemon.commands.app import open_app
from daemon.commands.invocation import CommandFailed, Invocation
from daemon.documents import local_iso
from daemon.logs import configure
from engine.core.model import Attendee
from engine.services.booking import Result

# A person at a terminal waits longer than an HTTP client for the provider
# writes; past this the booking stays pending and `calpool run` finishes it.
MIN_WAIT = timedelta(seconds=30)

def run(invocation: Invocation) -> int:
    args = invocation.args
    config = invocation.config()
    event_type = invocation.event_type()
    zone = config.calendars[event_type.owner].timezone
    start = args.start.in_zone(zone)
    attendee = Attendee(args.name.strip(), args.email.strip())
    # The outcome is one sentence below; log records would only repeat it.
    quiet = "debug" if config.daemon.log_level == "debug" else "critical"
    configure(config.daemon.log_format, quiet, invocation.err)
    app = open_app(invocation)
    try:
        wait = max(config.http.confirm_within, MIN_WAIT)
        outcome = app.bookings.attempt(event_type.key, start, attendee, args.notes, app.clock(),
                                       confirm_within=wait)
    finally:
        app.close()
    if outcome.result is Result.INVALID:
        raise CommandFailed(f"{outcome.detail} ({args.start.text})", 2)
    if outcome.result is Result.REFUSED:
        assert outcome.reason is not None
        raise CommandFailed(f"the slot is taken: {outcome.detail} ({outcome.reason.value})")
    if outcome.result is Result.UNAVAILABLE:
        raise CommandFailed(outcome.detail)
    booking = outcome.booking
    assert booking is not None
    if outcome.result is Result.FAILED:
        raise CommandFailed(outcome.detail)
    if outcome.result is Result.PENDING:
        raise CommandFailed(
            f"booking {booking.id} is reserved but its events are not all written yet; "
            "`calpool run` finishes or fails it (see `calpool bookings`)"
        )
    rooms = ", ".join(f"{pool}: {room}" for pool, room in booking.rooms.items()) or "none"
    print(
        f"booking {booking.id} confirmed: {local_iso(booking.start, zone)} - "
        f"{local_iso(booking.end, zone)}, rooms: {rooms}",
        file=invocation.out,
    )
    return 0
